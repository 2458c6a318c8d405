import { describe, expect, it } from 'vitest';
import { formatError } from './errors.js';
import { parseWorkflow } from './load.js';

/** Parse and return the errors as the CLI prints them. */
function errors(text: string): string[] {
  const r = parseWorkflow(text, 'wf.yaml', { baseDir: '/base' });
  if (r.ok) throw new Error('expected errors, the file is valid');
  return r.errors.map(formatError);
}

const header = 'version: 1\nname: t\n';

describe('workflow validation errors: file:line:col, what is wrong, what to write instead', () => {
  it('reports an unknown key at the key, with the closest known key', () => {
    expect(errors(`${header}steps:\n  a:\n    run: "true"\n    retires: 2\n`)).toEqual([
      'wf.yaml:6:5: steps.a.retires: unknown key "retires": did you mean "retries"?',
    ]);
  });

  it('suggests the nested place for a key written one level too high', () => {
    expect(errors(`${header}steps:\n  a:\n    run: "true"\n    memory: 1G\n`)).toEqual([
      'wf.yaml:6:5: steps.a.memory: unknown key "memory": did you mean limits: { memory: … }?',
    ]);
  });

  it('lists the keys when nothing is close', () => {
    const [e] = errors(`${header}pool:\n  zzzzzzzz: 1\nsteps:\n  a: { run: "true" }\n`);
    expect(e).toBe('wf.yaml:4:3: pool.zzzzzzzz: unknown key "zzzzzzzz": the keys here are cpus, memory, maxParallel');
  });

  it('reports a needs naming no step, listing the steps', () => {
    expect(errors(`${header}steps:\n  fetch: { run: "true" }\n  parse:\n    run: "true"\n    needs: [fetch, fecth]\n`)).toEqual([
      'wf.yaml:7:20: steps.parse.needs[1]: "fecth" names no step: did you mean "fetch"? the steps are fetch, parse',
    ]);
  });

  it('prints a cycle in the order the steps would run, at the need that closes it', () => {
    const text = `${header}steps:\n  a:\n    run: "true"\n    needs: [c]\n  b:\n    run: "true"\n    needs: [a]\n  c:\n    run: "true"\n    needs: [b]\n`;
    expect(errors(text)).toEqual(['wf.yaml:6:13: steps.a.needs[0]: a cycle in needs, so none of these steps can start: a → b → c → a: remove one of these needs']);
  });

  it('reports a step that needs itself as a cycle of one', () => {
    expect(errors(`${header}steps:\n  a:\n    run: "true"\n    needs: [a]\n`)).toEqual([
      'wf.yaml:6:13: steps.a.needs[0]: a cycle in needs, so none of these steps can start: a → a: remove one of these needs',
    ]);
  });

  it('reports a step limit above the pool, and a default limit once at defaults', () => {
    const text = `${header}pool: { memory: 2G, cpus: 2 }\ndefaults:\n  limits: { cpus: 4 }\nsteps:\n  a:\n    run: "true"\n    limits: { memory: 4G }\n`;
    expect(errors(text)).toEqual([
      "wf.yaml:5:19: defaults.limits.cpus: 4 is more than the pool's 2 cpus: write at most 2, or raise pool.cpus",
      "wf.yaml:9:23: steps.a.limits.memory: 4G is more than the pool's memory 2G, so the step could never start: write at most 2G, or raise pool.memory",
    ]);
  });

  it('reports a stdin.from that is not also in needs', () => {
    expect(errors(`${header}steps:\n  a: { run: "true" }\n  b:\n    run: cat\n    stdin: { from: a }\n`)).toEqual([
      'wf.yaml:7:20: steps.b.stdin.from: "a" is not in needs, so this step could start before it: add it, needs: [a]',
    ]);
  });

  it('reports a stdin.from naming a whole matrix', () => {
    const text = `${header}steps:\n  a:\n    run: "true"\n    matrix: { n: [1, 2] }\n  b:\n    run: cat\n    needs: [a]\n    stdin: { from: a }\n`;
    expect(errors(text)).toEqual(['wf.yaml:10:20: steps.b.stdin.from: "a" is 2 steps (a matrix) and stdin can come from one: name one of a[n=1], a[n=2]']);
  });

  it('reports matrix values that would expand to the same step name', () => {
    expect(errors(`${header}steps:\n  a:\n    run: echo \${{ matrix.n }}\n    matrix: { n: [1, "2", "1"] }\n`)).toEqual([
      'wf.yaml:6:27: steps.a.matrix.n[2]: "1" repeats n[0], so two steps would both be named a[n=1]: remove one or make them differ',
    ]);
  });

  it('reports unknown matrix variables and expressions', () => {
    const text = `${header}steps:\n  a:\n    run: echo \${{ matrix.kid }} \${{ env.HOME }}\n    matrix: { kind: [x] }\n  b:\n    run: "true"\n    env: { X: "\${{ matrix.kind }}" }\n`;
    expect(errors(text)).toEqual([
      'wf.yaml:5:10: steps.a.run: "${{ matrix.kid }}" names no matrix variable: did you mean "kind"? the variables are kind',
      'wf.yaml:5:10: steps.a.run: "${{ env.HOME }}" is not an expression this ai-sandbox knows: write ${{ matrix.NAME }}',
      'wf.yaml:9:15: steps.b.env.X: "${{ matrix.kind }}" but step "b" has no matrix: add matrix: { kind: [...] } to the step',
    ]);
  });

  it('reports YAML syntax errors with their position', () => {
    const [e] = errors(`${header}steps:\n  a:\n    run: [python3, x.py\n    needs: []\n`);
    expect(e).toMatch(/^wf\.yaml:\d+:\d+: YAML: .+: fix the syntax here$/);
    expect(errors(`${header}steps:\n  a: { run: "true" }\n  a: { run: "false" }\n`)).toEqual(['wf.yaml:5:3: YAML: Map keys must be unique: fix the syntax here']);
  });

  it('reports wrong types, enum values, sizes and durations', () => {
    const text = `${header}steps:\n  a:\n    run: "true"\n    snapshot: ful\n    priority: urgent\n    timeout: soon\n    retries: -1\n    limits: { memory: lots, cpus: many }\n`;
    expect(errors(text)).toEqual([
      'wf.yaml:6:15: steps.a.snapshot: "ful" is not allowed: did you mean "full"? write one of none, light, full',
      'wf.yaml:7:15: steps.a.priority: "urgent" is not allowed: write one of critical, normal, background',
      'wf.yaml:8:14: steps.a.timeout: "soon" is not a duration: write e.g. 500ms, 30s, 5m or 1h',
      'wf.yaml:9:14: steps.a.retries: is -1: write at least 0',
      'wf.yaml:10:23: steps.a.limits.memory: "lots" is not a size: write a number with an optional unit, e.g. 512M or 2G',
      'wf.yaml:10:35: steps.a.limits.cpus: expected a number, got the text "many"',
    ]);
  });

  it('reports a missing required key at its parent', () => {
    expect(errors(`${header}steps:\n  a:\n    needs: []\n`)).toEqual(['wf.yaml:4:3: steps.a: "run" is missing: add run:']);
  });

  it('reports needs and stdin in queue mode', () => {
    const text = `${header}mode: queue\nsteps:\n  a: { run: "true" }\n  b:\n    run: "true"\n    needs: [a]\n`;
    expect(errors(text)).toEqual(['wf.yaml:8:5: steps.b.needs: in mode: queue every step is an independent task: remove needs, or write mode: dag to run steps in order']);
  });

  it('reports every problem at once, unknown keys together with graph problems, in file order', () => {
    const text = `${header}pool: { memory: 1G }\nsteps:\n  a:\n    run: "true"\n    needz: [b]\n    limits: { memory: 2G }\n  b:\n    run: "true"\n    needs: [nope]\n`;
    expect(errors(text).map((e) => e.split(': ')[0])).toEqual(['wf.yaml:7:5', 'wf.yaml:8:23', 'wf.yaml:11:13']);
  });

  it('turns a step network policy into the sandbox network policy', () => {
    const r = parseWorkflow(
      `${header}steps:\n  a:\n    run: "true"\n    network:\n      allow: { ports: [443, 53/udp], domains: [pypi.org, "*.example.com"] }\n      deny: { domains: [evil.example.com] }\n      resolve: { api.test: "127.0.0.1:8080" }\n`,
      'wf.yaml',
    );
    expect(r.ok && r.warnings).toEqual([]);
    if (r.ok) {
      expect(r.plan.steps[0]!.network).toEqual({
        mode: 'allow',
        policy: {
          allowPorts: [{ port: 443, proto: 'tcp' }, { port: 53, proto: 'udp' }],
          allowDomains: ['pypi.org', '*.example.com'],
          denyDomains: ['evil.example.com'],
          resolve: [{ name: 'api.test', address: '127.0.0.1', port: 8080 }],
        },
      });
    }
  });

  it('refuses a bad domain pattern, and snapshot: full on a networked step', () => {
    expect(errors(`${header}steps:\n  a:\n    run: "true"\n    network:\n      allow: { domains: ["*"] }\n`)[0]).toMatch(/steps\.a\.network\.allow\.domains\[0\]: "\*" is not a domain pattern/);
    expect(errors(`${header}steps:\n  a:\n    run: "true"\n    snapshot: full\n    network:\n      allow: { ports: [443] }\n`)).toEqual([
      'wf.yaml:6:15: steps.a.snapshot: step a has network rules, and a networked sandbox cannot be checkpointed with its processes yet: write snapshot: light (files only), or network: none',
    ]);
  });

  it('reports a missing or unsupported version', () => {
    expect(errors('name: t\nsteps: {}\n')).toEqual(['wf.yaml:1:1: the file has no version: add "version: 1" at the top']);
    expect(errors('version: 2\nname: t\n')).toEqual(['wf.yaml:1:10: version: 2 is newer than this ai-sandbox, which reads version 1: upgrade ai-sandbox or write version: 1']);
    expect(errors('version: 0\nname: t\n')).toEqual(['wf.yaml:1:10: unsupported version 0: this ai-sandbox reads version 1']);
  });
});
