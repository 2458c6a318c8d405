/**
 * `start`: how fast a sandbox starts and how little an idle one costs, next to peers measured in the
 * same run (see bench/README.md for what each figure means and how it is measured).
 *
 *  1. ai-sandbox through the real helper API: a private helper daemon (own run root, socket and cgroup
 *     parent, exactly like the integration tests' TestHelper), `sandbox.create` attached + autoRemove;
 *     request→execve as the helper measures it, and end to end on the client (create sent → exit event).
 *  2. bubblewrap with comparable isolation, 3. plain `unshare`, 4. a bare spawn with no isolation — all
 *     from Node's child_process.spawn to the exit event. Every method runs once per round, in rotating
 *     order, so drift on this shared machine hits all of them alike.
 *  5. Density: host memory per idle sandbox at N (500) `sleep infinity` sandboxes, minus the same figure
 *     for N plain `sleep infinity` processes.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { HelperClient } from '../privileged-helper/src/protocol/client.js';
import type { ExitReport } from '../privileged-helper/src/protocol/schema.js';
import { Aborted, type BenchContext, type BenchResult } from './harness.js';
import { startPrivateHelper, tail, withTimeout, type PrivateHelper } from './private-helper.js';
import { fmt, median, nowMs, ratioText, round3, roundSummary, summarize, type Summary, type Table, type TargetCheck } from './stats.js';

const TRUE = ['/usr/bin/true'];
const PYTHON = ['/usr/bin/python3', '-S', '-c', 'pass'];
const SLEEP = ['/usr/bin/sleep', 'infinity'];
const BWRAP = '/usr/bin/bwrap';
const UNSHARE = '/usr/bin/unshare';
/** one start that takes longer than this is a hang, not a sample */
const RUN_TIMEOUT_MS = 15_000;

const TARGET_E2E_TRUE_P50_MS = 5;
const TARGET_VS_BWRAP = 3;
const TARGET_MB_PER_SANDBOX = 1;
const MB = 1e6;

/** bubblewrap as close to our isolation as it gets: new pid/mount/uts/ipc/net (+user, cgroup) namespaces. */
function bwrapArgv(argv: string[]): string[] {
  return [
    BWRAP,
    '--unshare-all',
    '--die-with-parent',
    '--new-session',
    '--cap-drop', 'ALL',
    '--ro-bind', '/usr', '/usr',
    '--symlink', 'usr/bin', '/bin',
    '--symlink', 'usr/lib', '/lib',
    '--symlink', 'usr/lib64', '/lib64',
    '--symlink', 'usr/sbin', '/sbin',
    '--proc', '/proc',
    '--dev', '/dev',
    '--tmpfs', '/tmp',
    '--',
    ...argv,
  ];
}

function unshareArgv(argv: string[]): string[] {
  return [UNSHARE, '--fork', '--pid', '--mount', '--uts', '--ipc', '--net', '--mount-proc', ...argv];
}

interface Sample {
  e2eMs: number;
  /** request→execve, as measured by the helper (ours only) */
  execMs?: number;
  /** end of the stream → the sandbox gone from sandbox.list (ours only; polled every ~1 ms) */
  removedMs?: number;
}

interface Method {
  id: 'ours' | 'bwrap' | 'unshare' | 'direct';
  label: string;
  run(argv: string[]): Promise<Sample>;
  /** set when a run failed: the method is dropped from the rest of the run */
  error?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Node spawn → exit of `argv`; stdio ignored (no pipes to set up, which favours the peers slightly). */
function spawnToExit(argv: string[]): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const p = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    const timer = setTimeout(() => p.kill('SIGKILL'), RUN_TIMEOUT_MS);
    p.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    p.once('exit', (code, signal) => {
      const e2eMs = nowMs() - t0;
      clearTimeout(timer);
      if (code === 0) resolve({ e2eMs });
      else reject(new Error(`${argv.join(' ')} exited ${code ?? signal}`));
    });
  });
}

/** One attached, auto-removed sandbox: create sent → exit event; waits for the stream's end. */
async function sandboxToExit(client: HelperClient, argv: string[]): Promise<Sample> {
  const t0 = nowMs();
  const res = await withTimeout(
    client.call('sandbox.create', { spec: { command: argv }, attach: true, autoRemove: true }),
    RUN_TIMEOUT_MS,
    'sandbox.create',
  );
  const stream = res.stream;
  if (stream === null) throw new Error('sandbox.create with attach:true returned no stream');
  const { e2eMs, report } = await withTimeout(
    new Promise<{ e2eMs: number; report: ExitReport | null }>((resolve) => {
      let exit: { e2eMs: number; report: ExitReport } | null = null;
      client.onStream(stream, (f) => {
        if (f.kind !== 'event' || !f.event) return;
        if (f.event.type === 'exit') exit = { e2eMs: nowMs() - t0, report: f.event.report };
        else if (f.event.type === 'end') resolve(exit ?? { e2eMs: Number.NaN, report: null });
      });
    }),
    RUN_TIMEOUT_MS,
    `sandbox ${res.name} (${argv.join(' ')})`,
  );
  if (!report) throw new Error(`sandbox ${res.name}: the stream ended without an exit event`);
  if (report.reason !== 'exited' || report.exitCode !== 0) {
    throw new Error(`sandbox ${res.name} (${argv.join(' ')}): ${report.reason} exit ${report.exitCode}${report.signal ? ` signal ${report.signal}` : ''}${report.message ? `: ${report.message}` : ''}`);
  }
  // autoRemove tears the sandbox down after the exit event; wait for that (unmeasured in e2e) so it does
  // not run into the next method's measurement
  const t1 = nowMs();
  const deadline = t1 + RUN_TIMEOUT_MS;
  for (;;) {
    const { sandboxes } = await client.call('sandbox.list', {});
    if (!sandboxes.some((s) => s.name === res.name)) break;
    if (nowMs() > deadline) throw new Error(`sandbox ${res.name} was not auto-removed within ${RUN_TIMEOUT_MS} ms of its exit`);
    await sleep(1);
  }
  return { e2eMs, execMs: res.startMs, removedMs: nowMs() - t1 };
}

// ---- memory -------------------------------------------------------------------------------------

type Meminfo = Record<string, number>;

function readMeminfo(): Meminfo {
  const out: Meminfo = {};
  for (const line of fs.readFileSync('/proc/meminfo', 'utf8').split('\n')) {
    const m = /^(\w+(?:\(\w+\))?):\s+(\d+)/.exec(line);
    if (m) out[m[1]!] = Number(m[2]) * 1024; // kB → bytes
  }
  return out;
}

/**
 * Host memory in use, page cache excluded: MemTotal − MemFree − Buffers − (Cached − Shmem).
 * Anonymous memory, all slab (reclaimable too: a sandbox's dentries and inodes are its cost), page
 * tables, kernel stacks, per-cpu and vmalloc allocations (cgroup structures) and shmem/tmpfs count;
 * file-backed page cache does not.
 */
function usedBytes(m: Meminfo): number {
  const g = (k: string): number => m[k] ?? 0;
  return g('MemTotal') - g('MemFree') - g('Buffers') - (g('Cached') - g('Shmem'));
}

const BREAKDOWN = ['AnonPages', 'Slab', 'SUnreclaim', 'SReclaimable', 'PageTables', 'KernelStack', 'Shmem', 'Percpu', 'VmallocUsed'] as const;

interface MemSnapshot {
  used: number;
  fields: Record<string, number>;
}

/** Median of 5 readings 100 ms apart, after letting the system settle. */
async function memSnapshot(settleMs = 1000): Promise<MemSnapshot> {
  await sleep(settleMs);
  const reads: Meminfo[] = [];
  for (let i = 0; i < 5; i++) {
    reads.push(readMeminfo());
    if (i < 4) await sleep(100);
  }
  const fields: Record<string, number> = {};
  for (const k of BREAKDOWN) fields[k] = median(reads.map((r) => r[k] ?? 0));
  return { used: median(reads.map(usedBytes)), fields };
}

interface DensityFigure {
  count: number;
  startSeconds: number;
  perItemBytes: number;
  perItemFields: Record<string, number>;
  /** memory still in use after everything was stopped, vs before (all items together) */
  leftAfterBytes: number;
}

function perItem(before: MemSnapshot, after: MemSnapshot, count: number): { perItemBytes: number; perItemFields: Record<string, number> } {
  const perItemFields: Record<string, number> = {};
  for (const k of BREAKDOWN) perItemFields[k] = ((after.fields[k] ?? 0) - (before.fields[k] ?? 0)) / count;
  return { perItemBytes: (after.used - before.used) / count, perItemFields };
}

async function densityPlain(ctx: BenchContext, count: number): Promise<DensityFigure> {
  const pids = new Set<number>();
  const exited: Array<Promise<void>> = [];
  const killAll = async (): Promise<void> => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await Promise.all(exited);
    pids.clear();
  };
  const unregister = ctx.onCleanup(killAll);
  try {
    const before = await memSnapshot();
    const t0 = nowMs();
    for (let i = 0; i < count; i++) {
      if (ctx.aborted) throw new Aborted();
      const p = spawn(SLEEP[0]!, SLEEP.slice(1), { stdio: 'ignore' });
      exited.push(new Promise((r) => p.once('exit', () => r())));
      await new Promise<void>((resolve, reject) => {
        p.once('spawn', resolve);
        p.once('error', reject);
      });
      pids.add(p.pid!);
    }
    const startSeconds = (nowMs() - t0) / 1000;
    const after = await memSnapshot();
    await killAll();
    const end = await memSnapshot();
    return { count, startSeconds, ...perItem(before, after, count), leftAfterBytes: end.used - before.used };
  } finally {
    await killAll();
    unregister();
  }
}

interface SandboxDensity extends DensityFigure {
  running: number;
  census: { sandboxes: number; mounts: number; cgroups: number; processes: number };
  cgroupChargedBytes: number | null;
}

function readNumber(file: string): number | null {
  try {
    return Number(fs.readFileSync(file, 'utf8').trim());
  } catch {
    return null;
  }
}

async function densitySandboxes(ctx: BenchContext, { helper, client, idleCensus }: PrivateHelper, count: number): Promise<SandboxDensity> {
  const names: string[] = [];
  const removeAll = async (): Promise<void> => {
    // a few at a time: each remove stops a sandbox and tears down its mounts and cgroups
    // (on Ctrl-C the helper is going down anyway: its SIGTERM stops them all)
    const queue = [...names];
    let failures = 0;
    const worker = async (): Promise<void> => {
      for (let n = queue.pop(); n !== undefined && !ctx.aborted; n = queue.pop()) {
        await withTimeout(client.call('sandbox.remove', { name: n, force: true }), RUN_TIMEOUT_MS, `sandbox.remove ${n}`).catch((err: Error) => {
          if (failures++ === 0) ctx.log(`remove ${n}: ${err.message}`);
        });
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    if (failures > 1) ctx.log(`... and ${failures - 1} more removes failed`);
    names.length = 0;
  };
  const before = await memSnapshot();
  const t0 = nowMs();
  try {
    for (let i = 0; i < count; i++) {
      if (ctx.aborted) throw new Aborted();
      const res = await withTimeout(
        client.call('sandbox.create', { spec: { command: SLEEP }, attach: false, autoRemove: false }),
        RUN_TIMEOUT_MS,
        'sandbox.create (detached)',
      );
      names.push(res.name);
    }
    const startSeconds = (nowMs() - t0) / 1000;
    const after = await memSnapshot();
    const { sandboxes } = await client.call('sandbox.list', {});
    const running = sandboxes.filter((s) => s.status === 'running').length;
    const cgroupChargedBytes = readNumber(path.join('/sys/fs/cgroup/memory', helper.cgroupParent, 'memory.usage_in_bytes'));
    await removeAll();
    // the census must come back to empty: no sandbox records, mounts, cgroups or processes
    let census = { sandboxes: -1, mounts: -1, cgroups: -1, processes: -1 };
    const deadline = Date.now() + 10_000;
    for (;;) {
      const list = await client.call('sandbox.list', {});
      const c = helper.census();
      const extra = <T>(now: T[], idle: T[]): number => now.filter((x) => !idle.includes(x)).length;
      census = {
        sandboxes: list.sandboxes.length,
        mounts: extra(c.mounts, idleCensus.mounts),
        cgroups: extra(c.cgroups, idleCensus.cgroups),
        processes: extra(c.processes, idleCensus.processes),
      };
      if (Object.values(census).every((v) => v === 0) || Date.now() > deadline) break;
      await sleep(200);
    }
    const end = await memSnapshot();
    return { count, startSeconds, ...perItem(before, after, count), leftAfterBytes: end.used - before.used, running, census, cgroupChargedBytes };
  } finally {
    if (names.length) await removeAll();
  }
}

// ---- the benchmark --------------------------------------------------------------------------------

interface CaseResult {
  program: string;
  warmup: number;
  runs: number;
  e2e: Partial<Record<Method['id'], Summary>>;
  exec: Summary | null;
  removed: Summary | null;
}

async function measureCase(ctx: BenchContext, methods: Method[], argv: string[], warmup: number, runs: number): Promise<CaseResult> {
  const samples = new Map<Method['id'], Sample[]>(methods.map((m) => [m.id, []]));
  const program = argv.map((a) => (a.includes(' ') || a === '' ? JSON.stringify(a) : a)).join(' ');
  const round = async (i: number, record: boolean): Promise<void> => {
    for (let k = 0; k < methods.length; k++) {
      const m = methods[(i + k) % methods.length]!;
      if (m.error) continue;
      if (ctx.aborted) throw new Aborted();
      try {
        const s = await m.run(argv);
        if (record) samples.get(m.id)!.push(s);
      } catch (err) {
        m.error = (err as Error).message;
        ctx.log(`${m.label} failed, dropped from this run: ${m.error}`);
      }
    }
  };
  ctx.log(`${program}: ${warmup} warm-up rounds, then ${runs} measured rounds of ${methods.filter((m) => !m.error).map((m) => m.id).join(', ')}`);
  for (let i = 0; i < warmup; i++) await round(i, false);
  for (let i = 0; i < runs; i++) {
    await round(i, true);
    if ((i + 1) % 50 === 0) ctx.log(`${program}: ${i + 1}/${runs}`);
  }
  const e2e: CaseResult['e2e'] = {};
  for (const m of methods) {
    const s = samples.get(m.id)!;
    if (s.length) e2e[m.id] = summarize(s.map((x) => x.e2eMs));
  }
  const oursOf = (k: 'execMs' | 'removedMs'): Summary | null => {
    const v = (samples.get('ours') ?? []).map((x) => x[k]).filter((x): x is number => x !== undefined);
    return v.length ? summarize(v) : null;
  };
  return { program, warmup, runs, e2e, exec: oursOf('execMs'), removed: oursOf('removedMs') };
}

export async function run(ctx: BenchContext): Promise<BenchResult> {
  const o = ctx.options;
  const trueRuns = o.runs ?? (o.quick ? 20 : 200);
  const pyRuns = o.runs !== null ? Math.max(1, Math.round(o.runs / 2)) : o.quick ? 10 : 100;
  const warmup = o.quick ? 3 : 20;
  const density = o.density ?? (o.quick ? 50 : 500);
  const problems: string[] = [];

  // ours: a private helper
  let ours: PrivateHelper | null = null;
  let oursError: string | null = null;
  try {
    ctx.log('starting a private helper daemon');
    ours = await startPrivateHelper(ctx);
  } catch (err) {
    oursError = `private helper did not start: ${(err as Error).message}`;
    ctx.log(oursError);
  }

  try {
    const methods: Method[] = [];
    const o2 = ours;
    if (o2) methods.push({ id: 'ours', label: 'ai-sandbox', run: (argv) => sandboxToExit(o2.client, argv) });
    const peers: Array<[Method['id'], string, string, (a: string[]) => string[]]> = [
      ['bwrap', 'bubblewrap', BWRAP, bwrapArgv],
      ['unshare', 'unshare', UNSHARE, unshareArgv],
      ['direct', 'bare spawn', '', (a) => a],
    ];
    for (const [id, label, bin, wrap] of peers) {
      if (bin && !fs.existsSync(bin)) {
        problems.push(`${label} is not installed (${bin}): run scripts/setup.sh`);
        continue;
      }
      methods.push({ id, label, run: (argv) => spawnToExit(wrap(argv)) });
    }

    const cases = [await measureCase(ctx, methods, TRUE, warmup, trueRuns), await measureCase(ctx, methods, PYTHON, Math.min(warmup, 5), pyRuns)];
    const oursMethod = methods.find((m) => m.id === 'ours');
    if (oursMethod?.error) oursError = `ai-sandbox runs failed: ${oursMethod.error}`;
    for (const m of methods) if (m.error && m.id !== 'ours') problems.push(`${m.label} failed: ${m.error}`);

    // density
    let plainDensity: DensityFigure | null = null;
    let sbDensity: SandboxDensity | null = null;
    ctx.log(`density: ${density} plain \`sleep infinity\` processes`);
    plainDensity = await densityPlain(ctx, density);
    if (ours && !oursError) {
      ctx.log(`density: ${density} detached \`sleep infinity\` sandboxes`);
      try {
        sbDensity = await densitySandboxes(ctx, ours, density);
      } catch (err) {
        if (err instanceof Aborted) throw err;
        oursError = `density run failed: ${(err as Error).message}`;
      }
    }
    if (sbDensity) {
      if (sbDensity.running !== density) problems.push(`only ${sbDensity.running} of ${density} sandboxes were running at the memory reading`);
      const c = sbDensity.census;
      if (Object.values(c).some((v) => v !== 0)) {
        problems.push(`the helper's census is not empty after removing every sandbox: ${c.sandboxes} records, ${c.mounts} mounts, ${c.cgroups} cgroups, ${c.processes} processes`);
      }
    }

    if (ours) {
      const helperStop = nowMs();
      await ours.cleanup();
      ctx.log(`private helper stopped in ${fmt(nowMs() - helperStop, 0)} ms`);
    }
    if (oursError) problems.unshift(oursError + (ours ? `\nhelper stderr (tail):\n${tail(ours.helper.stderr)}` : ''));

    return report({ cases, plainDensity, sbDensity, density, problems, trueRuns, pyRuns, warmup });
  } finally {
    if (ours) await ours.cleanup();
  }
}

// ---- output -----------------------------------------------------------------------------------------

const LABELS: Record<Method['id'], string> = {
  ours: 'ai-sandbox',
  bwrap: 'bubblewrap',
  unshare: 'unshare',
  direct: 'bare spawn (no isolation)',
};

function report(r: {
  cases: CaseResult[];
  plainDensity: DensityFigure | null;
  sbDensity: SandboxDensity | null;
  density: number;
  problems: string[];
  trueRuns: number;
  pyRuns: number;
  warmup: number;
}): BenchResult {
  const tables: Table[] = [];
  const latencyRows: string[][] = [];
  for (const c of r.cases) {
    const direct = c.e2e.direct?.p50;
    const row = (what: string, s: Summary | undefined | null, overhead: boolean): string[] => [
      c.program,
      what,
      s ? String(s.n) : '0',
      fmt(s?.min),
      fmt(s?.p50),
      fmt(s?.p90),
      fmt(s?.max),
      overhead && s && direct !== undefined ? `+${fmt(s.p50 - direct)}` : '',
    ];
    latencyRows.push(row('ai-sandbox request→execve (helper)', c.exec, false));
    for (const id of ['ours', 'bwrap', 'unshare', 'direct'] as const) {
      latencyRows.push(row(`${LABELS[id]} end to end`, c.e2e[id], id !== 'direct'));
      if (id === 'ours') latencyRows.push(row('ai-sandbox exit → auto-removed (polled)', c.removed, false));
    }
  }
  tables.push({
    title: 'Start latency, ms (each round runs every method once, in rotating order)',
    columns: [
      { header: 'program', align: 'left' },
      { header: 'method', align: 'left' },
      { header: 'n' },
      { header: 'min' },
      { header: 'p50' },
      { header: 'p90' },
      { header: 'max' },
      { header: 'p50 − bare' },
    ],
    rows: latencyRows,
    notes: [
      `warm-up rounds: ${r.cases.map((c) => `${c.warmup} (${c.program})`).join(', ')}; end to end = client sends sandbox.create → exit event (ai-sandbox), spawn() → exit (others)`,
      'p50 − bare: what the isolation adds over Node spawning the program directly',
    ],
  });

  const ratioRows: string[][] = [];
  const ratios: Record<string, Record<string, number | null>> = {};
  for (const c of r.cases) {
    const o = c.e2e.ours?.p50;
    ratios[c.program] = {};
    for (const id of ['bwrap', 'unshare'] as const) {
      const p = c.e2e[id]?.p50;
      const val = o !== undefined && p !== undefined ? p / o : null;
      ratios[c.program]![`vs_${id}`] = val === null ? null : round3(val);
      ratioRows.push([c.program, `end to end p50: ${fmt(o)} ms vs ${fmt(p)} ms`, o !== undefined && p !== undefined ? ratioText(o, p, LABELS[id]) : 'n/a']);
    }
  }
  tables.push({
    title: 'ai-sandbox vs peers (same run)',
    columns: [{ header: 'program', align: 'left' }, { header: 'figures', align: 'left' }, { header: 'ratio', align: 'left' }],
    rows: ratioRows,
  });

  const p = r.plainDensity;
  const s = r.sbDensity;
  const mb = (b: number | null | undefined, digits = 3): string => (b === null || b === undefined ? '—' : fmt(b / MB, digits));
  const beyond = p && s ? s.perItemBytes - p.perItemBytes : null;
  const densityRows: string[][] = [
    ['started', s ? `${s.count} in ${fmt(s.startSeconds)} s (${fmt(s.count / s.startSeconds, 0)}/s)` : '—', p ? `${p.count} in ${fmt(p.startSeconds)} s (${fmt(p.count / p.startSeconds, 0)}/s)` : '—'],
    ['host memory used, per item (MB)', mb(s?.perItemBytes), mb(p?.perItemBytes)],
  ];
  for (const k of BREAKDOWN) densityRows.push([`  of which Δ${k} (kB)`, s ? fmt((s.perItemFields[k] ?? 0) / 1024, 1) : '—', p ? fmt((p.perItemFields[k] ?? 0) / 1024, 1) : '—']);
  densityRows.push(['still used after stop, all items (MB)', mb(s?.leftAfterBytes, 1), mb(p?.leftAfterBytes, 1)]);
  tables.push({
    title: `Density: ${r.density} idle \`sleep infinity\` (host /proc/meminfo, page cache excluded; MB = 10^6 bytes)`,
    columns: [{ header: 'figure', align: 'left' }, { header: 'ai-sandbox' }, { header: 'plain process' }],
    rows: densityRows,
    notes: [
      `beyond the program itself: ${beyond === null ? '—' : `${mb(beyond)} MB per sandbox`}`,
      s ? `running at the reading: ${s.running}/${s.count}; census after removal (beyond the idle helper's): ${s.census.sandboxes} sandboxes, ${s.census.mounts} mounts, ${s.census.cgroups} cgroups, ${s.census.processes} processes` : 'ai-sandbox density not measured',
      ...(s?.cgroupChargedBytes != null ? [`cross-check: charged to the sandboxes' v1 memory cgroups: ${mb(s.cgroupChargedBytes / s.count)} MB per sandbox`] : []),
      'readings are noisy on a shared machine: other work allocating during the run lands in these figures',
    ],
  });

  const trueCase = r.cases[0];
  const e2eTrue = trueCase?.e2e.ours?.p50;
  const bwrapTrue = trueCase?.e2e.bwrap?.p50;
  const vsBwrap = e2eTrue !== undefined && bwrapTrue !== undefined ? bwrapTrue / e2eTrue : null;
  const targets: TargetCheck[] = [
    {
      what: 'end-to-end `true` p50',
      target: `≤ ${TARGET_E2E_TRUE_P50_MS} ms`,
      actual: e2eTrue === undefined ? 'not measured' : `${fmt(e2eTrue)} ms`,
      met: e2eTrue === undefined ? null : e2eTrue <= TARGET_E2E_TRUE_P50_MS,
    },
    {
      what: 'end-to-end `true` p50 vs bubblewrap',
      target: `≥ ${TARGET_VS_BWRAP}× faster`,
      actual: vsBwrap === null ? 'not measured' : ratioText(e2eTrue!, bwrapTrue!, 'bubblewrap').replace(' than bubblewrap', ''),
      met: vsBwrap === null ? null : vsBwrap >= TARGET_VS_BWRAP,
    },
    {
      what: 'memory per idle sandbox beyond the program',
      target: `≤ ${TARGET_MB_PER_SANDBOX} MB`,
      actual: beyond === null ? 'not measured' : `${mb(beyond)} MB`,
      met: beyond === null ? null : beyond <= TARGET_MB_PER_SANDBOX * MB,
    },
  ];

  const densityJson = (d: DensityFigure | null) =>
    d && {
      count: d.count,
      startSeconds: round3(d.startSeconds),
      perItemMB: round3(d.perItemBytes / MB),
      perItemKiB: Object.fromEntries(Object.entries(d.perItemFields).map(([k, v]) => [k, round3(v / 1024)])),
      leftAfterStopMB: round3(d.leftAfterBytes / MB),
    };
  const data = {
    config: { trueRuns: r.trueRuns, pythonRuns: r.pyRuns, warmupRounds: r.warmup, density: r.density },
    latencyMs: Object.fromEntries(
      r.cases.map((c) => [
        c.program,
        {
          oursRequestToExecve: c.exec && roundSummary(c.exec),
          oursExitToRemoved: c.removed && roundSummary(c.removed),
          endToEnd: Object.fromEntries(Object.entries(c.e2e).map(([k, v]) => [k, roundSummary(v)])),
        },
      ]),
    ),
    ratiosEndToEndP50: ratios,
    density: {
      sandbox: s && { ...densityJson(s), running: s.running, census: s.census, cgroupChargedPerSandboxMB: s.cgroupChargedBytes == null ? null : round3(s.cgroupChargedBytes / s.count / MB) },
      plainProcess: densityJson(p),
      beyondProgramMBPerSandbox: beyond === null ? null : round3(beyond / MB),
    },
  };
  return { tables, targets, data, problems: r.problems };
}
