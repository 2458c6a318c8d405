/**
 * The DAG's algorithms, on plain ids: strongly connected components to find every cycle once, and levels
 * (each step one past the deepest step it needs) for what may run at the same time. `needs` maps a node to the nodes it waits for.
 */

export type Needs = ReadonlyMap<string, readonly string[]>;

/** Tarjan's algorithm; components come out in no particular order. */
function components(ids: readonly string[], needs: Needs): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of needs.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      out.push(comp);
    }
  };
  for (const id of ids) if (!index.has(id)) visit(id);
  return out;
}

/**
 * One shortest cycle per group of steps that wait on each other, in the order they would have to run:
 * `[a, b, c]` means a before b before c before a. Each starts at the earliest-declared step in it.
 */
export function findCycles(ids: readonly string[], needs: Needs): string[][] {
  const order = new Map(ids.map((id, i) => [id, i]));
  const cycles: string[][] = [];
  for (const comp of components(ids, needs)) {
    const members = new Set(comp);
    const start = [...comp].sort((a, b) => order.get(a)! - order.get(b)!)[0]!;
    if (comp.length === 1 && !(needs.get(start) ?? []).includes(start)) continue;
    // breadth-first along needs, back to the start: the shortest cycle through it
    const parent = new Map<string, string>();
    const queue = [start];
    let closing: string | undefined;
    while (queue.length && closing === undefined) {
      const v = queue.shift()!;
      for (const w of needs.get(v) ?? []) {
        if (w === start) {
          closing = v;
          break;
        }
        if (members.has(w) && !parent.has(w)) {
          parent.set(w, v);
          queue.push(w);
        }
      }
    }
    // closing, …, start: each is needed by the one after it, which is the order they would run in
    const waitChain = [closing!];
    while (waitChain[waitChain.length - 1] !== start) waitChain.push(parent.get(waitChain[waitChain.length - 1]!)!);
    cycles.push([start, ...waitChain.slice(0, -1)]);
  }
  return cycles;
}

/** Level 0 needs nothing; level n needs something of level n-1. Throws on a cycle (check first). */
export function levels(ids: readonly string[], needs: Needs): string[][] {
  const level = new Map<string, number>();
  const depth = (id: string, seen: Set<string>): number => {
    const known = level.get(id);
    if (known !== undefined) return known;
    if (seen.has(id)) throw new Error(`cycle through ${id}`);
    seen.add(id);
    const n = Math.max(-1, ...(needs.get(id) ?? []).map((d) => depth(d, seen))) + 1;
    seen.delete(id);
    level.set(id, n);
    return n;
  };
  const out: string[][] = [];
  for (const id of ids) {
    const n = depth(id, new Set());
    (out[n] ??= []).push(id);
  }
  return out;
}
