import { describe, expect, it } from 'vitest';
import { migrate } from './migrate.js';
import type { Migrations } from './migrate.js';
import { parseWorkflow } from './load.js';

// A made-up version 0 (jobs with `command` and `after`) to prove the chain runs before validation.
const fakeV0: Migrations = new Map([
  [
    0,
    (raw) => {
      const { jobs, ...rest } = raw as { jobs: Record<string, { command: string; after?: string[] }> };
      return { ...rest, steps: Object.fromEntries(Object.entries(jobs).map(([k, j]) => [k, { run: j.command, ...(j.after && { needs: j.after }) }])) };
    },
  ],
]);

describe('workflow schema versions', () => {
  it('passes version 1 through', () => {
    expect(migrate({ version: 1, name: 'x' })).toEqual({ ok: true, raw: { version: 1, name: 'x' }, from: 1 });
  });

  it('migrates an older version step by step, then validates the result', () => {
    const text = 'version: 0\nname: old\njobs:\n  a: { command: echo a }\n  b: { command: echo b, after: [a] }\n';
    const r = parseWorkflow(text, 'old.yaml', { migrations: fakeV0 });
    expect(r.ok && r.plan.levels).toEqual([['a'], ['b']]);
  });

  it('refuses versions it cannot read, saying which it reads', () => {
    expect(migrate({ version: 0 })).toMatchObject({ ok: false, problem: { message: 'unsupported version 0: this ai-sandbox reads version 1' } });
    expect(migrate({ version: 3 })).toMatchObject({ ok: false, problem: { message: expect.stringContaining('newer than this ai-sandbox') } });
    expect(migrate({ version: '1' })).toMatchObject({ ok: false, problem: { message: 'version: "1" is not a version number: write version: 1' } });
    expect(migrate([1, 2])).toMatchObject({ ok: false });
  });
});
