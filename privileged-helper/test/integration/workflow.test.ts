/** The workflow engine with real sandboxes: data passing, retries, the parallel limit, priorities. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HelperClient } from '../../src/protocol/client.js';
import { databaseFile } from '../../src/store/db.js';
import { RunStore } from '../../src/store/runs.js';
import type { RunState } from '../../src/workflow/run-state.js';
import { sleep, TestHelper } from './harness.js';

describe('workflow engine', () => {
  let helper: TestHelper;
  let client: HelperClient;
  let dir: string;
  beforeAll(async () => {
    helper = await TestHelper.start();
    client = await helper.client();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wf-'));
    fs.chmodSync(dir, 0o777);
  });
  afterAll(async () => {
    client?.close();
    await helper?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Start a workflow written to a file, wait for it, and return its final state. */
  async function run(name: string, yaml: string, during?: () => Promise<void>): Promise<RunState> {
    const file = path.join(dir, `${name}.yaml`);
    fs.writeFileSync(file, yaml);
    const started = await client.call('workflow.start', { text: yaml, file });
    const sampling = during?.();
    const r = await finished(started.id);
    await sampling;
    return r;
  }

  /** Poll a run until it is no longer running. */
  async function finished(id: string): Promise<RunState> {
    for (;;) {
      const r = await client.call('workflow.get', { run: id });
      if (r.status !== 'running') return r;
      await sleep(50);
    }
  }

  it('passes data through a 10-step sequential pipeline', async () => {
    const steps = Array.from({ length: 10 }, (_, i) =>
      i === 0
        ? `  s0:\n    run: echo 0 > n; echo scratch > /tmp/kept\n    outputs: [n]\n    snapshot: full\n`
        : `  s${i}:\n    needs: [s${i - 1}]\n    run: echo $(( $(cat /in/s${i - 1}/n) + ${i} )) > n\n    outputs: [n]\n`,
    );
    const r = await run('seq', `version: 1\nname: seq\nsteps:\n${steps.join('')}`);
    expect(r.status).toBe('succeeded');
    expect(r.steps.map((s) => s.status)).toEqual(Array(10).fill('succeeded'));
    const out = fs.readFileSync(path.join(helper.env.AI_SANDBOX_STATE_ROOT!, 'runs', 'daemon', r.id, 's9', 'out', 'n'), 'utf8');
    expect(Number(out)).toBe(45);
    // sizes are recorded; a `full` snapshot keeps the step's whole writable layer
    expect(r.steps[9]!.io).toMatchObject({ stdinBytes: 0, outputBytes: 3 });
    expect(r.steps[0]!.io?.snapshotBytes).toBeGreaterThan(0);
    const tar = fs.readFileSync(path.join(helper.env.AI_SANDBOX_STATE_ROOT!, 'runs', 'daemon', r.id, 's0', 'upper.tar'));
    expect(tar.includes(Buffer.from('tmp/kept'))).toBe(true);
  });

  it('retries a failing step alone: earlier steps run exactly once', async () => {
    const yaml = `version: 1
name: retry
defaults:
  mounts: ["${dir}:/shared"]
steps:
  a:
    run: echo a >> /shared/count
  b:
    needs: [a]
    run: echo b >> /shared/count
  c:
    needs: [b]
    retries: 2
    run: echo c >> /shared/count; if [ ! -e /shared/failed-once ]; then touch /shared/failed-once; exit 1; fi
  d:
    needs: [c]
    run: echo d >> /shared/count
`;
    const r = await run('retry', yaml);
    expect(r.status).toBe('succeeded');
    const counts = fs.readFileSync(path.join(dir, 'count'), 'utf8').trim().split('\n');
    expect(counts).toEqual(['a', 'b', 'c', 'c', 'd']);
    expect(r.steps.find((s) => s.id === 'c')?.attempts).toBe(2);
    // the daemon's history has both attempts, with how each ended
    const store = RunStore.open(databaseFile(helper.env.AI_SANDBOX_STATE_ROOT!));
    try {
      const attempts = store.getRun(r.id)!.attempts.filter((a) => a.stepId === 'c');
      expect(attempts.map((a) => [a.n, a.exit?.exitCode])).toEqual([
        [1, 1],
        [2, 0],
      ]);
    } finally {
      store.close();
    }
  });

  it('never runs more than maxParallel steps at once, and the pool memory limit holds', async () => {
    const steps = Array.from({ length: 20 }, (_, i) => `  p${i}:\n    run: sleep 0.3\n`).join('');
    const yaml = `version: 1\nname: par\npool:\n  maxParallel: 4\n  memory: 256M\nsteps:\n${steps}  hog:\n    run: /usr/bin/python3 -c 'b = bytearray(400 << 20)'\n`;
    let peak = 0;
    let samples = 0;
    const r = await run('par', yaml, async () => {
      for (let i = 0; i < 200; i++) {
        const live = (await client.call('sandbox.list', {})).sandboxes.filter((s) => s.status === 'running' && s.name.includes('-p'));
        peak = Math.max(peak, live.length);
        samples++;
        if (live.length === 0 && i > 20) break;
        await sleep(25);
      }
    });
    expect(samples).toBeGreaterThan(10);
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(4);
    expect(r.peakParallel).toBeLessThanOrEqual(4);
    const hog = r.steps.find((s) => s.id === 'hog')!;
    expect(hog.status).toBe('failed');
    expect(hog.exit?.reason).toBe('oom-killed');
  });

  it('starts critical tasks before background ones under contention', async () => {
    const yaml = `version: 1
name: queue
mode: queue
pool:
  maxParallel: 1
defaults:
  mounts: ["${dir}:/shared"]
steps:
  bg1:
    priority: background
    run: echo bg1 >> /shared/order
  bg2:
    priority: background
    run: echo bg2 >> /shared/order
  n1:
    run: echo n1 >> /shared/order
  crit:
    priority: critical
    run: echo crit >> /shared/order
`;
    const r = await run('queue', yaml);
    expect(r.status).toBe('succeeded');
    expect(fs.readFileSync(path.join(dir, 'order'), 'utf8').trim().split('\n')).toEqual(['crit', 'n1', 'bg1', 'bg2']);
  });

  it('replays from a middle step with edited input: only it and later steps run again', async () => {
    fs.rmSync(path.join(dir, 'count'), { force: true });
    const yaml = `version: 1
name: replay
defaults:
  mounts: ["${dir}:/shared"]
steps:
  first:
    run: echo first >> /shared/count; echo one > v
    outputs: [v]
  middle:
    needs: [first]
    run: echo middle >> /shared/count; echo "$(cat /in/first/v)-\${GREETING:-hello}" > v
    outputs: [v]
  last:
    needs: [middle]
    run: echo last >> /shared/count; cp /in/middle/v result
    outputs: [result]
`;
    const r1 = await run('replay', yaml);
    expect(r1.status).toBe('succeeded');
    const r2 = await client.call('workflow.replay', { run: r1.id, from: 'middle', env: { GREETING: 'edited' } });
    expect(r2.replayOf).toEqual({ run: r1.id, from: 'middle' });
    const final = await finished(r2.id);
    expect(final.status).toBe('succeeded');
    expect(final.steps.map((s) => `${s.id}:${s.status}`)).toEqual(['first:restored', 'middle:succeeded', 'last:succeeded']);
    expect(fs.readFileSync(path.join(dir, 'count'), 'utf8').trim().split('\n')).toEqual(['first', 'middle', 'last', 'middle', 'last']);
    const result = (id: string) => fs.readFileSync(path.join(helper.env.AI_SANDBOX_STATE_ROOT!, 'runs', 'daemon', id, 'last', 'out', 'result'), 'utf8').trim();
    expect(result(r1.id)).toBe('one-hello');
    expect(result(r2.id)).toBe('one-edited');
  });

  it('marks a run interrupted by kill -9 of the helper, keeps its history, resumes it, leaks nothing', async () => {
    fs.rmSync(path.join(dir, 'count'), { force: true });
    const yaml = `version: 1
name: crash
defaults:
  mounts: ["${dir}:/shared"]
steps:
  quick:
    run: echo quick >> /shared/count; echo done > v
    outputs: [v]
  slow:
    needs: [quick]
    run: echo slow >> /shared/count; sleep 1000
`;
    const file = path.join(dir, 'crash.yaml');
    fs.writeFileSync(file, yaml);
    const started = await client.call('workflow.start', { text: yaml, file });
    for (let i = 0; i < 100; i++) {
      const r = await client.call('workflow.get', { run: started.id });
      if (r.steps.find((s) => s.id === 'slow')?.status === 'running') break;
      await sleep(50);
    }
    client.close();
    await helper.kill9();
    await helper.startProcess();
    expect(helper.stderr).toContain(`runs interrupted by the previous helper's end: ${started.id}`);
    client = await helper.client();
    const after = await client.call('workflow.get', { run: started.id });
    expect(after.status).toBe('interrupted');
    expect(after.steps.map((s) => `${s.id}:${s.status}`)).toEqual(['quick:succeeded', 'slow:interrupted']);
    expect((await client.call('workflow.list', {})).runs.map((r) => r.id)).toContain(started.id);
    const census = await helper.settledCensus();
    expect(census.processes).toEqual([]);
    expect(census.cgroups).toEqual([]);
    // resume: replay from the interrupted step; the finished one is restored, not re-run
    const resumed = await client.call('workflow.replay', { run: started.id, from: 'slow', env: {} });
    expect(resumed.steps.find((s) => s.id === 'quick')?.status).toBe('restored');
    await client.call('workflow.cancel', { run: resumed.id });
    expect(fs.readFileSync(path.join(dir, 'count'), 'utf8').trim().split('\n').filter((l) => l === 'quick')).toHaveLength(1);
  });

  it('fails a run that hits its workflow timeout, and cancels what was running', async () => {
    const r = await run('timeout', 'version: 1\nname: slow\ntimeout: 1s\nsteps:\n  nap:\n    run: sleep 30\n  after:\n    needs: [nap]\n    run: echo never\n');
    expect(r.status).toBe('failed');
    expect(r.error).toMatch(/timeout/);
    expect(r.steps.map((s) => `${s.id}:${s.status}`)).toEqual(['nap:cancelled', 'after:cancelled']);
  });

  it('refuses an invalid workflow with positions, and leaves nothing behind', async () => {
    const err = await client.call('workflow.start', { text: 'version: 1\nname: x\nsteps:\n  a:\n    run: echo hi\n    needs: [nope]\n', file: '/tmp/x.yaml' }).catch((e: Error) => e);
    expect(String(err)).toMatch(/x.yaml:6:\d+: .*"nope" names no step/);
    const census = await helper.settledCensus();
    expect(census.processes).toEqual([]);
    expect(census.cgroups).toEqual([]);
  });
});
