import { describe, expect, it } from 'vitest';
import { inRange, ipToInt, parseRange, slotAddresses } from './addressing.js';

describe('addressing', () => {
  it('cuts the range into /30 slots: gateway .1, sandbox .2', () => {
    const r = parseRange('10.231.0.0/16');
    expect(r.slots).toBe(16384);
    expect(slotAddresses(r, 'aisb', 0)).toEqual({ index: 0, ifname: 'aisb0', gateway: '10.231.0.1', address: '10.231.0.2' });
    expect(slotAddresses(r, 'aisb', 65)).toEqual({ index: 65, ifname: 'aisb65', gateway: '10.231.1.5', address: '10.231.1.6' });
    expect(() => slotAddresses(r, 'aisb', 16384)).toThrow(RangeError);
  });
  it('refuses ranges that are not private-range shaped CIDRs', () => {
    expect(() => parseRange('10.231.0.1/16')).toThrow(/host bits set: use 10.231.0.0\/16/);
    expect(() => parseRange('10.231.0.0')).toThrow(/not an IPv4 range/);
    expect(() => parseRange('300.1.0.0/16')).toThrow(/not an IPv4 range/);
  });
  it('knows what is inside', () => {
    const r = parseRange('10.232.0.0/24');
    expect(inRange(r, '10.232.0.255')).toBe(true);
    expect(inRange(r, '10.232.1.0')).toBe(false);
    expect(ipToInt('255.255.255.255')).toBe(0xffffffff);
  });
});
