import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseWorkflow } from '../../../../privileged-helper/src/workflow/load';
import { addStep, connect, disconnect, editText, freeStepName, readGraph, removeStep, renameStep, setStepField } from './yaml-graph';

const EXAMPLES = ['agent-pipeline', 'concurrent-queue'].map((n) => new URL(`../../../../examples/${n}/workflow.yaml`, import.meta.url));

describe('YAML ↔ graph', () => {
  it.each(EXAMPLES.map((u) => [u.pathname.split('/').at(-2)!, u]))('%s survives load → edit nothing → save byte for byte', (_name, url) => {
    const text = fs.readFileSync(url, 'utf8');
    expect(editText(text, () => {})).toBe(text);
  });

  it('reads steps and needs edges out of the example', () => {
    const g = readGraph(fs.readFileSync(EXAMPLES[0]!, 'utf8'));
    expect(g.syntaxError).toBeNull();
    expect(g.steps.map((s) => [s.name, s.needs])).toEqual([
      ['fetch', []],
      ['parse', ['fetch']],
      ['analyze', ['parse']],
      ['summarize', ['analyze']],
    ]);
    expect(g.steps.find((s) => s.name === 'analyze')!.matrix).toEqual(['kind']);
  });

  it('builds a 3-step workflow the CLI accepts, keeping comments', () => {
    let t = '# my flow\nversion: 1\nname: three\nsteps:\n  a:\n    run: echo a\n';
    for (const n of ['b', 'c']) t = addStep(t, n, `echo ${n}`);
    t = connect(t, 'a', 'b');
    t = connect(t, 'b', 'c');
    t = connect(t, 'b', 'c'); // twice is once
    t = setStepField(t, 'b', ['limits', 'memory'], '128M');
    t = setStepField(t, 'b', ['snapshot'], 'light');
    expect(t.startsWith('# my flow\n')).toBe(true);
    const r = parseWorkflow(t, '/tmp/three.yaml');
    expect(r.ok).toBe(true);
    expect(readGraph(t).steps.map((s) => s.needs)).toEqual([[], ['a'], ['b']]);
    t = setStepField(t, 'b', ['limits', 'memory'], '');
    expect(t).not.toContain('limits');
  });

  it('removes and renames steps together with the needs that name them', () => {
    let t = 'version: 1\nname: x\nsteps:\n  a:\n    run: echo a\n  b:\n    needs: [a]\n    run: echo b\n';
    t = renameStep(t, 'a', 'first');
    expect(readGraph(t).steps.map((s) => [s.name, s.needs])).toEqual([
      ['first', []],
      ['b', ['first']],
    ]);
    expect(t).toContain('needs: [first]');
    t = disconnect(t, 'first', 'b');
    expect(t).not.toContain('needs');
    t = connect(t, 'first', 'b');
    t = removeStep(t, 'first');
    expect(readGraph(t).steps.map((s) => [s.name, s.needs])).toEqual([['b', []]]);
    expect(freeStepName(t)).toBe('step-1');
  });

  it('leaves a file that does not parse alone and says why', () => {
    const bad = 'version: 1\nsteps: [\n';
    expect(editText(bad, (d) => d.set('name', 'x'))).toBe(bad);
    expect(readGraph(bad).syntaxError).toBeTruthy();
  });
});
