/**
 * `npm run bench -- workflow`: a 10-step sequential workflow of trivial steps end to end (the design
 * document quotes ~550 ms, ~250 ms with snapshots), the engine's own cost per step beyond a sandbox
 * start measured in the same run, and 100 parallel light steps on this machine.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HelperClient } from '../privileged-helper/src/protocol/client.js';
import { Aborted, type BenchContext, type BenchResult } from './harness.js';
import { startPrivateHelper } from './private-helper.js';
import { fmt, nowMs, roundSummary, summarize, type TargetCheck } from './stats.js';

function sequential(n: number): string {
  const steps = Array.from({ length: n }, (_, i) => `  s${i}:\n    run: ["/usr/bin/true"]\n${i ? `    needs: [s${i - 1}]\n` : ''}`).join('');
  return `version: 1\nname: seq${n}\nsteps:\n${steps}`;
}

function parallel(n: number, maxParallel: number): string {
  const steps = Array.from({ length: n }, (_, i) => `  p${i}:\n    run: ["/usr/bin/true"]\n`).join('');
  return `version: 1\nname: par${n}\npool:\n  maxParallel: ${maxParallel}\nsteps:\n${steps}`;
}

/** Start a workflow and resolve when its run ends, with the wall time from the request. */
async function runWorkflow(client: HelperClient, file: string, text: string): Promise<number> {
  const t0 = nowMs();
  const run = await client.call('workflow.start', { text, file });
  const { stream } = await client.call('workflow.watch', { run: run.id });
  const status = await new Promise<string>((resolve) =>
    client.onStream(stream, (f) => {
      if (f.event?.type === 'workflow' && f.event.event.type === 'run') resolve(f.event.event.status);
    }),
  );
  if (status !== 'succeeded') throw new Error(`workflow ${run.id} ended ${status}`);
  return nowMs() - t0;
}

async function sandboxTrue(client: HelperClient): Promise<number> {
  const t0 = nowMs();
  const r = await client.call('sandbox.create', { spec: { command: ['/usr/bin/true'] }, attach: true, autoRemove: true });
  await new Promise<void>((resolve) =>
    client.onStream(r.stream!, (f) => {
      if (f.event?.type === 'end') resolve();
    }),
  );
  return nowMs() - t0;
}

export async function run(ctx: BenchContext): Promise<BenchResult> {
  const runs = ctx.options.runs ?? (ctx.options.quick ? 3 : 15);
  const ph = await startPrivateHelper(ctx);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-wf-'));
  ctx.onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  try {
    const { client } = ph;
    const seqFile = path.join(dir, 'seq.yaml');
    const seq = sequential(10);
    fs.writeFileSync(seqFile, seq);
    const seqMs: number[] = [];
    const singleMs: number[] = [];
    await runWorkflow(client, seqFile, seq); // warm-up
    for (let i = 0; i < runs; i++) {
      if (ctx.aborted) throw new Aborted();
      seqMs.push(await runWorkflow(client, seqFile, seq));
      for (let j = 0; j < 10; j++) singleMs.push(await sandboxTrue(client));
    }
    const parFile = path.join(dir, 'par.yaml');
    const par = parallel(100, 8);
    fs.writeFileSync(parFile, par);
    const parMs: number[] = [];
    for (let i = 0; i < (ctx.options.quick ? 1 : 3); i++) parMs.push(await runWorkflow(client, parFile, par));

    const seqS = summarize(seqMs);
    const single = summarize(singleMs);
    const parS = summarize(parMs);
    const perStep = (seqS.p50 - 10 * single.p50) / 10;
    const targets: TargetCheck[] = [
      { what: '10-step sequential run of trivial steps', target: '< 150 ms', actual: `${fmt(seqS.p50)} ms`, met: seqS.p50 < 150 },
      { what: 'orchestration per step beyond the sandbox', target: '≤ 5 ms', actual: `${fmt(perStep)} ms`, met: perStep <= 5 },
    ];
    return {
      tables: [
        {
          title: 'Workflows through the helper API, ms',
          columns: [{ header: 'what', align: 'left' }, { header: 'n' }, { header: 'p50' }, { header: 'p90' }],
          rows: [
            ['10-step sequential workflow of `true`, start → run ended', String(seqS.n), fmt(seqS.p50), fmt(seqS.p90)],
            ['one `true` sandbox, create → exit (same run)', String(single.n), fmt(single.p50), fmt(single.p90)],
            ['100 parallel `true` steps, maxParallel 8, start → run ended', String(parS.n), fmt(parS.p50), fmt(parS.p90)],
          ],
          notes: [
            `orchestration per step beyond a sandbox start: ${fmt(perStep)} ms (10-step p50 minus 10 sandbox p50s, over 10)`,
            `100 parallel steps: ${fmt(100000 / parS.p50, 0)} steps/s on ${os.cpus().length} cores; the design document quotes ~550 ms for 10 sequential steps`,
          ],
        },
      ],
      targets,
      data: { sequential10: roundSummary(seqS), sandboxTrue: roundSummary(single), parallel100: roundSummary(parS), orchestrationPerStepMs: perStep },
      problems: [],
    };
  } finally {
    await ph.cleanup();
  }
}
