/**
 * The plan the engine executes: every step expanded, defaults resolved into the pieces of a sandbox spec,
 * in topological order with levels. Plain JSON, so it can be stored with a run and replayed later without
 * the file.
 */
import path from 'node:path';
import type { ApprovalsPolicy, NetworkPolicy, SandboxSpecInput } from '../protocol/schema.js';
import type { ExpandedStep } from './expand.js';
import { levels } from './graph.js';
import { MOUNT_STRING_RE, PRIORITY_RANK } from './schema.js';
import type { Mount, Network, Priority, Step, StepDefaults, Workflow } from './schema.js';

export const PLAN_VERSION = 1;
export const DEFAULT_MAX_PARALLEL = 4;
/** where a step runs and writes its outputs, unless it says otherwise */
export const DEFAULT_WORKDIR = '/work';
/** where a step finds the outputs of a step it needs, read-only: /in/<step id>/<path> */
export const INPUTS_DIR = '/in';

export type PlannedSpec = Required<Pick<SandboxSpecInput, 'command' | 'limits' | 'mounts' | 'env'>> &
  Pick<SandboxSpecInput, 'rootfs' | 'workdir' | 'timeoutMs' | 'trace' | 'anomalies'> & { approvals?: ApprovalsPolicy };

export interface PlannedStep {
  id: string;
  /** the step's name in the file (differs from id for a matrix combination) */
  step: string;
  matrix: Record<string, string> | null;
  level: number;
  /** ids of the steps this one waits for */
  needs: string[];
  /** the sandbox spec, minus what the engine names (sandbox name, pool cgroup) */
  spec: PlannedSpec;
  retries: number;
  snapshot: 'none' | 'light' | 'full';
  priority: Priority;
  network: { mode: 'none' } | { mode: 'allow'; policy: NetworkPolicy };
  outputs: string[];
  /** outputs of needed steps, mounted read-only at `mountAt` */
  inputs: Array<{ from: string; paths: string[]; mountAt: string }>;
  /** the step whose stdout is piped into this one's stdin */
  stdinFrom: string | null;
}

export interface WorkflowPlan {
  planVersion: typeof PLAN_VERSION;
  name: string;
  description: string | null;
  /** absolute path of the file, or null when parsed from text */
  source: string | null;
  mode: 'dag' | 'queue';
  onFailure: 'stop' | 'continue';
  timeoutMs: number | null;
  pool: { cpus: number | null; memoryBytes: number | null; maxParallel: number };
  /** ids in an order that respects needs; critical steps first within a level */
  order: string[];
  levels: string[][];
  steps: PlannedStep[];
}

function mountOf(m: Mount, baseDir: string): { source: string; target: string; readOnly: boolean } {
  if (typeof m === 'string') {
    const [, source, target, mode] = MOUNT_STRING_RE.exec(m)!;
    return { source: path.resolve(baseDir, source!), target: target!, readOnly: mode === 'ro' };
  }
  return { source: path.resolve(baseDir, m.source), target: m.target, readOnly: m.readOnly };
}

/** A step's mounts come after the defaults' and replace one at the same target. */
function mergeMounts(defaults: readonly Mount[], own: readonly Mount[], baseDir: string) {
  const byTarget = new Map<string, ReturnType<typeof mountOf>>();
  for (const m of [...defaults, ...own]) {
    const r = mountOf(m, baseDir);
    byTarget.delete(r.target);
    byTarget.set(r.target, r);
  }
  return [...byTarget.values()];
}

function envOf(...layers: Array<Step['env']>): Record<string, string> {
  return Object.fromEntries(layers.flatMap((l) => Object.entries(l ?? {}).map(([k, v]) => [k, String(v)])));
}

function networkOf(n: Network | undefined): PlannedStep['network'] {
  if (n === undefined || n === 'none') return { mode: 'none' };
  const policy: NetworkPolicy = {
    allowPorts: n.allow.ports.map((p) => (typeof p === 'number' ? { port: p, proto: 'tcp' as const } : { port: Number(p.split('/')[0]), proto: p.endsWith('udp') ? ('udp' as const) : ('tcp' as const) })),
    allowDomains: n.allow.domains,
    denyDomains: n.deny?.domains ?? [],
    resolve: Object.entries(n.resolve ?? {}).map(([name, to]) => {
      const [address, port] = to.split(':');
      return { name, address: address!, ...(port ? { port: Number(port) } : {}) };
    }),
  };
  if (!policy.allowPorts.length && !policy.allowDomains.length) return { mode: 'none' };
  return { mode: 'allow', policy };
}

function resolveStep(s: ExpandedStep, d: StepDefaults, baseDir: string): Omit<PlannedStep, 'level' | 'needs' | 'inputs'> {
  const def = s.def;
  const limits = { ...d.limits, ...def.limits };
  const timeoutMs = def.timeout ?? d.timeout;
  const spec: PlannedSpec = {
    command: typeof def.run === 'string' ? ['/bin/sh', '-c', def.run] : def.run,
    limits: {
      ...(limits.memory !== undefined && { memoryBytes: limits.memory }),
      ...(limits.cpus !== undefined && { cpus: limits.cpus }),
      ...(limits.cpuWeight !== undefined && { cpuWeight: limits.cpuWeight }),
      ...(limits.pids !== undefined && { pidsMax: limits.pids }),
    },
    mounts: mergeMounts(d.mounts ?? [], def.mounts ?? [], baseDir),
    env: envOf(d.env, def.env),
    workdir: def.workdir ?? d.workdir ?? DEFAULT_WORKDIR,
    ...(timeoutMs !== undefined && { timeoutMs }),
    ...((def.rootfs ?? d.rootfs) !== undefined && { rootfs: def.rootfs ?? d.rootfs }),
    ...((def.trace ?? d.trace) !== undefined && { trace: def.trace ?? d.trace }),
    ...((def.approvals ?? d.approvals) !== undefined && { approvals: def.approvals ?? d.approvals }),
    ...((def.anomalies ?? d.anomalies) !== undefined && { anomalies: def.anomalies ?? d.anomalies }),
  };
  return {
    id: s.id,
    step: s.step,
    matrix: s.matrix,
    spec,
    retries: def.retries ?? d.retries ?? 0,
    snapshot: def.snapshot ?? d.snapshot ?? 'none',
    priority: def.priority ?? d.priority ?? 'normal',
    network: networkOf(def.network ?? d.network),
    outputs: def.outputs ?? [],
    stdinFrom: null,
  };
}

/**
 * Build the plan from a checked workflow (see check.ts: needs resolved, no cycles). `baseDir` is where
 * relative mount sources are found: the workflow file's directory.
 */
export function buildPlan(workflow: Workflow, steps: readonly ExpandedStep[], needs: ReadonlyMap<string, readonly string[]>, opts: { baseDir: string; source: string | null }): WorkflowPlan {
  const mode = workflow.mode ?? 'dag';
  const resolved = new Map(steps.map((s) => [s.id, resolveStep(s, workflow.defaults ?? {}, opts.baseDir)]));
  const declared = new Map(steps.map((s, i) => [s.id, i]));
  const byPriority = (a: string, b: string) =>
    PRIORITY_RANK[resolved.get(a)!.priority] - PRIORITY_RANK[resolved.get(b)!.priority] || declared.get(a)! - declared.get(b)!;
  const lv = levels(steps.map((s) => s.id), needs).map((ids) => [...ids].sort(byPriority));
  const levelOf = new Map(lv.flatMap((ids, n) => ids.map((id) => [id, n] as const)));
  const idsOfStep = (name: string) => steps.filter((s) => s.step === name || s.id === name).map((s) => s.id);

  const planned = lv.flat().map((id): PlannedStep => {
    const r = resolved.get(id)!;
    const own = needs.get(id) ?? [];
    const from = steps.find((s) => s.id === id)!.def.stdin?.from;
    return {
      ...r,
      level: levelOf.get(id)!,
      needs: [...own],
      inputs: own
        .filter((n) => resolved.get(n)!.outputs.length > 0)
        .map((n) => ({ from: n, paths: resolved.get(n)!.outputs, mountAt: `${INPUTS_DIR}/${n}` })),
      stdinFrom: from === undefined ? null : (idsOfStep(from)[0] ?? null),
    };
  });

  return {
    planVersion: PLAN_VERSION,
    name: workflow.name,
    description: workflow.description ?? null,
    source: opts.source,
    mode,
    onFailure: workflow.onFailure ?? (mode === 'queue' ? 'continue' : 'stop'),
    timeoutMs: workflow.timeout ?? null,
    pool: { cpus: workflow.pool?.cpus ?? null, memoryBytes: workflow.pool?.memory ?? null, maxParallel: workflow.pool?.maxParallel ?? DEFAULT_MAX_PARALLEL },
    order: planned.map((s) => s.id),
    levels: lv,
    steps: planned,
  };
}
