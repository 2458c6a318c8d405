/**
 * `npm run bench -- snapshot`: CRIU checkpoint and restore through the helper API, for an idle Python
 * sandbox and one holding 100 MB; a fork of 10 copies; and a Python agent that imports a realistic set of
 * standard modules, cold-started side by side with forking its warm snapshot (the seed's "fork from a
 * warm snapshot"). Figures are printed with their targets, never asserted.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { HelperClient } from '../privileged-helper/src/protocol/client.js';
import { Aborted, type BenchContext, type BenchResult } from './harness.js';
import { startPrivateHelper } from './private-helper.js';
import { fmt, nowMs, roundSummary, summarize, type Summary, type TargetCheck } from './stats.js';

const PY = '/usr/bin/python3';
const IDLE = [PY, '-c', 'import time\nprint("ready", flush=True)\nwhile True: time.sleep(1)'];
const BIG = [PY, '-c', 'import time\nb = bytearray(100 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint("ready", flush=True)\nwhile True: time.sleep(1)'];
const IMPORTS = 'json, re, asyncio, http.client, urllib.request, email.message, xml.etree.ElementTree, sqlite3, decimal, datetime, subprocess, logging, argparse, csv, hashlib, uuid, typing, dataclasses, pathlib, statistics';
/** The agent: imports, then waits for its task on stdin and answers. */
const AGENT = [PY, '-c', `import ${IMPORTS}\nimport sys\nprint("imported", flush=True)\nline = sys.stdin.readline()\nprint("answer", line.strip(), flush=True)\nimport time\nwhile True: time.sleep(1)`];

/** Resolves when the sandbox's output (followed from the start) contains `text`. */
function waitOutput(client: HelperClient, stream: string, text: string): Promise<void> {
  return new Promise((resolve) => {
    let seen = '';
    client.onStream(stream, (f) => {
      if (f.data) seen += Buffer.from(f.data, 'base64').toString();
      if (seen.includes(text)) resolve();
    });
  });
}

async function startAndWait(client: HelperClient, name: string, command: string[], text: string): Promise<void> {
  const r = await client.call('sandbox.create', { spec: { name, command, limits: { memoryBytes: 512 << 20 } }, attach: true, autoRemove: false });
  await waitOutput(client, r.stream!, text);
}

/**
 * Where one checkpoint's time went, from the timings the helper records in the snapshot's meta.json:
 * waiting for the init to settle, criu dump, archiving the upper layer, checksumming the files; `other`
 * is the rest of the request (ending the tree, the socket round trip).
 */
function checkpointPhases(snapshotsDir: string, id: string, totalMs: number): Record<string, number> {
  const meta = JSON.parse(fs.readFileSync(path.join(snapshotsDir, id, 'meta.json'), 'utf8')) as { timings?: Record<string, number> };
  const t = meta.timings ?? {};
  const phases: Record<string, number> = { settle: t.prepareMs ?? 0, 'criu dump': t.dumpMs ?? 0, archive: t.archiveMs ?? 0, checksums: t.commitMs ?? 0 };
  phases.other = totalMs - Object.values(phases).reduce((a, b) => a + b, 0);
  return phases;
}

export async function run(ctx: BenchContext): Promise<BenchResult> {
  const q = ctx.options.quick;
  const runs = ctx.options.runs ?? (q ? 3 : 15);
  const ph = await startPrivateHelper(ctx);
  const { client } = ph;
  const problems: string[] = [];
  let n = 0;
  const fresh = (p: string) => `${p}${n++}`;
  const cases: Record<string, { checkpoint: Summary; restore: Summary; imageMB: number; phases: Record<string, number> }> = {};
  const snapshotsDir = path.join(ph.helper.env.AI_SANDBOX_STATE_ROOT!, 'snapshots');
  try {
    for (const [label, cmd] of [['idle python3', IDLE], ['python3 holding 100 MB', BIG]] as const) {
      const cp: number[] = [];
      const rs: number[] = [];
      const phases: Record<string, number[]> = {};
      let imageMB = 0;
      for (let i = 0; i < runs; i++) {
        if (ctx.aborted) throw new Aborted();
        const name = fresh('cp');
        await startAndWait(client, name, [...cmd], 'ready');
        let t = nowMs();
        const snap = await client.call('snapshot.checkpoint', { name, leaveRunning: false });
        const total = nowMs() - t;
        cp.push(total);
        imageMB = snap.sizeBytes / 1e6;
        for (const [phase, ms] of Object.entries(checkpointPhases(snapshotsDir, snap.id, total))) (phases[phase] ??= []).push(ms);
        const restored = fresh('rs');
        t = nowMs();
        await client.call('snapshot.restore', { snapshot: snap.id, name: restored });
        rs.push(nowMs() - t);
        for (const s of [name, restored]) await client.call('sandbox.remove', { name: s, force: true });
        await client.call('snapshot.remove', { snapshot: snap.id });
      }
      cases[label] = { checkpoint: summarize(cp), restore: summarize(rs), imageMB, phases: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, summarize(v).p50])) };
      ctx.log(`${label}: checkpoint p50 ${fmt(cases[label]!.checkpoint.p50)} ms, restore p50 ${fmt(cases[label]!.restore.p50)} ms`);
    }

    // fork of 10 copies of the idle snapshot, started at once
    const forkRuns = q ? 1 : 5;
    const forks: number[] = [];
    const base = fresh('fb');
    await startAndWait(client, base, IDLE, 'ready');
    const template = await client.call('snapshot.checkpoint', { name: base, leaveRunning: false });
    for (let i = 0; i < forkRuns; i++) {
      const t = nowMs();
      const { names } = await client.call('snapshot.fork', { snapshot: template.id, count: 10, prefix: fresh('fk') });
      forks.push(nowMs() - t);
      for (const s of names) await client.call('sandbox.remove', { name: s, force: true });
    }
    await client.call('sandbox.remove', { name: base, force: true });

    // cold start of the agent vs a fork of its warm snapshot: request → the answer to its first task
    const cold: number[] = [];
    const warm: number[] = [];
    const agent = fresh('ag');
    await startAndWait(client, agent, AGENT, 'imported');
    const warmSnap = await client.call('snapshot.checkpoint', { name: agent, leaveRunning: false, label: 'warm agent' });
    await client.call('sandbox.remove', { name: agent, force: true });
    for (let i = 0; i < runs; i++) {
      if (ctx.aborted) throw new Aborted();
      const c = fresh('cold');
      let t = nowMs();
      const r = await client.call('sandbox.create', { spec: { name: c, command: AGENT }, attach: true, autoRemove: false });
      const answered = waitOutput(client, r.stream!, 'answer go');
      await client.call('io.write', { target: { sandbox: c }, data: Buffer.from('go\n').toString('base64') });
      await answered;
      cold.push(nowMs() - t);
      const w = fresh('warm');
      t = nowMs();
      const rr = await client.call('snapshot.restore', { snapshot: warmSnap.id, name: w, attach: true });
      const wAnswered = waitOutput(client, rr.stream!, 'answer go');
      await client.call('io.write', { target: { sandbox: w }, data: Buffer.from('go\n').toString('base64') });
      await wAnswered;
      warm.push(nowMs() - t);
      for (const s of [c, w]) await client.call('sandbox.remove', { name: s, force: true });
    }
    for (const s of (await client.call('snapshot.list', {})).snapshots) await client.call('snapshot.remove', { snapshot: s.id });
    const census = ph.helper.census();
    if (census.processes.length || census.cgroups.length) problems.push(`left behind: ${JSON.stringify(census)}`);
    const snapsLeft = fs.readdirSync(path.join(ph.helper.env.AI_SANDBOX_STATE_ROOT!, 'snapshots')).length;
    if (snapsLeft) problems.push(`${snapsLeft} snapshot directories left`);

    const idle = cases['idle python3']!;
    const coldS = summarize(cold);
    const warmS = summarize(warm);
    const forkS = summarize(forks);
    const speedup = coldS.p50 / warmS.p50;
    const targets: TargetCheck[] = [
      { what: 'checkpoint p50, idle python3', target: '≤ 30 ms', actual: `${fmt(idle.checkpoint.p50)} ms`, met: idle.checkpoint.p50 <= 30 },
      { what: 'restore p50, idle python3', target: '≤ 30 ms', actual: `${fmt(idle.restore.p50)} ms`, met: idle.restore.p50 <= 30 },
      { what: 'snapshot size, idle python3', target: '≤ 5 MB', actual: `${fmt(idle.imageMB)} MB`, met: idle.imageMB <= 5 },
      { what: 'warm fork vs cold start of the agent', target: '≥ 3× faster', actual: `${fmt(speedup, 1)}× faster`, met: speedup >= 3 },
    ];
    return {
      tables: [
        {
          title: 'Checkpoint and restore through the helper API, ms (restore = request → running again)',
          columns: [{ header: 'case', align: 'left' }, { header: 'op', align: 'left' }, { header: 'n' }, { header: 'p50' }, { header: 'p90' }, { header: 'image MB' }],
          rows: Object.entries(cases).flatMap(([label, c]) => [
            [label, 'checkpoint', String(c.checkpoint.n), fmt(c.checkpoint.p50), fmt(c.checkpoint.p90), fmt(c.imageMB)],
            [label, 'restore', String(c.restore.n), fmt(c.restore.p50), fmt(c.restore.p90), ''],
          ]),
          notes: Object.entries(cases).map(([label, c]) => `${label}, checkpoint p50 by phase: ${Object.entries(c.phases).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')} ms`),
        },
        {
          title: 'Fork and warm start, ms',
          columns: [{ header: 'what', align: 'left' }, { header: 'n' }, { header: 'p50' }, { header: 'p90' }],
          rows: [
            ['fork 10 copies of idle python3 (all running)', String(forkS.n), fmt(forkS.p50), fmt(forkS.p90)],
            [`agent cold start (imports ${IMPORTS.split(',').length} modules) → first answer`, String(coldS.n), fmt(coldS.p50), fmt(coldS.p90)],
            ['agent from its warm snapshot → first answer', String(warmS.n), fmt(warmS.p50), fmt(warmS.p90)],
          ],
          notes: [`warm start: ${fmt(speedup, 1)}× faster than cold`],
        },
      ],
      targets,
      data: {
        cases: Object.fromEntries(Object.entries(cases).map(([k, v]) => [k, { checkpoint: roundSummary(v.checkpoint), restore: roundSummary(v.restore), imageMB: v.imageMB, checkpointPhasesP50: v.phases }])),
        fork10: roundSummary(forkS),
        agentCold: roundSummary(coldS),
        agentWarm: roundSummary(warmS),
        warmSpeedup: speedup,
      },
      problems,
    };
  } finally {
    await ph.cleanup();
  }
}
