import { describe, expect, it } from 'vitest';
import { closest, editDistance, formatError, formatPath } from './errors.js';

describe('workflow error helpers', () => {
  it('measures edit distance and suggests only close words', () => {
    expect(editDistance('needz', 'needs')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(closest('retires', ['run', 'retries', 'rootfs'])).toBe('retries');
    expect(closest('banana', ['run', 'needs'])).toBeUndefined();
  });

  it('formats paths and errors', () => {
    expect(formatPath(['steps', 'a', 'needs', 2])).toBe('steps.a.needs[2]');
    expect(formatError({ kind: 'cycle', severity: 'error', file: 'f.yaml', line: 3, col: 7, path: '', message: 'm' })).toBe('f.yaml:3:7: m');
    expect(formatError({ kind: 'read', severity: 'error', file: 'f.yaml', line: 0, col: 0, path: '', message: 'm' })).toBe('f.yaml: m');
  });
});
