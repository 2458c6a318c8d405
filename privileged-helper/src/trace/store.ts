/**
 * A sandbox's trace on disk, kept after the sandbox is gone: `<dir>/records.gz` is the tracer's records
 * (docs/tracer-protocol.md) in independent gzip members of up to ~1 MiB raw each (the whole file is a
 * valid gzip stream: `zcat` works), `<dir>/index.ndjson` has one line per member
 * `{firstNs, lastNs, offset, length, count}` (CLOCK_MONOTONIC ns), so a time range is read by
 * decompressing only the members it overlaps; `<dir>/meta.json` names the sandbox, run and clock offset
 * and, once it ended, the final counters.
 *
 * Threat model: the directory is the helper's (root, 0700); the content comes from sandboxed programs and
 * is only ever decoded as records.
 */
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { recordSize, recordU64, recordView, RECORD_HEADER } from './records.js';
import type { TraceCounters, TraceMeta } from './meta.js';

const gzip = promisify(zlib.gzip);
const CHUNK_BYTES = 1024 * 1024;
const CHUNK_MS = 500;
/** compressed-but-unwritten data beyond this is dropped and counted, so a flood cannot grow memory */
const MAX_QUEUED = 64 * 1024 * 1024;

export type { TraceCounters, TraceMeta } from './meta.js';

export interface IndexEntry {
  firstNs: number;
  lastNs: number;
  offset: number;
  length: number;
  count: number;
}

export class TraceWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingCount = 0;
  private firstNs = 0;
  private lastNs = 0;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;
  private offset = 0;
  private readonly fd: number;
  private readonly indexFd: number;
  storeDropped = 0;
  count = 0;

  constructor(
    readonly dir: string,
    readonly meta: TraceMeta,
  ) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.writeMeta();
    this.fd = fs.openSync(path.join(dir, 'records.gz'), 'w', 0o600);
    this.indexFd = fs.openSync(path.join(dir, 'index.ndjson'), 'w', 0o600);
  }

  /** `count` records back to back (counted here when not given) */
  append(buf: Buffer, count?: number): void {
    if (buf.length < RECORD_HEADER) return;
    const dv = recordView(buf);
    let n = count ?? 0;
    let last = 0;
    for (let off = 0; off + RECORD_HEADER <= buf.length; off += recordSize(dv, off)) {
      if (count === undefined) n++;
      last = off;
    }
    if (this.pendingCount === 0) this.firstNs = recordU64(dv, 0);
    this.lastNs = recordU64(dv, last);
    // the tracer reuses nothing, but the slice keeps its whole frame alive: copy small slices
    this.pending.push(buf.length < 4096 ? Buffer.from(buf) : buf);
    this.pendingBytes += buf.length;
    this.pendingCount += n;
    this.count += n;
    if (this.pendingBytes >= CHUNK_BYTES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), CHUNK_MS);
  }

  /** Records appended but not yet compressed (a subscriber's replay needs them too). */
  unflushed(): Buffer[] {
    return this.pending;
  }

  /** Compress what is pending as one gzip member and queue its write. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pendingBytes === 0) return;
    const raw = Buffer.concat(this.pending, this.pendingBytes);
    const entry = { firstNs: this.firstNs, lastNs: this.lastNs, count: this.pendingCount };
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingCount = 0;
    if (this.queued > MAX_QUEUED) {
      this.storeDropped += entry.count;
      return;
    }
    this.queued += raw.length;
    const z = gzip(raw, { level: 1 });
    this.chain = this.chain.then(async () => {
      const gz = await z;
      this.queued -= raw.length;
      fs.writeSync(this.fd, gz);
      const line: IndexEntry = { ...entry, offset: this.offset, length: gz.length };
      this.offset += gz.length;
      fs.writeSync(this.indexFd, `${JSON.stringify(line)}\n`);
    });
  }

  /** Everything appended so far is on disk. */
  async sync(): Promise<void> {
    // records can arrive while a write is awaited: loop until nothing is pending or queued
    for (;;) {
      this.flush();
      const chain = this.chain;
      await chain;
      if (chain === this.chain && this.pendingBytes === 0) return;
    }
  }

  async close(counters: TraceCounters): Promise<void> {
    await this.sync();
    fs.closeSync(this.fd);
    fs.closeSync(this.indexFd);
    this.meta.endedAt = new Date().toISOString();
    this.meta.counters = { ...counters, storeDropped: counters.storeDropped + this.storeDropped };
    this.writeMeta();
  }

  private writeMeta(): void {
    fs.writeFileSync(path.join(this.dir, 'meta.json'), `${JSON.stringify(this.meta, null, 2)}\n`, { mode: 0o600 });
  }
}

export function readMeta(dir: string): TraceMeta {
  return JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as TraceMeta;
}

export function readIndex(dir: string): IndexEntry[] {
  const text = fs.existsSync(path.join(dir, 'index.ndjson')) ? fs.readFileSync(path.join(dir, 'index.ndjson'), 'utf8') : '';
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as IndexEntry);
}

/** The stored records, one decompressed member at a time; with a range, only the members it overlaps. */
export function* readChunks(dir: string, range: { fromNs?: number; toNs?: number } = {}, index = readIndex(dir)): Generator<Buffer> {
  if (index.length === 0) return;
  const fd = fs.openSync(path.join(dir, 'records.gz'), 'r');
  try {
    for (const e of index) {
      if (range.fromNs !== undefined && e.lastNs < range.fromNs) continue;
      if (range.toNs !== undefined && e.firstNs > range.toNs) continue;
      const gz = Buffer.alloc(e.length);
      fs.readSync(fd, gz, 0, e.length, e.offset);
      yield zlib.gunzipSync(gz);
    }
  } finally {
    fs.closeSync(fd);
  }
}
