import { describe, expect, it } from 'vitest';
import { decodeRecords, formatEvent, openFlags, recordSize, recordView } from './records.js';
import { resolveSyscalls, syscallMask, syscallName, syscallNumber } from './syscalls.js';
import { makeRecord, sockaddrIn } from './test-records.js';
import { filterRecords } from './service.js';

describe('tracer records', () => {
  it('decodes an openat with its path, dirfd and flags, a refused connect, and an exit_group', () => {
    const buf = Buffer.concat([
      makeRecord({ tsNs: 5_000_000_000n, nr: 257, args: [-100n, 0x1234n, 0o2000000n], ret: 3n, path: '/etc/hostname', durNs: 2500n }),
      makeRecord({ tsNs: 5_000_001_000n, nr: 42, args: [3n, 0x99n, 16n], ret: -111n, addr: sockaddrIn([127, 0, 0, 1], 9) }),
      makeRecord({ tsNs: 5_000_002_000n, nr: 231, flags: 1, durNs: 0n }),
    ]);
    expect(recordSize(recordView(buf), 0)).toBe(96 + 16);
    const [open, conn, exit] = decodeRecords(buf, 'sb', 1_000_000_000_000n);
    expect(open).toMatchObject({ sandbox: 'sb', syscall: 'openat', fd: -100, path: '/etc/hostname', flags: 'O_RDONLY|O_CLOEXEC', ret: 3, durNs: 2500, tsUs: 1_000_000_000 + 5_000_000 });
    expect(conn).toMatchObject({ syscall: 'connect', fd: 3, ret: -111, errno: 'ECONNREFUSED', addr: { family: 'inet', address: '127.0.0.1', port: 9 } });
    expect(exit).toMatchObject({ syscall: 'exit_group', noExit: true });
    expect(formatEvent(open!)).toMatch(/\[sb 100\] openat\(AT_FDCWD, "\/etc\/hostname", O_RDONLY\|O_CLOEXEC\) = 3 <0\.000003>$/);
    expect(formatEvent(conn!)).toMatch(/connect\(3, 127\.0\.0\.1:9\) = -1 ECONNREFUSED/);
  });

  it('filters records by syscall without decoding them', () => {
    const buf = Buffer.concat([makeRecord({ tsNs: 1n, nr: 39 }), makeRecord({ tsNs: 2n, nr: 257, path: '/x' }), makeRecord({ tsNs: 3n, nr: 39 })]);
    expect(filterRecords(buf, null).count).toBe(3);
    const only = filterRecords(buf, new Set([257]));
    expect(only.count).toBe(1);
    expect(decodeRecords(only.buf, 's', 0n)[0]!.path).toBe('/x');
  });

  it('knows flags, names and families', () => {
    expect(openFlags(0o101 | 0o1000)).toBe('O_WRONLY|O_CREAT|O_TRUNC');
    expect(syscallName(59)).toBe('execve');
    expect(syscallName(462)).toBe('mseal');
    expect(syscallNumber('getpid')).toBe(39);
    expect(resolveSyscalls(['open', 'connect'])).toEqual([2, 42, 85, 257, 437]);
    expect(() => resolveSyscalls(['nosuch'])).toThrow(/unknown syscall "nosuch".*open, stat/);
    const m = syscallMask([39, 257]);
    expect(m[0]).toBe(1n << 39n);
    expect(m[4]).toBe(1n << 1n);
    expect(syscallMask(undefined).every((w) => w === (1n << 64n) - 1n)).toBe(true);
  });
});
