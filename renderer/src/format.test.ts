import { describe, expect, it } from 'vitest';
import { clockTime, fmtMs } from './format';

describe('clockTime', () => {
  it('formats local hours, minutes and seconds with two digits each', () => {
    expect(clockTime(new Date(2026, 11, 3, 9, 5, 7))).toBe('09:05:07');
    expect(clockTime(new Date(2026, 11, 3, 23, 59, 59).toISOString())).toBe('23:59:59');
  });
  it('says so when the time is not a time', () => {
    expect(clockTime('not a date')).toBe('–');
  });
});

describe('fmtMs', () => {
  it('keeps milliseconds under a second and switches to seconds at one', () => {
    expect(fmtMs(999)).toBe('999 ms');
    expect(fmtMs(1000)).toBe('1.0 s');
    expect(fmtMs(12_345)).toBe('12.3 s');
    expect(fmtMs(null)).toBe('');
  });
});
