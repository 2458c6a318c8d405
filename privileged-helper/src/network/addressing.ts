/**
 * Addresses of networked sandboxes: the configured private range (default 10.231.0.0/16) is cut into
 * /30s, one per network slot. Slot i: network base+4i, host side (gateway, host.ai-sandbox.internal)
 * base+4i+1, sandbox base+4i+2. The host-side interface is named <prefix><i>; creating it claims the
 * slot machine-wide (a second helper instance gets EEXIST and takes another index).
 */
import { AppError } from '../errors/app-error.js';

export interface NetRange {
  /** the range as written, e.g. 10.231.0.0/16 */
  cidr: string;
  base: number;
  prefixLen: number;
  /** number of /30 slots */
  slots: number;
}

export interface SlotAddresses {
  index: number;
  ifname: string;
  gateway: string;
  address: string;
}

export function ipToInt(ip: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseRange(cidr: string): NetRange {
  const [ip, len] = cidr.split('/');
  const base = ipToInt(ip ?? '');
  const prefixLen = Number(len);
  if (base === null || !Number.isInteger(prefixLen) || prefixLen < 8 || prefixLen > 28) {
    throw new AppError('INVALID_ARGUMENT', `network range "${cidr}" is not an IPv4 range from /8 to /28 (e.g. 10.231.0.0/16): fix AI_SANDBOX_NET_RANGE`);
  }
  const mask = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
  if ((base & mask) >>> 0 !== base) {
    throw new AppError('INVALID_ARGUMENT', `network range "${cidr}" has host bits set: use ${intToIp((base & mask) >>> 0)}/${prefixLen}`);
  }
  return { cidr, base, prefixLen, slots: 2 ** (32 - prefixLen) / 4 };
}

export function slotAddresses(range: NetRange, prefix: string, index: number): SlotAddresses {
  if (!Number.isInteger(index) || index < 0 || index >= range.slots) throw new RangeError(`slot ${index} outside ${range.cidr}`);
  const net = range.base + index * 4;
  return { index, ifname: `${prefix}${index}`, gateway: intToIp(net + 1), address: intToIp(net + 2) };
}

export function inRange(range: NetRange, ip: string): boolean {
  const n = ipToInt(ip);
  if (n === null) return false;
  return n >= range.base && n < range.base + range.slots * 4;
}
