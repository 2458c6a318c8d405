import { describe, expect, it } from 'vitest';
import { sandboxSpecSchema } from '../protocol/schema.js';
import { parseWorkflow } from './load.js';
import type { WorkflowPlan } from './plan.js';

function plan(text: string): WorkflowPlan {
  const r = parseWorkflow(`version: 1\nname: t\n${text}`, '/base/wf.yaml');
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('\n'));
  return r.plan;
}

describe('workflow plan', () => {
  it('expands a matrix into one step per combination, substituting run and env', () => {
    const p = plan(`steps:
  test:
    run: [python3, test.py, "\${{ matrix.py }}", "\${{matrix.os}}"]
    env: { TARGET: "\${{ matrix.os }}-\${{ matrix.py }}", N: 3 }
    matrix: { os: [alpine, debian], py: [3.11, "3.12"] }
`);
    expect(p.order).toEqual(['test[os=alpine,py=3.11]', 'test[os=alpine,py=3.12]', 'test[os=debian,py=3.11]', 'test[os=debian,py=3.12]']);
    const s = p.steps[3]!;
    expect(s).toMatchObject({ step: 'test', matrix: { os: 'debian', py: '3.12' } });
    expect(s.spec.command).toEqual(['python3', 'test.py', '3.12', 'debian']);
    expect(s.spec.env).toEqual({ TARGET: 'debian-3.12', N: '3' });
  });

  it('computes levels: sequential chains, parallel fan-out, critical first within a level', () => {
    const p = plan(`steps:
  fetch: { run: "true" }
  parse: { run: "true", needs: [fetch] }
  lint: { run: "true", priority: background }
  analyze: { run: "true", needs: [parse], matrix: { k: [a, b, c] } }
  summarize: { run: "true", needs: [analyze], priority: critical }
  alert: { run: "true", priority: critical }
`);
    expect(p.levels).toEqual([
      ['alert', 'fetch', 'lint'],
      ['parse'],
      ['analyze[k=a]', 'analyze[k=b]', 'analyze[k=c]'],
      ['summarize'],
    ]);
    expect(p.order).toEqual(p.levels.flat());
    expect(p.steps.find((s) => s.id === 'summarize')!.needs).toEqual(['analyze[k=a]', 'analyze[k=b]', 'analyze[k=c]']);
  });

  it('lets a step need one matrix combination by its expanded name', () => {
    const p = plan(`steps:
  build: { run: "true", matrix: { arch: [x86, arm] } }
  ship: { run: "true", needs: ["build[arch=arm]"] }
`);
    expect(p.steps.find((s) => s.id === 'ship')).toMatchObject({ level: 1, needs: ['build[arch=arm]'] });
    expect(p.levels[0]).toEqual(['build[arch=x86]', 'build[arch=arm]']);
  });

  it('resolves defaults into each step: limits merged per key, env merged, mounts replaced by target', () => {
    const p = plan(`pool: { cpus: 2, memory: 2G, maxParallel: 3 }
timeout: 10m
defaults:
  rootfs: /srv/root
  mounts: [".:/app:ro", "/data:/data"]
  env: { A: "1", B: "2" }
  limits: { memory: 512M, cpus: 1, pids: 64 }
  timeout: 30s
  retries: 2
  snapshot: light
steps:
  a:
    run: echo hi
    mounts: [{ source: other, target: /data, readOnly: true }]
    env: { B: three }
    limits: { memory: 1G, cpuWeight: 50 }
  b:
    run: [sh, -c, "exit 0"]
    retries: 0
    snapshot: none
    workdir: /tmp
    timeout: 1.5s
`);
    expect(p.pool).toEqual({ cpus: 2, memoryBytes: 2 * 1024 ** 3, maxParallel: 3 });
    expect(p.timeoutMs).toBe(600_000);
    const [a, b] = p.steps;
    expect(a!.spec).toEqual({
      command: ['/bin/sh', '-c', 'echo hi'],
      limits: { memoryBytes: 1024 ** 3, cpus: 1, cpuWeight: 50, pidsMax: 64 },
      mounts: [
        { source: '/base', target: '/app', readOnly: true },
        { source: '/base/other', target: '/data', readOnly: true },
      ],
      env: { A: '1', B: 'three' },
      workdir: '/work',
      timeoutMs: 30_000,
      rootfs: '/srv/root',
    });
    expect(a).toMatchObject({ retries: 2, snapshot: 'light', priority: 'normal', network: { mode: 'none' } });
    expect(b!.spec).toMatchObject({ command: ['sh', '-c', 'exit 0'], workdir: '/tmp', timeoutMs: 1500 });
    expect(b).toMatchObject({ retries: 0, snapshot: 'none' });
  });

  it('produces specs the helper accepts', () => {
    const p = plan(`defaults: { limits: { memory: 64M, pids: 10 }, timeout: 5s }
steps:
  a: { run: "true", mounts: ["/x:/y"], env: { FLAG: true } }
`);
    for (const s of p.steps) expect(sandboxSpecSchema.safeParse({ ...s.spec, name: 'x' }).success).toBe(true);
  });

  it('passes data: outputs of needed steps become read-only inputs, stdin names its producer', () => {
    const p = plan(`steps:
  fetch: { run: "true", outputs: [page.html, assets/] }
  parse: { run: cat, needs: [fetch], stdin: { from: fetch }, outputs: [doc.json] }
  note: { run: "true" }
  summarize: { run: "true", needs: [parse, note] }
`);
    expect(p.steps.find((s) => s.id === 'parse')).toMatchObject({ stdinFrom: 'fetch', inputs: [{ from: 'fetch', paths: ['page.html', 'assets/'], mountAt: '/in/fetch' }] });
    expect(p.steps.find((s) => s.id === 'summarize')!.inputs).toEqual([{ from: 'parse', paths: ['doc.json'], mountAt: '/in/parse' }]);
  });

  it('defaults: dag stops on failure, queue continues; maxParallel 4', () => {
    expect(plan('steps: { a: { run: "true" } }\n')).toMatchObject({ mode: 'dag', onFailure: 'stop', pool: { cpus: null, memoryBytes: null, maxParallel: 4 }, timeoutMs: null });
    expect(plan('mode: queue\nsteps: { a: { run: "true" } }\n')).toMatchObject({ mode: 'queue', onFailure: 'continue' });
  });

  it('is plain JSON', () => {
    const p = plan('steps: { a: { run: "true", matrix: { n: [1, 2] } }, b: { run: "true", needs: [a] } }\n');
    expect(JSON.parse(JSON.stringify(p))).toEqual(p);
  });
});
