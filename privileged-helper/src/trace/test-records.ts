/** For tests: builds tracer records (docs/tracer-protocol.md), and checks the Trace Event Format. */
import { RECORD_HEADER } from './records.js';

export interface RecordInput {
  tsNs: bigint;
  cgid?: bigint;
  durNs?: bigint;
  ret?: bigint;
  args?: bigint[];
  pid?: number;
  tid?: number;
  nr: number;
  flags?: number;
  path?: string;
  addr?: Buffer;
}

export function makeRecord(r: RecordInput): Buffer {
  const path = r.path === undefined ? Buffer.alloc(0) : Buffer.from(`${r.path}\0`);
  const addr = r.addr ?? Buffer.alloc(0);
  const pad = (n: number) => (n + 7) & ~7;
  const b = Buffer.alloc(RECORD_HEADER + pad(addr.length) + pad(path.length));
  b.writeBigUInt64LE(r.tsNs, 0);
  b.writeBigUInt64LE(r.cgid ?? 7n, 8);
  b.writeBigUInt64LE(r.durNs ?? 1000n, 16);
  b.writeBigInt64LE(r.ret ?? 0n, 24);
  (r.args ?? []).forEach((a, i) => b.writeBigUInt64LE(BigInt.asUintN(64, a), 32 + i * 8));
  b.writeUInt32LE(r.pid ?? 100, 80);
  b.writeUInt32LE(r.tid ?? r.pid ?? 100, 84);
  b.writeUInt16LE(r.nr, 88);
  b.writeUInt16LE(r.flags ?? 0, 90);
  b.writeUInt16LE(path.length, 92);
  b.writeUInt8(addr.length, 94);
  b.writeUInt8(1, 95);
  addr.copy(b, RECORD_HEADER);
  path.copy(b, RECORD_HEADER + pad(addr.length));
  return b;
}

export function sockaddrIn(ip: [number, number, number, number], port: number): Buffer {
  const a = Buffer.alloc(16);
  a.writeUInt16LE(2, 0);
  a.writeUInt16BE(port, 2);
  Buffer.from(ip).copy(a, 4);
  return a;
}

/**
 * The Trace Event Format (JSON object form), as the spec describes it: `traceEvents` is an array of
 * events; every event has name, ph, ts (µs), pid, tid; 'X' (complete) has a non-negative dur; 'i'
 * (instant) has scope s in g/p/t; 'M' (metadata) process_name has args.name; 'C' (counter) has numeric
 * args; displayTimeUnit is "ms" or "ns". Returns the problems found.
 */
export function traceEventFormatProblems(doc: unknown): string[] {
  const problems: string[] = [];
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return ['the top level is not an object'];
  const d = doc as Record<string, unknown>;
  if (!Array.isArray(d.traceEvents)) return ['traceEvents is not an array'];
  if (d.displayTimeUnit !== undefined && d.displayTimeUnit !== 'ms' && d.displayTimeUnit !== 'ns') problems.push('displayTimeUnit must be ms or ns');
  d.traceEvents.forEach((raw, i) => {
    const e = raw as Record<string, unknown>;
    const bad = (m: string) => problems.push(`event ${i}: ${m}`);
    if (typeof e.name !== 'string') bad('name is not a string');
    if (typeof e.ph !== 'string' || !['B', 'E', 'X', 'i', 'I', 'C', 'M', 'b', 'e', 'n', 's', 't', 'f', 'P', 'O', 'N', 'D'].includes(e.ph)) bad(`unknown ph ${String(e.ph)}`);
    if (typeof e.ts !== 'number' || !Number.isFinite(e.ts)) bad('ts is not a number');
    if (!Number.isInteger(e.pid) || !Number.isInteger(e.tid)) bad('pid/tid are not integers');
    if (e.ph === 'X' && (typeof e.dur !== 'number' || e.dur < 0)) bad('a complete event needs dur >= 0');
    if (e.ph === 'i' && e.s !== undefined && !['g', 'p', 't'].includes(e.s as string)) bad('instant scope must be g, p or t');
    if (e.ph === 'M' && e.name === 'process_name' && typeof (e.args as { name?: unknown } | undefined)?.name !== 'string') bad('process_name needs args.name');
    if (e.ph === 'C' && !Object.values((e.args as Record<string, unknown>) ?? {}).every((v) => typeof v === 'number')) bad('counter args must be numbers');
    if (e.args !== undefined && (typeof e.args !== 'object' || e.args === null)) bad('args must be an object');
  });
  return problems;
}

