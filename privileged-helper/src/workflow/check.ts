/**
 * What the schema cannot see one value at a time: needs that name no step, cycles, stdin from a step that
 * is not waited for, limits above the pool, and fields this ai-sandbox accepts but cannot run yet.
 */
import { didYouMean, formatPath, quoteList } from './errors.js';
import type { DocPath, Problem } from './errors.js';
import type { ExpandedStep } from './expand.js';
import { findCycles } from './graph.js';
import type { Needs } from './graph.js';
import type { Network, StepLimits, Workflow } from './schema.js';

function stepNames(steps: readonly ExpandedStep[]): string[] {
  return [...new Set(steps.map((s) => s.step))];
}

/** A name in needs or stdin.from: a step's own name (all its matrix combinations) or one combination. */
function resolveName(name: string, steps: readonly ExpandedStep[]): string[] {
  const byStep = steps.filter((s) => s.step === name).map((s) => s.id);
  return byStep.length ? byStep : steps.filter((s) => s.id === name).map((s) => s.id);
}

function unknownStep(path: DocPath, name: string, steps: readonly ExpandedStep[]): Problem {
  const names = stepNames(steps);
  return { kind: 'unknown-step', path, message: `${formatPath(path)}: "${name}" names no step: ${didYouMean(name, names)}the steps are ${quoteList(names)}` };
}

/** Turns every step's needs into the ids of the steps it waits for, reporting names that match none. */
export function resolveNeeds(steps: readonly ExpandedStep[]): { needs: Map<string, string[]>; problems: Problem[] } {
  const needs = new Map<string, string[]>();
  const problems: Problem[] = [];
  const reported = new Set<string>();
  for (const s of steps) {
    const ids: string[] = [];
    (s.def.needs ?? []).forEach((name, i) => {
      const found = resolveName(name, steps);
      if (found.length === 0 && !reported.has(`${s.step}\0${i}`)) {
        reported.add(`${s.step}\0${i}`);
        problems.push(unknownStep(['steps', s.step, 'needs', i], name, steps));
      }
      ids.push(...found);
    });
    needs.set(s.id, [...new Set(ids)]);
  }
  return { needs, problems };
}

function cycleProblems(steps: readonly ExpandedStep[], needs: Needs): Problem[] {
  const byId = new Map(steps.map((s) => [s.id, s]));
  return findCycles(steps.map((s) => s.id), needs).map((cycle) => {
    const first = byId.get(cycle[0]!)!;
    const last = cycle[cycle.length - 1]!;
    // point at the need that closes the cycle: the first step waiting for the last one
    const i = (first.def.needs ?? []).findIndex((n) => resolveName(n, steps).includes(last));
    const path = ['steps', first.step, 'needs', Math.max(i, 0)];
    const shown = [...cycle, cycle[0]!].join(' → ');
    return { kind: 'cycle' as const, path, message: `${formatPath(path)}: a cycle in needs, so none of these steps can start: ${shown}: remove one of these needs` };
  });
}

function stdinProblems(steps: readonly ExpandedStep[]): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  for (const s of steps) {
    const from = s.def.stdin?.from;
    if (from === undefined || seen.has(s.step)) continue;
    seen.add(s.step);
    const path = ['steps', s.step, 'stdin', 'from'];
    const found = resolveName(from, steps);
    const needs = s.def.needs ?? [];
    if (found.length === 0) problems.push(unknownStep(path, from, steps));
    else if (found.length > 1) {
      problems.push({ kind: 'stdin', path, message: `${formatPath(path)}: "${from}" is ${found.length} steps (a matrix) and stdin can come from one: name one of ${quoteList(found)}` });
    } else if (!needs.includes(from) && !needs.some((n) => resolveName(n, steps).includes(found[0]!))) {
      problems.push({ kind: 'stdin', path, message: `${formatPath(path)}: "${from}" is not in needs, so this step could start before it: add it, needs: [${[...needs, from].join(', ')}]` });
    }
  }
  return problems;
}

/** A limit set in `defaults` is reported once, at defaults, not once per step that inherits it. */
function limitProblems(workflow: Workflow): Problem[] {
  const pool = workflow.pool;
  if (!pool) return [];
  const problems: Problem[] = [];
  const gib = (b: number) => (b % 1024 ** 3 === 0 ? `${b / 1024 ** 3}G` : `${Math.round(b / 1024 ** 2)}M`);
  const sources: Array<{ path: DocPath; limits: StepLimits | undefined }> = [
    { path: ['defaults', 'limits'], limits: workflow.defaults?.limits },
    ...Object.entries(workflow.steps).map(([name, s]) => ({ path: ['steps', name, 'limits'], limits: s.limits })),
  ];
  for (const { path, limits } of sources) {
    if (limits?.memory !== undefined && pool.memory !== undefined && limits.memory > pool.memory) {
      const p = [...path, 'memory'];
      problems.push({ kind: 'limit', path: p, message: `${formatPath(p)}: ${gib(limits.memory)} is more than the pool's memory ${gib(pool.memory)}, so the step could never start: write at most ${gib(pool.memory)}, or raise pool.memory` });
    }
    if (limits?.cpus !== undefined && pool.cpus !== undefined && limits.cpus > pool.cpus) {
      const p = [...path, 'cpus'];
      problems.push({ kind: 'limit', path: p, message: `${formatPath(p)}: ${limits.cpus} is more than the pool's ${pool.cpus} cpus: write at most ${pool.cpus}, or raise pool.cpus` });
    }
  }
  return problems;
}

function modeProblems(workflow: Workflow): Problem[] {
  if (workflow.mode !== 'queue') return [];
  return Object.entries(workflow.steps).flatMap(([name, s]) =>
    (['needs', 'stdin'] as const)
      .filter((k) => s[k] !== undefined)
      .map((k) => {
        const path = ['steps', name, k];
        return { kind: 'mode' as const, path, at: 'key' as const, message: `${formatPath(path)}: in mode: queue every step is an independent task: remove ${k}, or write mode: dag to run steps in order` };
      }),
  );
}

/** A step with network rules cannot be checkpointed with its processes (snapshot: full) yet. */
function unsupportedProblems(workflow: Workflow): Problem[] {
  const hasRules = (n: Network | undefined) => typeof n === 'object' && (n.allow.ports.length > 0 || n.allow.domains.length > 0);
  return Object.entries(workflow.steps)
    .filter(([, s]) => hasRules(s.network ?? workflow.defaults?.network) && (s.snapshot ?? workflow.defaults?.snapshot) === 'full')
    .map(([name, s]) => {
      const path: DocPath = s.snapshot ? ['steps', name, 'snapshot'] : ['defaults', 'snapshot'];
      return {
        kind: 'unsupported' as const,
        path,
        message: `${formatPath(path)}: step ${name} has network rules, and a networked sandbox cannot be checkpointed with its processes yet: write snapshot: light (files only), or network: none`,
      };
    });
}

export function checkWorkflow(workflow: Workflow, steps: readonly ExpandedStep[]): { needs: Map<string, string[]>; problems: Problem[] } {
  const { needs, problems } = resolveNeeds(steps);
  problems.push(...cycleProblems(steps, needs), ...stdinProblems(steps), ...limitProblems(workflow), ...modeProblems(workflow), ...unsupportedProblems(workflow));
  return { needs, problems };
}
