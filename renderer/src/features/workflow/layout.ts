/**
 * Auto-layout: steps in columns by their depth along `needs` (longest path from a root), spread
 * vertically within a column. Linear in nodes + edges, so a 200-step workflow lays out at once.
 */
import type { Position } from '../../store/types';

export const NODE_W = 200;
export const NODE_H = 72;
const GAP_X = 80;
const GAP_Y = 28;

export function layout(steps: ReadonlyArray<{ name: string; needs: readonly string[] }>): Record<string, Position> {
  const byName = new Map(steps.map((s) => [s.name, s]));
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (name: string): number => {
    const known = depth.get(name);
    if (known !== undefined) return known;
    if (visiting.has(name)) return 0; // a cycle: the validator reports it; lay it out anyway
    visiting.add(name);
    const s = byName.get(name);
    let d = 0;
    for (const n of s?.needs ?? []) if (byName.has(n)) d = Math.max(d, depthOf(n) + 1);
    visiting.delete(name);
    depth.set(name, d);
    return d;
  };
  const columns: string[][] = [];
  for (const s of steps) (columns[depthOf(s.name)] ??= []).push(s.name);
  const out: Record<string, Position> = {};
  columns.forEach((col, x) => col.forEach((name, y) => (out[name] = { x: x * (NODE_W + GAP_X), y: y * (NODE_H + GAP_Y) })));
  return out;
}
