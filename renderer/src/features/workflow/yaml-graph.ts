/**
 * The workflow file as a graph, and edits to the graph as edits to the file. The YAML document (with
 * its comments and layout) is the source of truth: the canvas reads steps and `needs` edges out of it,
 * and every edit is applied to the parsed document and printed back, so a file the user wrote keeps its
 * comments and a file nobody edited is saved byte for byte as it was loaded.
 */
import { isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';

export const SNAPSHOT_POLICIES = ['none', 'light', 'full'] as const;
export type SnapshotPolicy = (typeof SNAPSHOT_POLICIES)[number];

export interface StepView {
  name: string;
  /** the command as written: a string (run by sh -c) or an argv list */
  run: string | string[];
  needs: string[];
  limits: { cpus?: number | string; memory?: number | string; pids?: number | string };
  network: string | null;
  snapshot: SnapshotPolicy | null;
  timeout: string | null;
  retries: number | null;
  env: Record<string, string>;
  /** a matrix step fans out to several; shown as one node */
  matrix: string[];
}

export interface GraphView {
  name: string;
  steps: StepView[];
  /** the file does not parse: the canvas shows the last good graph and this message */
  syntaxError: string | null;
}

function plain(v: unknown): unknown {
  return v && typeof v === 'object' && 'toJSON' in v ? (v as { toJSON(): unknown }).toJSON() : v;
}

export function readGraph(text: string): GraphView {
  const doc = parseDocument(text);
  if (doc.errors.length) return { name: '', steps: [], syntaxError: doc.errors[0]!.message.split('\n')[0]! };
  const value = (doc.toJS() ?? {}) as Record<string, unknown>;
  const stepsRaw = (value.steps && typeof value.steps === 'object' ? value.steps : {}) as Record<string, Record<string, unknown> | null>;
  const steps: StepView[] = Object.entries(stepsRaw).map(([name, s]) => {
    const st = (s ?? {}) as Record<string, unknown>;
    const limits = (st.limits && typeof st.limits === 'object' ? st.limits : {}) as StepView['limits'];
    const run = Array.isArray(st.run) ? st.run.map(String) : typeof st.run === 'string' ? st.run : '';
    return {
      name,
      run,
      needs: Array.isArray(st.needs) ? st.needs.map(String) : [],
      limits,
      network: typeof st.network === 'string' ? st.network : st.network ? 'allow' : null,
      snapshot: SNAPSHOT_POLICIES.includes(st.snapshot as SnapshotPolicy) ? (st.snapshot as SnapshotPolicy) : null,
      timeout: st.timeout === undefined ? null : String(st.timeout),
      retries: typeof st.retries === 'number' ? st.retries : null,
      env: Object.fromEntries(Object.entries((st.env ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(plain(v))])),
      matrix: st.matrix && typeof st.matrix === 'object' ? Object.keys(st.matrix) : [],
    };
  });
  return { name: typeof value.name === 'string' ? value.name : '', steps, syntaxError: null };
}

/** Apply `fn` to the parsed document and print it back; a file that does not parse is left as it is. */
export function editText(text: string, fn: (doc: Document) => void): string {
  const doc = parseDocument(text);
  if (doc.errors.length) return text;
  fn(doc);
  return keepFlowSpacing(text, doc.toString({ lineWidth: 0 }));
}

/**
 * The printer writes every flow collection one way (`[ a ]`, `{ a: 1 }`) while people write both;
 * lines that differ from an original line only in that spacing keep the original's, and new lines
 * follow the file's habit for each bracket.
 */
function keepFlowSpacing(before: string, after: string): string {
  const squash = (l: string) => l.replace(/\s+/g, '');
  const originals = new Map<string, string[]>();
  for (const line of before.split('\n')) {
    if (!/[[{]/.test(line)) continue;
    const k = squash(line);
    originals.set(k, [...(originals.get(k) ?? []), line]);
  }
  const tightSeq = (before.match(/\[[^\s\]]/g)?.length ?? 0) > (before.match(/\[ /g)?.length ?? 0);
  const tightMap = (before.match(/\{[^\s}]/g)?.length ?? 0) > (before.match(/\{ /g)?.length ?? 0);
  return after
    .split('\n')
    .map((line) => {
      if (!/[[{]/.test(line)) return line;
      const same = originals.get(squash(line));
      if (same && same.length) return same.shift()!;
      if (/["']/.test(line)) return line;
      let out = line;
      if (tightSeq) out = out.replace(/\[ /g, '[').replace(/ \]/g, ']');
      if (tightMap) out = out.replace(/\{ /g, '{').replace(/ \}/g, '}');
      return out;
    })
    .join('\n');
}

export function stepNames(text: string): string[] {
  return readGraph(text).steps.map((s) => s.name);
}

/** A new step's name: step-1, step-2, … whichever is free. */
export function freeStepName(text: string, base = 'step'): string {
  const taken = new Set(stepNames(text));
  for (let i = 1; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
}

export function addStep(text: string, name: string, run = 'echo hello'): string {
  return editText(text, (doc) => {
    if (!doc.has('steps') || !isMap(doc.get('steps'))) doc.set('steps', doc.createNode({}));
    doc.setIn(['steps', name], doc.createNode({ run }));
  });
}

export function removeStep(text: string, name: string): string {
  return editText(text, (doc) => {
    doc.deleteIn(['steps', name]);
    const steps = doc.get('steps');
    if (!isMap(steps)) return;
    for (const pair of steps.items) {
      const other = String(isScalar(pair.key) ? pair.key.value : pair.key);
      const needs = doc.getIn(['steps', other, 'needs']);
      if (isSeq(needs)) {
        const idx = needs.items.findIndex((n) => String(isScalar(n) ? n.value : n) === name);
        if (idx >= 0) needs.delete(idx);
        if (needs.items.length === 0) doc.deleteIn(['steps', other, 'needs']);
      }
    }
  });
}

/** `to` needs `from` (an edge from → to). No-op when it already does, or for a self edge. */
export function connect(text: string, from: string, to: string): string {
  if (from === to) return text;
  return editText(text, (doc) => {
    const needs = doc.getIn(['steps', to, 'needs']);
    if (isSeq(needs)) {
      if (needs.items.some((n) => String(isScalar(n) ? n.value : n) === from)) return;
      needs.add(doc.createNode(from));
    } else {
      const node = doc.createNode([from]);
      node.flow = true;
      doc.setIn(['steps', to, 'needs'], node);
    }
  });
}

export function disconnect(text: string, from: string, to: string): string {
  return editText(text, (doc) => {
    const needs = doc.getIn(['steps', to, 'needs']);
    if (!isSeq(needs)) return;
    const idx = needs.items.findIndex((n) => String(isScalar(n) ? n.value : n) === from);
    if (idx >= 0) needs.delete(idx);
    if (needs.items.length === 0) doc.deleteIn(['steps', to, 'needs']);
  });
}

export function renameStep(text: string, from: string, to: string): string {
  if (from === to) return text;
  return editText(text, (doc) => {
    const steps = doc.get('steps');
    if (!isMap(steps)) return;
    for (const pair of steps.items) {
      const key = String(isScalar(pair.key) ? pair.key.value : pair.key);
      if (key === from) pair.key = doc.createNode(to);
      const needs = doc.getIn(['steps', key === from ? to : key, 'needs']);
      if (isSeq(needs)) needs.items = needs.items.map((n) => (String(isScalar(n) ? n.value : n) === from ? doc.createNode(to) : n));
    }
  });
}

/**
 * Set one field of a step (a path below the step, e.g. ['limits', 'memory']); an empty value removes
 * it, and an emptied `limits` goes too.
 */
export function setStepField(text: string, name: string, field: ReadonlyArray<string>, value: unknown): string {
  return editText(text, (doc) => {
    const at = ['steps', name, ...field];
    if (value === '' || value === null || value === undefined) {
      doc.deleteIn(at);
      if (field.length > 1) {
        const parent = doc.getIn(at.slice(0, -1));
        if (isMap(parent) && parent.items.length === 0) doc.deleteIn(at.slice(0, -1));
      }
    } else doc.setIn(at, doc.createNode(value));
  });
}

/** A fresh workflow file for "New". */
export function newWorkflowText(name = 'my-workflow'): string {
  return `# yaml-language-server: $schema=https://ai-sandbox.invalid/workflow.schema.json\nversion: 1\nname: ${name}\nsteps:\n  step-1:\n    run: echo hello\n`;
}
