/**
 * Problems found in a workflow file. Checks describe a problem by its path in the document; load.ts turns
 * the path into `file:line:col`, so every check stays a pure function of data.
 */

export type ProblemKind =
  | 'read' // the file could not be read
  | 'syntax' // YAML the parser refuses
  | 'version'
  | 'schema' // a value of the wrong type or range
  | 'unknown-key'
  | 'unknown-step' // a needs or stdin.from naming no step
  | 'cycle'
  | 'limit' // a step asks for more than the pool has
  | 'stdin'
  | 'matrix'
  | 'mode'
  | 'unsupported'; // valid, but this ai-sandbox cannot run it yet (a warning)

export type DocPath = ReadonlyArray<string | number>;

export interface Problem {
  kind: ProblemKind;
  /** where in the document; empty for the whole file */
  path: DocPath;
  /** point at the key itself (an unknown key) rather than its value */
  at?: 'key' | 'value';
  /** what is wrong and what to write instead, in one line */
  message: string;
  severity?: 'error' | 'warning';
}

export interface WorkflowError {
  kind: ProblemKind;
  severity: 'error' | 'warning';
  file: string;
  /** 1-based; 0 when the problem is the file as a whole (it cannot be read) */
  line: number;
  col: number;
  path: string;
  message: string;
}

export function formatPath(path: DocPath): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

export function formatError(e: WorkflowError): string {
  const where = e.line > 0 ? `${e.file}:${e.line}:${e.col}` : e.file;
  return `${where}: ${e.severity === 'warning' ? 'warning: ' : ''}${e.message}`;
}

export function byPosition(a: WorkflowError, b: WorkflowError): number {
  return a.line - b.line || a.col - b.col;
}

export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** The closest candidate, if it is close enough to be a typo rather than a different word. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** `did you mean "x"? ` or nothing. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const c = closest(word, candidates);
  return c === undefined ? '' : `did you mean "${c}"? `;
}

export function quoteList(items: readonly string[], max = 12): string {
  const shown = items.slice(0, max).join(', ');
  return items.length > max ? `${shown}, … (${items.length} in all)` : shown;
}
