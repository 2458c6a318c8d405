import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { workflowJsonSchemaText } from './json-schema.js';
import { loadWorkflow } from './load.js';

const repo = (p: string) => fileURLToPath(new URL(`../../../${p}`, import.meta.url));

describe('published files', () => {
  it('docs/workflow.schema.json is up to date with the zod schema', () => {
    const committed = readFileSync(repo('docs/workflow.schema.json'), 'utf8');
    expect(committed, 'regenerate it: npx tsx scripts/gen-workflow-schema.ts').toBe(workflowJsonSchemaText());
  });

  it('the agent pipeline example validates: fetch → parse → 3 analyzers → summarize', async () => {
    const r = await loadWorkflow(repo('examples/agent-pipeline/workflow.yaml'));
    expect(r.ok ? r.warnings : r.errors).toEqual([]);
    if (!r.ok) return;
    expect(r.plan.levels).toEqual([['fetch'], ['parse'], ['analyze[kind=words]', 'analyze[kind=links]', 'analyze[kind=headings]'], ['summarize']]);
    expect(r.plan.steps[0]!.spec.mounts).toEqual([{ source: repo('examples/agent-pipeline'), target: '/app', readOnly: true }]);
  });

  it('the concurrent queue example validates: one level, critical tasks first', async () => {
    const r = await loadWorkflow(repo('examples/concurrent-queue/workflow.yaml'));
    expect(r.ok ? r.warnings : r.errors).toEqual([]);
    if (!r.ok) return;
    expect(r.plan.mode).toBe('queue');
    expect(r.plan.levels).toHaveLength(1);
    expect(r.plan.steps.map((s) => s.priority)).toEqual(['critical', 'critical', 'critical', 'normal', 'normal', 'normal', 'background', 'background']);
  });

  it('reports an unreadable file without a position', async () => {
    const r = await loadWorkflow('/nonexistent/wf.yaml');
    expect(r.ok ? [] : r.errors).toMatchObject([{ kind: 'read', line: 0, message: 'cannot read the workflow: no such file' }]);
  });
});
