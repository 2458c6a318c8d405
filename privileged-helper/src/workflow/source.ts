/**
 * YAML with positions: the parsed value for validation, and a way back from a document path to the line
 * and column where it was written, so every problem can point at its place in the file.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node } from 'yaml';
import type { DocPath, Problem } from './errors.js';

export interface Position {
  line: number;
  col: number;
}

export interface YamlSource {
  value: unknown;
  /** syntax errors; when any, `value` is not to be trusted */
  problems: Problem[];
  /** positions of syntax errors, which have no document path */
  syntaxPositions: Position[];
  locate(path: DocPath, at?: 'key' | 'value'): Position;
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return typeof key === 'string' || typeof key === 'number' ? String(key) : undefined;
}

export function readYaml(text: string): YamlSource {
  const lineCounter = new LineCounter();
  // uniqueKeys makes a step written twice an error instead of the second one silently winning
  const doc: Document = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const pos = (offset: number): Position => lineCounter.linePos(offset);

  const problems: Problem[] = [];
  const syntaxPositions: Position[] = [];
  for (const e of doc.errors) {
    problems.push({ kind: 'syntax', path: [], message: `YAML: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}: fix the syntax here` });
    syntaxPositions.push(pos(e.pos[0]));
  }

  const locate = (path: DocPath, at: 'key' | 'value' = 'value'): Position => {
    let node: unknown = doc.contents;
    let found: { start: number } = { start: (doc.contents as Node | null)?.range?.[0] ?? 0 };
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!;
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && keyText(p.key) === String(seg));
        if (!pair) break;
        const keyNode = pair.key as Node | null;
        const valueNode = pair.value as Node | null;
        if (last && at === 'key' && keyNode?.range) return pos(keyNode.range[0]);
        const r = valueNode?.range ?? keyNode?.range;
        if (r) found = { start: r[0] };
        node = valueNode;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg] as Node | undefined;
        if (!item) break;
        if (item.range) found = { start: item.range[0] };
        node = item;
      } else break;
    }
    return pos(found.start);
  };

  return { value: doc.errors.length ? undefined : doc.toJS({ maxAliasCount: 100 }), problems, syntaxPositions, locate };
}
