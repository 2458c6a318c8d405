/**
 * Client of the native tracer process (docs/tracer-protocol.md). One per helper, started on the first
 * traced sandbox; its records are split by cgroup id and handed to whoever registered that id.
 *
 * Threat model: the tracer is our root child; what it forwards (paths, sockaddrs) comes from sandboxed
 * programs and is treated as data: decoded into strings and numbers, never used as paths or commands here.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { AppError } from '../errors/app-error.js';
import { recordSize, recordView, RECORD_HEADER } from './records.js';

const REQ_ADD = 1;
const REQ_REMOVE = 2;
const REQ_COUNTERS = 3;
const EV_ACK = 101;
const EV_EVENTS = 102;
const EV_COUNTERS = 103;

export interface TracerCounters {
  emitted: number;
  ringbufDropped: number;
  rateLimited: number;
  /** rate-limited calls by syscall number */
  aggregated: Map<number, number>;
}

export interface TracerAck {
  attached: boolean;
  tookNs: number;
  attachNs: number;
}

export interface TracerSink {
  /** `count` records of this sandbox, back to back */
  records(buf: Buffer, count: number): void;
  counters(c: TracerCounters): void;
}

export function decodeCounters(body: Buffer): Map<bigint, TracerCounters> {
  const out = new Map<bigint, TracerCounters>();
  const n = body.readUInt32LE(0);
  let off = 8;
  for (let i = 0; i < n; i++) {
    const cgid = body.readBigUInt64LE(off);
    const c: TracerCounters = {
      emitted: Number(body.readBigUInt64LE(off + 8)),
      ringbufDropped: Number(body.readBigUInt64LE(off + 16)),
      rateLimited: Number(body.readBigUInt64LE(off + 24)),
      aggregated: new Map(),
    };
    const nagg = body.readUInt32LE(off + 32);
    off += 40;
    for (let j = 0; j < nagg; j++, off += 16) c.aggregated.set(body.readUInt32LE(off), Number(body.readBigUInt64LE(off + 8)));
    out.set(cgid, c);
  }
  return out;
}

/**
 * Frames of the tracer's stdout. EVENTS frames are up to 1 MiB and arrive in pipe-sized chunks: the
 * chunks are kept in a list and joined once per frame (joining at every chunk would copy quadratically).
 */
export class TracerFrameDecoder {
  private chunks: Buffer[] = [];
  private size = 0;

  push(chunk: Buffer): Array<{ type: number; id: number; body: Buffer }> {
    this.chunks.push(chunk);
    this.size += chunk.length;
    const out: Array<{ type: number; id: number; body: Buffer }> = [];
    for (;;) {
      if (this.size < 4) break;
      let head = this.chunks[0]!;
      if (head.length < 9 && this.size >= 9) head = this.join();
      const len = head.length >= 4 ? head.readUInt32LE(0) : this.join().readUInt32LE(0);
      if (len < 5) throw new Error(`the tracer sent a frame of impossible length ${len}`);
      if (this.size < 4 + len) break;
      if (this.chunks[0]!.length < 4 + len) this.join();
      const b = this.chunks[0]!;
      out.push({ type: b.readUInt8(4), id: b.readUInt32LE(5), body: b.subarray(9, 4 + len) });
      if (b.length === 4 + len) this.chunks.shift();
      else this.chunks[0] = b.subarray(4 + len);
      this.size -= 4 + len;
    }
    return out;
  }

  private join(): Buffer {
    const b = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    this.chunks = [b];
    return b;
  }
}

export class Tracer {
  private readonly proc: ChildProcessByStdio<Writable, Readable, Readable>;
  private readonly decoder = new TracerFrameDecoder();
  private readonly pending = new Map<number, { resolve(a: TracerAck & { counters?: Map<bigint, TracerCounters> }): void; reject(e: AppError): void; counters?: Map<bigint, TracerCounters> }>();
  private readonly sinks = new Map<bigint, TracerSink>();
  private nextId = 1;
  private dead: AppError | null = null;
  attached = false;
  /** the last attach (first sandbox after none) and the last add, as the tracer measured them */
  lastAttachMs: number | null = null;
  lastAddMs: number | null = null;
  log = '';

  constructor(binary: string, opts: { pollMs?: number } = {}) {
    // its own session (a Ctrl-C at the helper's terminal is the helper's to handle); ends on EOF on stdin
    this.proc = spawn(binary, opts.pollMs ? ['--poll-ms', String(opts.pollMs)] : [], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.proc.stdout.on('data', (chunk: Buffer) => this.onData(chunk));
    this.proc.stderr.on('data', (d: Buffer) => {
      this.log = (this.log + d.toString()).slice(-4000);
      if (process.env.AI_SANDBOX_DEBUG) process.stderr.write(d);
    });
    this.proc.stdin.on('error', () => {});
    this.proc.on('exit', (code, sig) => {
      this.dead = new AppError('UNSUPPORTED', `the tracer ended (${sig ?? `exit ${code}`}): ${this.log.trim().split('\n').slice(-3).join('; ')}`);
      this.attached = false;
      for (const p of this.pending.values()) p.reject(this.dead);
      this.pending.clear();
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get alive(): boolean {
    return this.dead === null;
  }

  /** Trace a cgroup: `mask` is 8 × u64 (bit = syscall number), `rate` events/s one by one (0: no limit). */
  async add(cgid: bigint, mask: bigint[], rate: number, sink: TracerSink): Promise<TracerAck> {
    const body = Buffer.alloc(80);
    body.writeBigUInt64LE(cgid, 0);
    body.writeUInt32LE(rate, 8);
    body.writeUInt32LE(0, 12);
    mask.forEach((m, i) => body.writeBigUInt64LE(m, 16 + i * 8));
    this.sinks.set(cgid, sink);
    try {
      const ack = await this.request(REQ_ADD, body);
      this.lastAddMs = ack.tookNs / 1e6;
      if (ack.attachNs > 0) this.lastAttachMs = ack.attachNs / 1e6;
      return ack;
    } catch (err) {
      this.sinks.delete(cgid);
      throw err;
    }
  }

  /** Stop tracing a cgroup; its records are all delivered before this resolves; returns its final counters. */
  async remove(cgid: bigint): Promise<TracerCounters | null> {
    const body = Buffer.alloc(8);
    body.writeBigUInt64LE(cgid, 0);
    try {
      const r = await this.request(REQ_REMOVE, body);
      return r.counters?.get(cgid) ?? null;
    } finally {
      this.sinks.delete(cgid);
    }
  }

  async counters(): Promise<Map<bigint, TracerCounters>> {
    const r = await this.request(REQ_COUNTERS, Buffer.alloc(0));
    return r.counters ?? new Map();
  }

  stop(): Promise<void> {
    if (this.dead) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
      this.proc.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      this.proc.stdin.end();
    });
  }

  private request(type: number, body: Buffer): Promise<TracerAck & { counters?: Map<bigint, TracerCounters> }> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    const h = Buffer.alloc(9);
    h.writeUInt32LE(body.length + 5, 0);
    h.writeUInt8(type, 4);
    h.writeUInt32LE(id, 5);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.proc.stdin.write(Buffer.concat([h, body]));
    });
  }

  private onData(chunk: Buffer): void {
    let frames: ReturnType<TracerFrameDecoder['push']>;
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      // a tracer that breaks its protocol is ended (its exit rejects what waits on it), never the helper
      process.stderr.write(`ai-sandbox helper: ${(err as Error).message}: ending the tracer\n`);
      this.proc.kill('SIGKILL');
      return;
    }
    for (const f of frames) {
      if (f.type === EV_EVENTS) this.dispatchRecords(f.body);
      else if (f.type === EV_COUNTERS) {
        const all = decodeCounters(f.body);
        const p = this.pending.get(f.id);
        if (p) p.counters = all;
        for (const [cgid, c] of all) this.sinks.get(cgid)?.counters(c);
      } else if (f.type === EV_ACK) {
        const p = this.pending.get(f.id);
        if (!p) continue;
        this.pending.delete(f.id);
        const err = f.body.readInt32LE(0);
        this.attached = (f.body.readUInt32LE(4) & 1) === 1;
        if (err !== 0) {
          p.reject(new AppError(err === 28 ? 'RESOURCE_EXHAUSTED' : 'INTERNAL', `the tracer refused the request (errno ${err})`));
        } else {
          p.resolve({ attached: this.attached, tookNs: Number(f.body.readBigUInt64LE(8)), attachNs: Number(f.body.readBigUInt64LE(16)), ...(p.counters && { counters: p.counters }) });
        }
      }
    }
  }

  /** Hand each sandbox its records: consecutive records of one cgroup go out as one slice (no copy). */
  private dispatchRecords(buf: Buffer): void {
    let start = 0;
    let lo = -1;
    let hi = -1;
    let n = 0;
    let off = 0;
    const dv = recordView(buf);
    const flush = () => {
      if (n > 0) this.sinks.get((BigInt(hi) << 32n) | BigInt(lo))?.records(buf.subarray(start, off), n);
    };
    while (off + RECORD_HEADER <= buf.length) {
      const l = dv.getUint32(off + 8, true);
      const h = dv.getUint32(off + 12, true);
      if (l !== lo || h !== hi) {
        flush();
        lo = l;
        hi = h;
        start = off;
        n = 0;
      }
      n++;
      off += recordSize(dv, off);
    }
    flush();
  }
}
