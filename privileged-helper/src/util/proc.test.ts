import { describe, expect, it } from 'vitest';
import { identityOf, isAlive, mountsUnder } from './proc.js';

describe('process identity', () => {
  it('recognises this process and rejects a wrong start time', () => {
    const me = identityOf(process.pid);
    expect(me).not.toBeNull();
    expect(isAlive(me)).toBe(true);
    expect(isAlive({ pid: process.pid, startTime: '1' })).toBe(false);
    expect(isAlive({ pid: 0x3fffffff, startTime: '1' })).toBe(false);
  });

  it('lists mounts under a directory, deepest first', () => {
    expect(mountsUnder('/proc')).toContain('/proc');
    expect(mountsUnder('/definitely-not-mounted-here')).toEqual([]);
  });
});
