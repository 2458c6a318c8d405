/**
 * The tracer's record format (docs/tracer-protocol.md, "Record") decoded into what subscribers and
 * exports see. Shared by the helper, the CLI and the app: the fast path of a subscription carries raw
 * records (base64) and the client decodes them here.
 */
import type { TraceAddr, TraceEvent } from './meta.js';
import { SYSCALL_NAMES, syscallName } from './syscalls.js';

export const RECORD_HEADER = 96;
export const REC_F_NO_EXIT = 1;
export const REC_F_PATH_CUT = 2;
export const REC_F_PATH_FAULT = 4;
export const REC_F_NO_ENTRY = 8;

export type { TraceAddr, TraceEvent } from './meta.js';

// prettier-ignore
const ERRNO: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 3: 'ESRCH', 4: 'EINTR', 5: 'EIO', 6: 'ENXIO', 7: 'E2BIG', 8: 'ENOEXEC', 9: 'EBADF', 10: 'ECHILD', 11: 'EAGAIN', 12: 'ENOMEM', 13: 'EACCES', 14: 'EFAULT', 15: 'ENOTBLK', 16: 'EBUSY', 17: 'EEXIST', 18: 'EXDEV', 19: 'ENODEV', 20: 'ENOTDIR', 21: 'EISDIR', 22: 'EINVAL', 23: 'ENFILE', 24: 'EMFILE', 25: 'ENOTTY', 26: 'ETXTBSY', 27: 'EFBIG', 28: 'ENOSPC', 29: 'ESPIPE', 30: 'EROFS', 31: 'EMLINK', 32: 'EPIPE', 33: 'EDOM', 34: 'ERANGE', 35: 'EDEADLK', 36: 'ENAMETOOLONG', 37: 'ENOLCK', 38: 'ENOSYS', 39: 'ENOTEMPTY', 40: 'ELOOP', 42: 'ENOMSG', 43: 'EIDRM', 44: 'ECHRNG', 45: 'EL2NSYNC', 46: 'EL3HLT', 47: 'EL3RST', 48: 'ELNRNG', 49: 'EUNATCH', 50: 'ENOCSI', 51: 'EL2HLT', 52: 'EBADE', 53: 'EBADR', 54: 'EXFULL', 55: 'ENOANO', 56: 'EBADRQC', 57: 'EBADSLT', 59: 'EBFONT', 60: 'ENOSTR', 61: 'ENODATA', 62: 'ETIME', 63: 'ENOSR', 64: 'ENONET', 65: 'ENOPKG', 66: 'EREMOTE', 67: 'ENOLINK', 68: 'EADV', 69: 'ESRMNT', 70: 'ECOMM', 71: 'EPROTO', 72: 'EMULTIHOP', 73: 'EDOTDOT', 74: 'EBADMSG', 75: 'EOVERFLOW', 76: 'ENOTUNIQ', 77: 'EBADFD', 78: 'EREMCHG', 79: 'ELIBACC', 80: 'ELIBBAD', 81: 'ELIBSCN', 82: 'ELIBMAX', 83: 'ELIBEXEC', 84: 'EILSEQ', 85: 'ERESTART', 86: 'ESTRPIPE', 87: 'EUSERS', 88: 'ENOTSOCK', 89: 'EDESTADDRREQ', 90: 'EMSGSIZE', 91: 'EPROTOTYPE', 92: 'ENOPROTOOPT', 93: 'EPROTONOSUPPORT', 94: 'ESOCKTNOSUPPORT', 95: 'EOPNOTSUPP', 96: 'EPFNOSUPPORT', 97: 'EAFNOSUPPORT', 98: 'EADDRINUSE', 99: 'EADDRNOTAVAIL', 100: 'ENETDOWN', 101: 'ENETUNREACH', 102: 'ENETRESET', 103: 'ECONNABORTED', 104: 'ECONNRESET', 105: 'ENOBUFS', 106: 'EISCONN', 107: 'ENOTCONN', 108: 'ESHUTDOWN', 109: 'ETOOMANYREFS', 110: 'ETIMEDOUT', 111: 'ECONNREFUSED', 112: 'EHOSTDOWN', 113: 'EHOSTUNREACH', 114: 'EALREADY', 115: 'EINPROGRESS', 116: 'ESTALE', 117: 'EUCLEAN', 118: 'ENOTNAM', 119: 'ENAVAIL', 120: 'EISNAM', 121: 'EREMOTEIO', 122: 'EDQUOT', 123: 'ENOMEDIUM', 124: 'EMEDIUMTYPE', 125: 'ECANCELED', 126: 'ENOKEY', 127: 'EKEYEXPIRED', 128: 'EKEYREVOKED', 129: 'EKEYREJECTED', 130: 'EOWNERDEAD', 131: 'ENOTRECOVERABLE', 132: 'ERFKILL' };

export function errnoName(e: number): string {
  return ERRNO[e] ?? `E${e}`;
}

const O_FLAGS: Array<[number, string]> = [
  [0o100, 'O_CREAT'], [0o200, 'O_EXCL'], [0o400, 'O_NOCTTY'], [0o1000, 'O_TRUNC'], [0o2000, 'O_APPEND'],
  [0o4000, 'O_NONBLOCK'], [0o10000, 'O_DSYNC'], [0o40000, 'O_DIRECT'], [0o200000, 'O_DIRECTORY'],
  [0o400000, 'O_NOFOLLOW'], [0o1000000, 'O_NOATIME'], [0o2000000, 'O_CLOEXEC'], [0o10000000, 'O_PATH'],
  [0o20000000, '__O_TMPFILE'],
];

export function openFlags(f: number): string {
  const acc = ['O_RDONLY', 'O_WRONLY', 'O_RDWR', 'O_ACCMODE'][f & 3]!;
  const out = [acc];
  for (const [bit, name] of O_FLAGS) if (f & bit) out.push(name);
  const known = O_FLAGS.reduce((a, [b]) => a | b, 3);
  if (f & ~known) out.push(`0x${(f & ~known).toString(16)}`);
  return out.join('|');
}

/** argument index of the open flags, per syscall number */
const FLAGS_ARG: Record<number, number> = { 2: 1, 257: 2 };
/** syscalls whose first argument is a dirfd (the *at family) */
const DIRFD_FIRST = new Set([257, 437, 262, 332, 269, 439, 267, 263, 258, 264, 316, 268, 260, 265, 259, 280, 322, 452]);
/** syscalls whose first argument is an fd */
const FD_FIRST = new Set([0, 1, 3, 5, 8, 16, 17, 18, 19, 20, 32, 33, 40, 42, 43, 44, 45, 46, 47, 49, 50, 51, 52, 54, 55, 72, 73, 74, 75, 77, 78, 81, 91, 93, 138, 217, 288, 295, 296]);
/** by syscall number: the first argument is an fd or a dirfd */
const FD_ARG: boolean[] = Array.from({ length: 512 }, (_, nr) => FD_FIRST.has(nr) || DIRFD_FIRST.has(nr));

export function decodeAddr(b: Buffer): TraceAddr | undefined {
  if (b.length < 2) return undefined;
  const family = b.readUInt16LE(0);
  if (family === 2 && b.length >= 8) {
    return { family: 'inet', address: `${b[4]}.${b[5]}.${b[6]}.${b[7]}`, port: b.readUInt16BE(2) };
  }
  if (family === 10 && b.length >= 24) {
    const parts: string[] = [];
    for (let i = 0; i < 8; i++) parts.push(b.readUInt16BE(8 + i * 2).toString(16));
    return { family: 'inet6', address: parts.join(':').replace(/(^|:)0(:0)+(:|$)/, '::'), port: b.readUInt16BE(2) };
  }
  if (family === 1) {
    const raw = b.subarray(2);
    const nul = raw.indexOf(0);
    // an abstract socket starts with NUL: shown as @name
    if (nul === 0) return { family: 'unix', path: `@${raw.subarray(1).toString('latin1').replace(/\0+$/, '')}` };
    return { family: 'unix', path: raw.subarray(0, nul < 0 ? raw.length : nul).toString() };
  }
  return { family };
}

/**
 * Records are read through a DataView: on Node 20, Buffer's readUInt32LE and friends cost ~20 ns each
 * where DataView's getters are inlined (~2 ns); at a million records a second that is the budget.
 */
export function recordView(buf: Buffer): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Size of the record at `off` (header + padded addr + padded path). */
export function recordSize(dv: DataView, off: number): number {
  return RECORD_HEADER + ((dv.getUint8(off + 94) + 7) & ~7) + ((dv.getUint16(off + 92, true) + 7) & ~7);
}

export function recordNr(dv: DataView, off: number): number {
  return dv.getUint16(off + 88, true);
}

/** a u64 field as a number (exact below 2^53: ~104 days of nanoseconds), without a BigInt per record */
export function recordU64(dv: DataView, off: number): number {
  return dv.getUint32(off + 4, true) * 4294967296 + dv.getUint32(off, true);
}

function i64(dv: DataView, off: number): number {
  return dv.getInt32(off + 4, true) * 4294967296 + dv.getUint32(off, true);
}

/**
 * Decode every record of `buf`. `wallOffsetNs` turns the records' CLOCK_MONOTONIC into wall time
 * (wall ns - monotonic ns, sampled once per trace). `keep` filters by syscall number before decoding.
 */
export function decodeRecords(buf: Buffer, sandbox: string, wallOffsetNs: bigint, keep?: (nr: number) => boolean): TraceEvent[] {
  const out: TraceEvent[] = [];
  const dv = recordView(buf);
  const wallUsOffset = Number(wallOffsetNs) / 1000;
  for (let off = 0; off + RECORD_HEADER <= buf.length; off += recordSize(dv, off)) {
    if (keep && !keep(dv.getUint16(off + 88, true))) continue;
    out.push(decodeRecord(buf, dv, off, sandbox, wallUsOffset));
  }
  return out;
}

export function decodeRecord(buf: Buffer, dv: DataView, off: number, sandbox: string, wallUsOffset: number): TraceEvent {
  const nr = dv.getUint16(off + 88, true);
  const flags = dv.getUint16(off + 90, true);
  const plen = dv.getUint16(off + 92, true);
  const alen = dv.getUint8(off + 94);
  const ret = i64(dv, off + 24);
  // one object shape for every event (absent fields stay undefined and vanish from JSON): V8 keeps it fast
  const e: TraceEvent = {
    sandbox,
    tsUs: Math.round(recordU64(dv, off) / 1000 + wallUsOffset),
    durNs: recordU64(dv, off + 16),
    pid: dv.getUint32(off + 80, true),
    tid: dv.getUint32(off + 84, true),
    nr,
    syscall: SYSCALL_NAMES[nr] || syscallName(nr),
    ret,
    errno: ret < 0 && ret >= -4095 ? errnoName(-ret) : undefined,
    path: undefined,
    pathCut: undefined,
    addr: undefined,
    fd: FD_ARG[nr] ? dv.getInt32(off + 32, true) : undefined,
    flags: undefined,
    noExit: flags & REC_F_NO_EXIT ? true : undefined,
    noEntry: flags & REC_F_NO_ENTRY ? true : undefined,
  };
  const body = off + RECORD_HEADER;
  if (alen > 0) e.addr = decodeAddr(buf.subarray(body, body + alen));
  if (plen > 0) {
    const p = body + ((alen + 7) & ~7);
    const end = buf.indexOf(0, p);
    e.path = buf.toString('utf8', p, end < 0 || end > p + plen ? p + plen : end);
    if (flags & REC_F_PATH_CUT) e.pathCut = true;
  }
  const fa = FLAGS_ARG[nr];
  if (fa !== undefined) e.flags = openFlags(dv.getUint32(off + 32 + fa * 8, true));
  return e;
}

/** One line, strace-like: 12:00:00.123456 [sb 1234] openat(AT_FDCWD, "/etc/hostname", O_RDONLY) = 3 <0.000012> */
export function formatEvent(e: TraceEvent): string {
  const d = new Date(e.tsUs / 1000);
  const time = `${d.toISOString().slice(11, 19)}.${String(Math.floor(e.tsUs % 1_000_000)).padStart(6, '0')}`;
  const args: string[] = [];
  if (e.fd !== undefined) args.push(e.fd === -100 ? 'AT_FDCWD' : String(e.fd));
  if (e.path !== undefined) args.push(JSON.stringify(e.path) + (e.pathCut ? '...' : ''));
  if (e.addr) args.push(formatAddr(e.addr));
  if (e.flags) args.push(e.flags);
  const result = e.noExit ? '?' : e.errno ? `-1 ${e.errno}` : String(e.ret);
  const dur = e.noExit ? '' : ` <${(e.durNs / 1e9).toFixed(6)}>`;
  return `${time} [${e.sandbox} ${e.tid}] ${e.syscall}(${args.join(', ')}) = ${result}${dur}`;
}

export function formatAddr(a: TraceAddr): string {
  if ('address' in a) return a.family === 'inet6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  if ('path' in a) return `unix:${a.path}`;
  return `family ${a.family}`;
}
