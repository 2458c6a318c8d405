import { describe, expect, it } from 'vitest';
import { OutputRing } from '../features/run/output-ring';
import { addStep, connect } from '../features/workflow/yaml-graph';
import { makeStore } from './index';
import type { RunState, StepState } from './types';

const FILE = 'version: 1\nname: x\nsteps:\n  a:\n    run: echo a\n';

function step(id: string, status: StepState['status']): StepState {
  return { id, status, attempts: 1, sandbox: `wf-${id}`, startedAt: null, finishedAt: null, durationMs: null, exit: null, reason: null, io: null };
}

describe('store', () => {
  it('edits with undo and redo, and tracks unsaved changes', () => {
    const s = makeStore();
    s.getState().loadFile('/tmp/x.yaml', FILE);
    expect(s.getState().text).toBe(s.getState().savedText);
    s.getState().edit((t) => addStep(t, 'b'));
    s.getState().edit((t) => connect(t, 'a', 'b'));
    expect(s.getState().text).toContain('needs: [ a ]');
    expect(s.getState().text).not.toBe(s.getState().savedText);
    s.getState().undo();
    expect(s.getState().text).not.toContain('needs');
    s.getState().undo();
    expect(s.getState().text).toBe(FILE);
    s.getState().undo(); // nothing left: no-op
    expect(s.getState().text).toBe(FILE);
    s.getState().redo();
    s.getState().redo();
    expect(s.getState().text).toContain('needs: [ a ]');
    s.getState().markSaved();
    expect(s.getState().savedText).toBe(s.getState().text);
  });

  it('places new steps and keeps positions the user chose', () => {
    const s = makeStore();
    s.getState().loadFile('/tmp/x.yaml', FILE);
    s.getState().setPosition('a', { x: 500, y: 500 });
    s.getState().edit((t) => addStep(t, 'b'));
    expect(s.getState().positions.a).toEqual({ x: 500, y: 500 });
    expect(s.getState().positions.b).toBeDefined();
    s.getState().autoLayout();
    expect(s.getState().positions.a).toEqual({ x: 0, y: 0 });
  });

  it('an edit that changes nothing leaves no undo entry', () => {
    const s = makeStore();
    s.getState().loadFile('/tmp/x.yaml', FILE);
    s.getState().edit((t) => t);
    expect(s.getState().past).toHaveLength(0);
  });

  it('follows a run: step updates, run status, switching runs clears outputs', () => {
    const s = makeStore();
    const run: RunState = { id: 'r-00000001', workflow: 'x', status: 'running', createdAt: '', finishedAt: null, peakParallel: 0, steps: [step('a', 'queued')], error: null, replayOf: null };
    s.getState().setRun(run);
    s.getState().updateStep('r-00000001', step('a', 'running'));
    s.getState().updateStep('r-00000001', step('b', 'queued'));
    s.getState().updateStep('r-99999999', step('a', 'failed')); // another run: ignored
    expect(s.getState().run!.steps.map((x) => x.status)).toEqual(['running', 'queued']);
    s.getState().output('a').push('hello\n');
    s.getState().updateRunStatus('r-00000001', 'succeeded', null);
    expect(s.getState().run!.status).toBe('succeeded');
    expect(s.getState().run!.finishedAt).not.toBeNull();
    s.getState().setRun({ ...run, id: 'r-00000002' });
    expect(s.getState().outputs).toEqual({});
  });

  it('keeps step output bounded and counts what it let go', () => {
    const ring = new OutputRing(10_000);
    const line = `${'x'.repeat(99)}\n`;
    for (let i = 0; i < 1000; i++) ring.push(line);
    expect(ring.bytes).toBeLessThanOrEqual(10_000);
    expect(ring.totalLines).toBe(1000);
    expect(ring.droppedLocal + ring.text().split('\n').length - 1).toBe(1000);
    expect(ring.text().endsWith(line)).toBe(true);
  });

  it('stats keep the last minute', () => {
    const s = makeStore();
    for (let i = 0; i < 100; i++) s.getState().addStat('a', { t: i, cpuPercent: i, memoryBytes: i });
    expect(s.getState().stats.a).toHaveLength(60);
    expect(s.getState().stats.a!.at(-1)!.t).toBe(99);
  });
});
