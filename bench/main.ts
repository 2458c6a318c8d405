/**
 * Benchmark dispatcher: `tsx bench/main.ts <name> [--json] [--quick] [--runs N] [--density N]`
 * (`npm run bench -- <name> ...`). Each benchmark is a module in this directory listed in BENCHMARKS;
 * it measures our figures and a peer's in the same run and reports ratios (never timed assertions).
 */
import os from 'node:os';
import { Aborted, type BenchContext, type BenchModule, type BenchOptions } from './harness.js';
import { renderTable, renderTargets } from './stats.js';

interface Entry {
  description: string;
  load(): Promise<BenchModule>;
}

/** name → module. */
const BENCHMARKS: Record<string, Entry> = {
  start: {
    description: 'sandbox start latency (true, python3 -S) vs bubblewrap, unshare and a bare spawn; memory per idle sandbox at 500',
    load: () => import('./start.js'),
  },
  snapshot: {
    description: 'CRIU checkpoint/restore of idle and 100 MB python3, fork of 10, warm-snapshot fork vs cold start of an agent',
    load: () => import('./snapshot.js'),
  },
  workflow: {
    description: '10-step sequential workflow end to end, orchestration cost per step, 100 parallel steps',
    load: () => import('./workflow.js'),
  },
  network: {
    description: 'networked sandbox start (pool) vs none; auditing proxy latency and throughput vs direct',
    load: () => import('./network.js'),
  },
  ui: {
    description: 'the app in Chromium: a step printing 10,000 lines/s for 10 s (longest main-thread task, tail shown); pan/zoom of 200 steps (frame times)',
    load: () => import('./ui.js'),
  },
  trace: {
    description: 'syscall tracing: getpid cost untraced / traced / strace -f, events/s to a subscriber, attach and add time, approval round trip',
    load: () => import('./trace.js'),
  },
};

function usage(): string {
  const names = Object.keys(BENCHMARKS);
  const w = Math.max(...names.map((n) => n.length));
  return [
    'usage: npm run bench -- <benchmark> [--json] [--quick] [--runs N] [--density N]',
    '',
    'benchmarks:',
    ...names.map((n) => `  ${n.padEnd(w)}  ${BENCHMARKS[n]!.description}`),
    '',
    'options:',
    '  --json       print one JSON object on stdout instead of tables (progress stays on stderr;',
    '               use `npm run -s bench -- ...` to keep npm\'s banner off stdout)',
    '  --quick      small counts: a smoke run in seconds, not a measurement',
    '  --runs N     measured runs of the main case (see bench/README.md)',
    '  --density N  sandboxes in the density measurement (default 500)',
  ].join('\n');
}

function fail(msg: string, code = 2): never {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(code);
}

function positiveInt(flag: string, v: string | undefined): number {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < 1) fail(`${flag} needs a positive integer (got ${v ?? 'nothing'})`);
  return n;
}

function parseArgs(argv: string[]): { name: string | null; options: BenchOptions; help: boolean } {
  const options: BenchOptions = { quick: false, runs: null, density: null, json: false };
  let name: string | null = null;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') options.json = true;
    else if (a === '--quick') options.quick = true;
    else if (a === '--runs') options.runs = positiveInt(a, argv[++i]);
    else if (a.startsWith('--runs=')) options.runs = positiveInt('--runs', a.slice(7));
    else if (a === '--density') options.density = positiveInt(a, argv[++i]);
    else if (a.startsWith('--density=')) options.density = positiveInt('--density', a.slice(10));
    else if (a === '-h' || a === '--help') help = true;
    else if (a.startsWith('-')) fail(`unknown option ${a}\n${usage()}`);
    else if (name === null) name = a;
    else fail(`one benchmark at a time (got ${name} and ${a})`);
  }
  return { name, options, help };
}

async function main(): Promise<void> {
  const { name, options, help } = parseArgs(process.argv.slice(2));
  if (help || name === null) {
    (help ? process.stdout : process.stderr).write(`${usage()}\n`);
    process.exit(help ? 0 : 2);
  }
  const entry = Object.hasOwn(BENCHMARKS, name) ? BENCHMARKS[name] : undefined;
  if (!entry) fail(`unknown benchmark "${name}"; available: ${Object.keys(BENCHMARKS).join(', ')}`);

  const cleanups: Array<() => Promise<void> | void> = [];
  let aborted = false;
  const runCleanups = async (): Promise<void> => {
    while (cleanups.length) {
      const fn = cleanups.pop()!;
      try {
        await fn();
      } catch (err) {
        process.stderr.write(`bench: cleanup failed: ${(err as Error).message}\n`);
      }
    }
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    if (aborted) {
      process.stderr.write(`bench: ${sig} again, exiting without finishing cleanup\n`);
      process.exit(130);
    }
    aborted = true;
    process.stderr.write(`bench: ${sig}, cleaning up (again to force)\n`);
    void runCleanups().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const ctx: BenchContext = {
    options,
    log: (msg) => process.stderr.write(`[${name}] ${msg}\n`),
    onCleanup(fn) {
      cleanups.push(fn);
      return () => {
        const i = cleanups.lastIndexOf(fn);
        if (i >= 0) cleanups.splice(i, 1);
      };
    },
    get aborted() {
      return aborted;
    },
  };

  const started = new Date();
  let result;
  try {
    const mod = await entry.load();
    result = await mod.run(ctx);
  } catch (err) {
    if (err instanceof Aborted || aborted) return; // the signal handler cleans up and exits
    await runCleanups();
    fail(`${name} failed: ${(err as Error).stack ?? String(err)}`, 1);
  }
  await runCleanups();

  const host = {
    kernel: os.release(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memTotalGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100),
    node: process.version,
  };
  if (options.json) {
    const out = {
      benchmark: name,
      startedAt: started.toISOString(),
      options: { quick: options.quick, runs: options.runs, density: options.density },
      host,
      results: result.data,
      targets: result.targets,
      problems: result.problems,
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } else {
    const lines = [
      `benchmark ${name} — ${started.toISOString()}${options.quick ? ' (--quick: smoke run, not a measurement)' : ''}`,
      `host: Linux ${host.kernel}, ${host.cpus} × ${host.cpuModel}, ${host.memTotalGiB} GiB, node ${host.node}, load ${host.loadavg.join(' ')}`,
      '',
    ];
    for (const t of result.tables) lines.push(renderTable(t), '');
    if (result.targets.length) lines.push(renderTargets(result.targets), '');
    for (const p of result.problems) lines.push(`PROBLEM: ${p}`);
    process.stdout.write(`${lines.join('\n').trimEnd()}\n`);
  }
  process.exitCode = result.problems.length ? 1 : 0;
}

await main();
