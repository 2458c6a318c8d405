import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../errors/app-error.js';
import type { ExitReport } from '../protocol/schema.js';
import type { PlannedStep, WorkflowPlan } from '../workflow/plan.js';
import { databaseFile } from './db.js';
import { RunStore } from './runs.js';

const dirs: string[] = [];
const stores: RunStore[] = [];
afterEach(() => {
  stores.splice(0).forEach((s) => s.db.open && s.close());
  dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true }));
});

/** A real file in a temp dir, and a clock that ticks one second per reading so orderings are explicit. */
function setup(): { store: RunStore; file: string; reopen: () => RunStore } {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'store-runs-'));
  dirs.push(d);
  const file = databaseFile(d);
  let t = Date.parse('2025-01-01T00:00:00Z');
  const now = () => new Date((t += 1000));
  const open = () => {
    const s = RunStore.open(file, { now });
    stores.push(s);
    return s;
  };
  return { store: open(), file, reopen: open };
}

function step(id: string, needs: string[] = []): PlannedStep {
  return {
    id,
    step: id,
    matrix: null,
    level: needs.length === 0 ? 0 : 1,
    needs,
    spec: { command: ['/bin/sh', '-c', `echo ${id}`], limits: {}, mounts: [], env: { SECRET: 'kept' }, workdir: '/work' },
    retries: 1,
    snapshot: 'light',
    priority: 'normal',
    network: { mode: 'none' },
    outputs: [],
    inputs: [],
    stdinFrom: null,
  };
}

function plan(name: string, ids = ['fetch', 'parse', 'summarize']): WorkflowPlan {
  const steps = ids.map((id, i) => step(id, i === 0 ? [] : [ids[i - 1]!]));
  return {
    planVersion: 1,
    name,
    description: null,
    source: `/home/u/${name}.yaml`,
    mode: 'dag',
    onFailure: 'stop',
    timeoutMs: null,
    pool: { cpus: null, memoryBytes: null, maxParallel: 4 },
    order: ids,
    levels: ids.map((id) => [id]),
    steps,
  };
}

const exit = (exitCode: number): ExitReport => ({ exitCode, signal: null, reason: 'exited', cpuMs: 3, memoryPeakBytes: 1 << 20, startMs: 4, wallMs: 12 });

function thrown(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected an AppError');
}

describe('RunStore', () => {
  it('records a workflow once per distinct plan, plan JSON parsed back', () => {
    const { store } = setup();
    const p = plan('pipeline');
    const w = store.createWorkflow(p);
    expect(w.id).toMatch(/^w-[0-9a-f]{8}$/);
    expect(store.createWorkflow(plan('pipeline')).id).toBe(w.id);
    expect(store.createWorkflow(plan('pipeline', ['fetch', 'parse'])).id).not.toBe(w.id);
    expect(store.getWorkflow(w.id)).toEqual({ id: w.id, name: 'pipeline', source: '/home/u/pipeline.yaml', plan: p, createdAt: w.createdAt });
    expect(store.getWorkflow('w-00000000')).toBeNull();
  });

  it('creates a run with every step queued, then follows step updates, attempts and retries', () => {
    const { store } = setup();
    const p = plan('pipeline');
    const w = store.createWorkflow(p);
    const created = store.createRun({ workflowId: w.id, plan: p });
    const runId = created.run.id;
    expect(runId).toMatch(/^r-[0-9a-f]{8}$/);
    expect(created.run).toMatchObject({ workflowId: w.id, workflowName: 'pipeline', status: 'queued', startedAt: null, parentRunId: null, overrides: null, error: null });
    expect(created.steps.map((s) => [s.stepId, s.position, s.status, s.attempts])).toEqual([
      ['fetch', 0, 'queued', 0],
      ['parse', 1, 'queued', 0],
      ['summarize', 2, 'queued', 0],
    ]);

    store.updateRun(runId, { status: 'running', startedAt: '2025-01-01T01:00:00.000Z' });
    store.updateStep(runId, 'fetch', { status: 'running', startedAt: '2025-01-01T01:00:00.000Z' });
    const a1 = store.addAttempt(runId, 'fetch', { sandbox: `${runId}-fetch-1` });
    expect(a1).toMatchObject({ n: 1, sandbox: `${runId}-fetch-1`, finishedAt: null });
    store.finishAttempt(runId, 'fetch', 1, { exit: exit(1) });
    store.updateStep(runId, 'fetch', { status: 'retrying', exit: exit(1), reason: 'exit code 1' });
    const a2 = store.addAttempt(runId, 'fetch', { sandbox: `${runId}-fetch-2` });
    expect(a2.n).toBe(2);
    store.finishAttempt(runId, 'fetch', 2, { exit: exit(0), finishedAt: '2025-01-01T01:00:02.000Z' });
    store.updateStep(runId, 'fetch', {
      status: 'succeeded',
      finishedAt: '2025-01-01T01:00:02.000Z',
      durationMs: 2000.5,
      exit: exit(0),
      reason: null,
      outputsDir: '/var/lib/ai-sandbox/runs/x/fetch',
      snapshotId: 's-0123456789',
      snapshotKind: 'light',
      sandbox: undefined, // undefined leaves a field alone; null would clear it
    });
    store.updateStep(runId, 'summarize', { status: 'skipped', reason: 'parse failed' });

    const got = store.getRun(runId)!;
    expect(got.run).toMatchObject({ status: 'running', startedAt: '2025-01-01T01:00:00.000Z' });
    expect(got.steps[0]).toEqual({
      runId,
      stepId: 'fetch',
      position: 0,
      status: 'succeeded',
      attempts: 2,
      sandbox: `${runId}-fetch-2`,
      startedAt: '2025-01-01T01:00:00.000Z',
      finishedAt: '2025-01-01T01:00:02.000Z',
      durationMs: 2000.5,
      exit: exit(0),
      outputsDir: '/var/lib/ai-sandbox/runs/x/fetch',
      snapshotId: 's-0123456789',
      snapshotKind: 'light',
      reason: null,
    });
    expect(got.steps[2]).toMatchObject({ stepId: 'summarize', status: 'skipped', reason: 'parse failed' });
    expect(got.attempts.map((a) => [a.stepId, a.n, a.exit?.exitCode, a.finishedAt !== null])).toEqual([
      ['fetch', 1, 1, true],
      ['fetch', 2, 0, true],
    ]);

    store.updateRun(runId, { status: 'failed', finishedAt: '2025-01-01T01:00:03.000Z', error: 'step parse failed' });
    expect(store.getRun(runId)!.run).toMatchObject({ status: 'failed', error: 'step parse failed' });
  });

  it('says what is missing instead of silently writing nothing', () => {
    const { store } = setup();
    const p = plan('pipeline');
    const w = store.createWorkflow(p);
    const { run } = store.createRun({ workflowId: w.id, plan: p });
    expect(thrown(() => store.updateRun('r-00000000', { status: 'running' })).code).toBe('NOT_FOUND');
    expect(thrown(() => store.updateStep(run.id, 'nope', { status: 'running' })).message).toBe(`run ${run.id} has no step "nope"`);
    expect(thrown(() => store.updateStep(run.id, 'nope', {})).code).toBe('NOT_FOUND');
    expect(thrown(() => store.addAttempt(run.id, 'nope')).code).toBe('NOT_FOUND');
    expect(thrown(() => store.finishAttempt(run.id, 'fetch', 7)).code).toBe('NOT_FOUND');
    expect(thrown(() => store.appendEvent('r-00000000', null, 'x', {})).code).toBe('NOT_FOUND');
    expect(thrown(() => store.appendEvent(run.id, 'nope', 'x', {})).code).toBe('NOT_FOUND');
    expect(thrown(() => store.createRun({ workflowId: 'w-00000000', plan: p })).code).toBe('NOT_FOUND');
    expect(store.getRun('r-00000000')).toBeNull();
    // a run whose second step row fails to insert leaves no run and no first step behind
    const twice = plan('pipeline', ['fetch', 'fetch']);
    expect(() => store.createRun({ workflowId: w.id, plan: twice })).toThrow(/UNIQUE|PRIMARY KEY/i);
    expect(store.listRuns().map((r) => r.id)).toEqual([run.id]);
    expect(store.db.prepare('SELECT COUNT(*) AS n FROM steps').get()).toEqual({ n: 3 });
  });

  it('links a replay to its parent, with the step it starts from and its overrides', () => {
    const { store } = setup();
    const p = plan('pipeline');
    const w = store.createWorkflow(p);
    const parent = store.createRun({ workflowId: w.id, plan: p }).run;
    const replay = store.createRun({ workflowId: w.id, plan: p, parentRunId: parent.id, replayFromStep: 'parse', overrides: { env: { MODE: 'fast' }, args: ['--x'] } });
    expect(replay.run).toMatchObject({ parentRunId: parent.id, replayFromStep: 'parse', overrides: { env: { MODE: 'fast' }, args: ['--x'] } });
    store.updateStep(replay.run.id, 'fetch', { status: 'restored', snapshotId: 's-0123456789' });
    expect(store.getRun(replay.run.id)!.steps[0]).toMatchObject({ status: 'restored' });

    const bad = thrown(() => store.createRun({ workflowId: w.id, plan: p, parentRunId: parent.id, replayFromStep: 'analyze' }));
    expect(bad.code).toBe('INVALID_ARGUMENT');
    expect(bad.message).toBe('workflow "pipeline" has no step "analyze"; its steps are: fetch, parse, summarize');
    expect(thrown(() => store.createRun({ workflowId: w.id, plan: p, replayFromStep: 'parse' })).code).toBe('INVALID_ARGUMENT');
    expect(thrown(() => store.createRun({ workflowId: w.id, plan: p, parentRunId: 'r-00000000', replayFromStep: 'parse' })).code).toBe('NOT_FOUND');
    expect(store.listRuns()).toHaveLength(2);
  });

  it('pages events by seq, per run, with payloads parsed back', () => {
    const { store } = setup();
    const p = plan('pipeline');
    const w = store.createWorkflow(p);
    const a = store.createRun({ workflowId: w.id, plan: p }).run.id;
    const b = store.createRun({ workflowId: w.id, plan: p }).run.id;
    const seqs: number[] = [];
    for (let i = 0; i < 25; i++) {
      seqs.push(store.appendEvent(a, i % 2 === 0 ? 'fetch' : null, 'step', { i, status: 'running' }));
      store.appendEvent(b, null, 'noise', { i }); // interleaved: a's seqs have gaps, paging must not care
    }
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));

    const pages: number[][] = [];
    let after = 0;
    for (;;) {
      const page = store.events(a, { afterSeq: after, limit: 10 });
      if (page.length === 0) break;
      pages.push(page.map((e) => (e.payload as { i: number }).i));
      after = page.at(-1)!.seq;
    }
    expect(pages.map((pg) => pg.length)).toEqual([10, 10, 5]);
    expect(pages.flat()).toEqual([...Array(25).keys()]);

    const [first] = store.events(a, { limit: 1 });
    expect(first).toEqual({ seq: seqs[0], runId: a, stepId: 'fetch', time: expect.stringMatching(/^2025-01-01T/), kind: 'step', payload: { i: 0, status: 'running' } });
    expect(store.events(a, { afterSeq: seqs[24]! })).toEqual([]);
    expect(store.appendEvent(a, null, 'nothing', undefined)).toBeGreaterThan(seqs[24]!);
    expect(store.events(a, { afterSeq: seqs[24]! })[0]!.payload).toBeNull();
    expect(thrown(() => store.events(a, { limit: 0 })).code).toBe('INVALID_ARGUMENT');
  });

  it('lists runs newest first, limited, and by workflow name', () => {
    const { store } = setup();
    const pa = plan('alpha');
    const pb = plan('beta');
    const wa = store.createWorkflow(pa);
    const wb = store.createWorkflow(pb);
    const ids = [wa, wb, wa, wb, wa].map((w) => store.createRun({ workflowId: w.id, plan: w === wa ? pa : pb }).run.id);
    expect(store.listRuns().map((r) => r.id)).toEqual([...ids].reverse());
    expect(store.listRuns({ limit: 2 }).map((r) => r.id)).toEqual([ids[4], ids[3]]);
    expect(store.listRuns({ workflowName: 'alpha' }).map((r) => r.id)).toEqual([ids[4], ids[2], ids[0]]);
    expect(store.listRuns({ workflowName: 'beta', limit: 1 }).map((r) => [r.id, r.workflowName])).toEqual([[ids[3], 'beta']]);
    expect(store.listRuns({ workflowName: 'gamma' })).toEqual([]);
  });

  it('marks what a dead helper left running as interrupted, once, and keeps finished results', () => {
    const { store, reopen } = setup();
    const p = plan('pipeline');
    const w = store.createWorkflow(p);
    const done = store.createRun({ workflowId: w.id, plan: p }).run.id;
    store.updateRun(done, { status: 'succeeded', finishedAt: '2025-01-01T02:00:00.000Z' });
    const queued = store.createRun({ workflowId: w.id, plan: p }).run.id;
    const running = store.createRun({ workflowId: w.id, plan: p }).run.id;
    store.updateRun(running, { status: 'running' });
    store.updateStep(running, 'fetch', { status: 'succeeded', snapshotId: 's-0123456789', snapshotKind: 'full' });
    store.addAttempt(running, 'fetch');
    store.finishAttempt(running, 'fetch', 1, { exit: exit(0) });
    store.updateStep(running, 'parse', { status: 'running' });
    store.addAttempt(running, 'parse', { sandbox: 'box-1' });
    store.updateStep(running, 'summarize', { status: 'waiting' });
    store.close();

    const after = reopen(); // as at helper start: a new process, the same file
    expect(after.markInterrupted()).toEqual([queued, running]);
    expect(after.markInterrupted()).toEqual([]);

    expect(after.getRun(done)!.run.status).toBe('succeeded');
    const q = after.getRun(queued)!;
    expect(q.run).toMatchObject({ status: 'interrupted', error: expect.stringContaining('the helper stopped') });
    expect(q.steps.map((s) => s.status)).toEqual(['queued', 'queued', 'queued']);

    const r = after.getRun(running)!;
    expect(r.run.status).toBe('interrupted');
    expect(r.run.finishedAt).not.toBeNull();
    expect(r.steps.map((s) => s.status)).toEqual(['succeeded', 'interrupted', 'queued']);
    expect(r.steps[0]).toMatchObject({ snapshotId: 's-0123456789', snapshotKind: 'full' });
    expect(r.steps[1]).toMatchObject({ reason: 'the helper stopped while this was running', finishedAt: expect.any(String) });
    expect(r.attempts.map((a) => [a.stepId, a.exit?.exitCode ?? null, a.error])).toEqual([
      ['fetch', 0, null],
      ['parse', null, 'the helper stopped while this was running'],
    ]);
    expect(after.events(running).map((e) => e.kind)).toEqual(['interrupted']);
  });

  it('keeps everything across a reopen of the file', () => {
    const { store, reopen } = setup();
    const p = plan('pipeline');
    const w = store.createWorkflow(p);
    const { run } = store.createRun({ workflowId: w.id, plan: p });
    store.appendEvent(run.id, 'fetch', 'step', { status: 'running' });
    const before = store.getRun(run.id);
    store.close();
    const again = reopen();
    expect(again.getRun(run.id)).toEqual(before);
    expect(again.events(run.id)).toHaveLength(1);
    expect(again.createWorkflow(p).id).toBe(w.id);
  });
});
