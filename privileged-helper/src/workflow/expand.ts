/**
 * Fan-out: a step with a `matrix` becomes one step per combination of values, named `step[var=value,...]`,
 * with `${{ matrix.var }}` replaced in `run` and `env`. Steps without a matrix pass through unchanged.
 */
import { didYouMean, formatPath } from './errors.js';
import type { DocPath, Problem } from './errors.js';
import type { MatrixValue, Step } from './schema.js';

export const MAX_MATRIX_COMBINATIONS = 256;
const EXPRESSION_RE = /\$\{\{\s*(.*?)\s*\}\}/g;
const MATRIX_REF_RE = /^matrix\.([A-Za-z_][A-Za-z0-9_]*)$/;

export interface ExpandedStep {
  /** the name in the plan: the step's own name, or `step[var=value,...]` for a matrix combination */
  id: string;
  /** the name written in the file */
  step: string;
  matrix: Record<string, string> | null;
  /** the step as written, with matrix values substituted */
  def: Step;
}

export function expandedName(step: string, combo: Record<string, string>): string {
  return `${step}[${Object.entries(combo).map(([k, v]) => `${k}=${v}`).join(',')}]`;
}

function combinations(matrix: Record<string, MatrixValue[]>): Array<Record<string, string>> {
  let out: Array<Record<string, string>> = [{}];
  for (const [name, values] of Object.entries(matrix)) {
    out = out.flatMap((combo) => values.map((v) => ({ ...combo, [name]: String(v) })));
  }
  return out;
}

/** Every place a step may use `${{ ... }}`, with its path, so one bad reference is reported once. */
function templated(name: string, def: Step): Array<{ path: DocPath; text: string }> {
  const base = ['steps', name];
  const out: Array<{ path: DocPath; text: string }> = [];
  if (typeof def.run === 'string') out.push({ path: [...base, 'run'], text: def.run });
  else def.run.forEach((a, i) => out.push({ path: [...base, 'run', i], text: a }));
  for (const [k, v] of Object.entries(def.env ?? {})) if (typeof v === 'string') out.push({ path: [...base, 'env', k], text: v });
  return out;
}

function checkReferences(name: string, def: Step): Problem[] {
  const vars = Object.keys(def.matrix ?? {});
  const problems: Problem[] = [];
  for (const { path, text } of templated(name, def)) {
    for (const m of text.matchAll(EXPRESSION_RE)) {
      const ref = MATRIX_REF_RE.exec(m[1]!);
      const where = formatPath(path);
      if (!ref) {
        problems.push({ kind: 'matrix', path, message: `${where}: "${m[0]}" is not an expression this ai-sandbox knows: write \${{ matrix.NAME }}` });
      } else if (!def.matrix) {
        problems.push({ kind: 'matrix', path, message: `${where}: "${m[0]}" but step "${name}" has no matrix: add matrix: { ${ref[1]}: [...] } to the step` });
      } else if (!vars.includes(ref[1]!)) {
        problems.push({ kind: 'matrix', path, message: `${where}: "${m[0]}" names no matrix variable: ${didYouMean(ref[1]!, vars)}the variables are ${vars.join(', ')}` });
      }
    }
  }
  return problems;
}

function substitute(text: string, combo: Record<string, string>): string {
  return text.replace(EXPRESSION_RE, (whole, expr: string) => {
    const ref = MATRIX_REF_RE.exec(expr);
    return ref && ref[1]! in combo ? combo[ref[1]!]! : whole;
  });
}

function instantiate(def: Step, combo: Record<string, string>): Step {
  const run = typeof def.run === 'string' ? substitute(def.run, combo) : def.run.map((a) => substitute(a, combo));
  const env = def.env && Object.fromEntries(Object.entries(def.env).map(([k, v]) => [k, typeof v === 'string' ? substitute(v, combo) : v]));
  return { ...def, run, ...(env ? { env } : {}) };
}

function duplicateValues(name: string, matrix: Record<string, MatrixValue[]>): Problem[] {
  const problems: Problem[] = [];
  for (const [v, values] of Object.entries(matrix)) {
    const seen = new Map<string, number>();
    values.forEach((value, i) => {
      const text = String(value);
      const first = seen.get(text);
      if (first === undefined) seen.set(text, i);
      else {
        const path = ['steps', name, 'matrix', v, i];
        problems.push({ kind: 'matrix', path, message: `${formatPath(path)}: "${text}" repeats ${v}[${first}], so two steps would both be named ${name}[${v}=${text}${Object.keys(matrix).length > 1 ? ',…' : ''}]: remove one or make them differ` });
      }
    });
  }
  return problems;
}

export function expandSteps(steps: Record<string, Step>): { steps: ExpandedStep[]; problems: Problem[] } {
  const out: ExpandedStep[] = [];
  const problems: Problem[] = [];
  for (const [name, def] of Object.entries(steps)) {
    problems.push(...checkReferences(name, def));
    // a step whose matrix is wrong stays in as one step, so needs naming it are still checked
    const unexpanded: ExpandedStep = { id: name, step: name, matrix: null, def };
    if (!def.matrix) {
      out.push(unexpanded);
      continue;
    }
    const count = Object.values(def.matrix).reduce((n, values) => n * values.length, 1);
    if (count > MAX_MATRIX_COMBINATIONS) {
      const path = ['steps', name, 'matrix'];
      problems.push({ kind: 'matrix', path, message: `${formatPath(path)}: ${count} combinations, more than ${MAX_MATRIX_COMBINATIONS}: split the step or use fewer values` });
      out.push(unexpanded);
      continue;
    }
    const dups = duplicateValues(name, def.matrix);
    problems.push(...dups);
    if (dups.length) {
      out.push(unexpanded);
      continue;
    }
    for (const combo of combinations(def.matrix)) out.push({ id: expandedName(name, combo), step: name, matrix: combo, def: instantiate(def, combo) });
  }
  return { steps: out, problems };
}
