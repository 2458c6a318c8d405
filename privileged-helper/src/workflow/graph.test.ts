import { describe, expect, it } from 'vitest';
import { findCycles, levels } from './graph.js';

const needs = (o: Record<string, string[]>) => new Map(Object.entries(o));

describe('workflow graph', () => {
  it('finds each cycle once, in run order, starting at the earliest-declared step', () => {
    const n = needs({ a: ['c'], b: ['a'], c: ['b'], d: ['d'], e: ['a'], f: ['g'], g: ['f'] });
    expect(findCycles(['a', 'b', 'c', 'd', 'e', 'f', 'g'], n)).toEqual(expect.arrayContaining([['a', 'b', 'c'], ['d'], ['f', 'g']]));
    expect(findCycles(['a', 'b', 'c', 'd', 'e', 'f', 'g'], n)).toHaveLength(3);
  });

  it('finds no cycle in a DAG and puts each node one level past its deepest need', () => {
    const n = needs({ a: [], b: ['a'], c: ['a'], d: ['b', 'c'], e: ['a', 'd'] });
    expect(findCycles(['a', 'b', 'c', 'd', 'e'], n)).toEqual([]);
    expect(levels(['a', 'b', 'c', 'd', 'e'], n)).toEqual([['a'], ['b', 'c'], ['d'], ['e']]);
  });
});
