/**
 * Reading a workflow file: YAML (with positions) → version migration → schema → matrix expansion →
 * whole-file checks → plan. Every problem found on the way is reported with `file:line:col`, all of them,
 * not just the first.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { byPosition, formatPath } from './errors.js';
import type { DocPath, Problem, WorkflowError } from './errors.js';
import { expandSteps } from './expand.js';
import { checkWorkflow } from './check.js';
import { problemsFromIssues } from './issues.js';
import { migrate } from './migrate.js';
import type { Migrations } from './migrate.js';
import { buildPlan } from './plan.js';
import type { WorkflowPlan } from './plan.js';
import { workflowSchema } from './schema.js';
import type { Workflow } from './schema.js';
import { readYaml } from './source.js';

export type LoadResult =
  | { ok: true; workflow: Workflow; plan: WorkflowPlan; warnings: WorkflowError[] }
  | { ok: false; errors: WorkflowError[]; warnings: WorkflowError[] };

export interface ParseOptions {
  /** where relative mount sources are found; default: the file's directory */
  baseDir?: string;
  migrations?: Migrations;
}

function withoutPaths(value: unknown, paths: readonly DocPath[]): unknown {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  for (const p of paths) {
    let node: unknown = copy;
    for (const seg of p.slice(0, -1)) node = (node as Record<string | number, unknown> | undefined)?.[seg];
    if (node && typeof node === 'object') delete (node as Record<string | number, unknown>)[p[p.length - 1]!];
  }
  return copy;
}

/** Validate; when the only mistakes are unknown keys, also check the rest as if they were not there. */
function validate(raw: unknown): { workflow: Workflow | undefined; problems: Problem[] } {
  const first = workflowSchema.safeParse(raw, { reportInput: true });
  if (first.success) return { workflow: first.data, problems: [] };
  const problems = problemsFromIssues(first.error.issues, workflowSchema);
  if (problems.some((p) => p.kind !== 'unknown-key')) return { workflow: undefined, problems };
  const second = workflowSchema.safeParse(withoutPaths(raw, problems.map((p) => p.path)));
  return { workflow: second.success ? second.data : undefined, problems };
}

export function parseWorkflow(text: string, file: string, opts: ParseOptions = {}): LoadResult {
  const source = readYaml(text);
  const located = (p: Problem, i?: number): WorkflowError => {
    const pos = p.kind === 'syntax' && i !== undefined ? source.syntaxPositions[i]! : source.locate(p.path, p.at);
    return { kind: p.kind, severity: p.severity ?? 'error', file, line: pos.line, col: pos.col, path: formatPath(p.path), message: p.message };
  };
  const finish = (problems: Problem[], ok?: { workflow: Workflow; plan: WorkflowPlan }): LoadResult => {
    const all = problems.map((p) => located(p)).sort(byPosition);
    const errors = all.filter((e) => e.severity === 'error');
    const warnings = all.filter((e) => e.severity === 'warning');
    return ok && errors.length === 0 ? { ok: true, ...ok, warnings } : { ok: false, errors, warnings };
  };

  if (source.problems.length) {
    return { ok: false, errors: source.problems.map((p, i) => located(p, i)).sort(byPosition), warnings: [] };
  }
  const migrated = migrate(source.value, opts.migrations);
  if (!migrated.ok) return finish([migrated.problem]);

  const { workflow, problems } = validate(migrated.raw);
  if (!workflow) return finish(problems);
  const expanded = expandSteps(workflow.steps);
  problems.push(...expanded.problems);
  const checked = checkWorkflow(workflow, expanded.steps);
  problems.push(...checked.problems);
  if (problems.some((p) => (p.severity ?? 'error') === 'error')) return finish(problems);

  const absolute = file === '-' ? null : path.resolve(file);
  const plan = buildPlan(workflow, expanded.steps, checked.needs, {
    baseDir: opts.baseDir ?? (absolute ? path.dirname(absolute) : process.cwd()),
    source: absolute,
  });
  return finish(problems, { workflow, plan });
}

export async function loadWorkflow(file: string, opts: ParseOptions = {}): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
    return { ok: false, errors: [{ kind: 'read', severity: 'error', file, line: 0, col: 0, path: '', message: `cannot read the workflow: ${reason}` }], warnings: [] };
  }
  return parseWorkflow(text, file, opts);
}
