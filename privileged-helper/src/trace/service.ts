/**
 * Live traces of sandboxes started with `trace`: registers each one's cgroup with the tracer before its
 * program starts, keeps its records on disk (store.ts), fans them out to subscribers under each
 * stream's flow control, and accounts for every syscall (delivered, or dropped and counted: in the kernel,
 * by the rate limit, in the store, or on a slow stream). Exports to the Chrome Trace Event Format.
 *
 * Threat model: clients (ai-sandbox group) choose which sandbox to read and filters; names are validated
 * by the schema and a trace directory is only ever `<traces>/<validated name>`. Trace content comes from
 * sandboxed programs and is decoded as data only.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../errors/app-error.js';
import type { Params, Results, TraceStatus, TraceSummary } from '../protocol/schema.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import type { ConnectionStream } from '../server/stream.js';
import { chromeTrace } from './chrome-trace.js';
import { decodeRecords, recordNr, recordSize, recordView, RECORD_HEADER } from './records.js';
import { readChunks, readIndex, readMeta, TraceWriter, type TraceCounters } from './store.js';
import { resolveSyscalls, syscallMask, syscallName } from './syscalls.js';
import { Tracer, type TracerCounters } from './tracer.js';

/** What the sandbox manager calls around a sandbox's life (see SandboxManager.observers). */
export interface SandboxObserver {
  /** its cgroup exists, its program has not started */
  beforeStart?(sb: Sandbox): Promise<void>;
  /** it stopped (or failed to start); runs before waiters learn of the exit */
  stopped?(sb: Sandbox): Promise<void>;
  /** approvals: the supervisor a cold SPAWN connects the sandbox to */
  notify?(sb: Sandbox): { socket: string; nrs: number[] } | undefined;
}

interface Subscriber {
  stream: ConnectionStream;
  keep: Set<number> | null;
  format: 'events' | 'records';
  delivered: number;
  dropped: number;
  /** live records that arrived while the replay was going out: sent right after it */
  held: Buffer[] | null;
}

const RUN_OF_NAME = /^(r-[0-9a-f]{8})-/;

class TraceSession {
  readonly subscribers = new Set<Subscriber>();
  counters: TracerCounters = { emitted: 0, ringbufDropped: 0, rateLimited: 0, aggregated: new Map() };
  ended = false;

  constructor(
    readonly sandbox: string,
    readonly cgid: bigint,
    /** null: a finished trace read back from disk */
    readonly writer: TraceWriter | null,
    readonly wallOffsetNs: bigint,
  ) {}

  records(buf: Buffer, count: number): void {
    this.writer?.append(buf, count);
    for (const s of this.subscribers) {
      if (s.held) s.held.push(buf);
      else deliver(this, s, buf, count);
    }
  }

  totals(s?: Subscriber): TraceCounters & { delivered: number; streamDropped: number } {
    return {
      emitted: this.counters.emitted,
      kernelDropped: this.counters.ringbufDropped,
      rateLimited: this.counters.rateLimited,
      aggregated: Object.fromEntries([...this.counters.aggregated].map(([nr, n]) => [syscallName(nr), n])),
      storeDropped: this.writer?.storeDropped ?? 0,
      delivered: s?.delivered ?? 0,
      streamDropped: s?.dropped ?? 0,
    };
  }

  publishCounters(): void {
    for (const s of this.subscribers) s.stream.event({ type: 'trace-counters', sandbox: this.sandbox, counters: this.totals(s) });
  }
}

/** Keep only the records whose syscall is in `keep` (a copy; null = all, no copy). */
export function filterRecords(buf: Buffer, keep: Set<number> | null, known?: number): { buf: Buffer; count: number } {
  let count = 0;
  if (!keep && known !== undefined) return { buf, count: known };
  const dv = recordView(buf);
  if (!keep) {
    for (let off = 0; off + RECORD_HEADER <= buf.length; off += recordSize(dv, off)) count++;
    return { buf, count };
  }
  const parts: Buffer[] = [];
  for (let off = 0; off + RECORD_HEADER <= buf.length; ) {
    const size = recordSize(dv, off);
    if (keep.has(recordNr(dv, off))) {
      parts.push(buf.subarray(off, off + size));
      count++;
    }
    off += size;
  }
  return { buf: parts.length === 1 ? parts[0]! : Buffer.concat(parts), count };
}

function deliver(session: TraceSession, s: Subscriber, buf: Buffer, count?: number): void {
  if (s.stream.done) {
    session.subscribers.delete(s);
    return;
  }
  if (s.format === 'records') {
    const f = filterRecords(buf, s.keep, count);
    if (f.count === 0) return;
    const data = f.buf.toString('base64');
    if (s.stream.trace({ sandbox: session.sandbox, count: f.count, records: data }, data.length)) s.delivered += f.count;
    else s.dropped += f.count;
    return;
  }
  const events = decodeRecords(buf, session.sandbox, session.wallOffsetNs, s.keep ? (nr) => s.keep!.has(nr) : undefined);
  if (events.length === 0) return;
  // ~160 bytes of JSON per event: the window counts an estimate rather than stringifying twice
  if (s.stream.trace({ sandbox: session.sandbox, count: events.length, events }, events.length * 160)) s.delivered += events.length;
  else s.dropped += events.length;
}

export class TraceService {
  private tracer: Tracer | null = null;
  private starting: Promise<Tracer> | null = null;
  private readonly sessions = new Map<string, TraceSession>();
  private unsupported: string | null = null;

  constructor(
    private readonly tracerBinary: string,
    /** `<stateRoot>/traces`: one directory per traced sandbox, kept after it ends */
    readonly dir: string,
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** The SandboxObserver the manager calls. */
  readonly observer: SandboxObserver = {
    beforeStart: (sb) => this.beforeStart(sb),
    stopped: (sb) => this.stopped(sb),
  };

  status(): TraceStatus {
    const reason = this.unsupported ?? (fs.existsSync(this.tracerBinary) ? null : `the tracer is not built (${this.tracerBinary}): it needs clang, bpftool, libbpf-dev and /sys/kernel/btf/vmlinux; run \`npm run setup\``);
    return {
      supported: reason === null,
      reason,
      attached: this.tracer?.attached ?? false,
      traced: [...this.sessions.keys()],
      tracerPid: this.tracer?.alive ? (this.tracer.pid ?? null) : null,
      lastAttachMs: this.tracer?.lastAttachMs ?? null,
      lastAddMs: this.tracer?.lastAddMs ?? null,
    };
  }

  private ensureTracer(): Promise<Tracer> {
    if (this.tracer?.alive) return Promise.resolve(this.tracer);
    const st = this.status();
    if (!st.supported) return Promise.reject(new AppError('UNSUPPORTED', `tracing is not available on this host: ${st.reason}`));
    this.starting ??= (async () => {
      // --probe first: a kernel that refuses tp_btf gets a clear reason, not a dead tracer
      let probe: { tpBtf: boolean; error?: string };
      try {
        probe = JSON.parse(execFileSync(this.tracerBinary, ['--probe'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] })) as typeof probe;
      } catch (err) {
        probe = { tpBtf: false, error: (err as Error).message.split('\n')[0] };
      }
      if (!probe.tpBtf) {
        this.unsupported = `the kernel refused the tracer's tp_btf programs: ${probe.error ?? 'unknown reason'}`;
        throw new AppError('UNSUPPORTED', `tracing is not available on this host: ${this.unsupported}`);
      }
      this.tracer = new Tracer(this.tracerBinary);
      return this.tracer;
    })().finally(() => (this.starting = null));
    return this.starting;
  }

  private async beforeStart(sb: Sandbox): Promise<void> {
    const opts = sb.spec.trace;
    if (!opts || !sb.cgroup) return;
    const o = opts === true ? {} : opts;
    const nrs = o.syscalls ? resolveSyscalls(o.syscalls) : undefined;
    const tracer = await this.ensureTracer();
    const cgid = fs.statSync(sb.cgroup.cgroup2Path, { bigint: true }).ino;
    const wallOffsetNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
    const writer = new TraceWriter(path.join(this.dir, sb.name), {
      sandbox: sb.name,
      run: RUN_OF_NAME.exec(sb.name)?.[1] ?? null,
      cgid: cgid.toString(),
      startedAt: new Date().toISOString(),
      endedAt: null,
      wallOffsetNs: wallOffsetNs.toString(),
      syscalls: o.syscalls ?? null,
      rate: o.rate ?? 0,
      counters: null,
    });
    const session = new TraceSession(sb.name, cgid, writer, wallOffsetNs);
    this.sessions.set(sb.name, session);
    try {
      await tracer.add(cgid, syscallMask(nrs), o.rate ?? 0, {
        records: (buf, n) => session.records(buf, n),
        counters: (c) => {
          session.counters = c;
          session.publishCounters();
        },
      });
    } catch (err) {
      this.sessions.delete(sb.name);
      await writer.close(session.totals());
      throw err;
    }
  }

  private async stopped(sb: Sandbox): Promise<void> {
    const session = this.sessions.get(sb.name);
    if (!session || session.ended) return;
    session.ended = true;
    try {
      const c = this.tracer?.alive ? await this.tracer.remove(session.cgid) : null;
      if (c) session.counters = c;
    } catch {
      // the tracer died: the counters so far are what there is (the session says so by ending)
    }
    this.sessions.delete(sb.name);
    await session.writer?.close(session.totals());
    for (const s of session.subscribers) {
      if (s.held) continue; // still replaying: it ends itself after the held records
      s.stream.event({ type: 'trace-counters', sandbox: session.sandbox, counters: session.totals(s) });
      s.stream.end();
      session.subscribers.delete(s);
    }
  }

  private traceDir(name: string): string {
    const dir = path.join(this.dir, name);
    if (!fs.existsSync(path.join(dir, 'meta.json'))) {
      throw new AppError('NOT_FOUND', `no trace of "${name}": start the sandbox with trace (\`ai-sandbox run --trace\`, or \`trace: true\` in a workflow step)`);
    }
    return dir;
  }

  /** Replay (optional) and then follow (optional) one sandbox's trace onto `stream`. */
  async subscribe(p: Params<'trace.subscribe'>, stream: ConnectionStream): Promise<Results['trace.subscribe']> {
    const keep = p.syscalls ? new Set(resolveSyscalls(p.syscalls)) : null;
    const dir = this.traceDir(p.sandbox);
    const before = this.sessions.get(p.sandbox);
    if (before) await before.writer?.sync();
    // From here to the registration nothing else runs: the index read now and the live records held
    // from now on meet exactly (no gap, no duplicate).
    const live = this.sessions.get(p.sandbox);
    const following = live !== undefined && p.follow;
    const sub: Subscriber = { stream, keep, format: p.format, delivered: 0, dropped: 0, held: following ? [] : null };
    const index = p.replay ? readIndex(dir) : [];
    if (following) live.subscribers.add(sub);
    const wallOffsetNs = live?.wallOffsetNs ?? BigInt(readMeta(dir).wallOffsetNs);
    const view = live ?? new TraceSession(p.sandbox, 0n, null, wallOffsetNs);
    void (async () => {
      for (const chunk of readChunks(dir, {}, index)) {
        await stream.writable();
        if (stream.done) return;
        deliver(view, sub, chunk);
      }
      // the held records go out in order, then live ones directly
      while (sub.held && sub.held.length > 0) {
        await stream.writable();
        for (const b of sub.held.splice(0, 64)) deliver(view, sub, b);
      }
      sub.held = null;
      if (following && !live.ended) return;
      const meta = readMeta(dir);
      const counters = live ? live.totals(sub) : { ...(meta.counters ?? { emitted: 0, kernelDropped: 0, rateLimited: 0, aggregated: {}, storeDropped: 0 }), delivered: sub.delivered, streamDropped: sub.dropped };
      live?.subscribers.delete(sub);
      stream.event({ type: 'trace-counters', sandbox: p.sandbox, counters });
      stream.end();
    })();
    return { stream: stream.id, live: live !== undefined, wallOffsetNs: wallOffsetNs.toString() };
  }

  unsubscribe(stream: ConnectionStream): void {
    for (const s of this.sessions.values()) for (const sub of s.subscribers) if (sub.stream === stream) s.subscribers.delete(sub);
  }

  list(run?: string): TraceSummary[] {
    const out: TraceSummary[] = [];
    for (const name of fs.readdirSync(this.dir)) {
      const dir = path.join(this.dir, name);
      let meta;
      try {
        meta = readMeta(dir);
      } catch {
        continue;
      }
      if (run !== undefined && meta.run !== run) continue;
      const index = readIndex(dir);
      const { wallOffsetNs: _w, cgid: _c, ...rest } = meta;
      out.push({ ...rest, live: this.sessions.has(name), records: index.reduce((a, e) => a + e.count, 0), bytes: index.reduce((a, e) => a + e.length, 0) });
    }
    return out.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  }

  /** The trace directories an export target names: a sandbox's, or every traced step of a run. */
  exportDirs(target: string): { names: string[]; dirs: string[] } {
    if (/^r-[0-9a-f]{8}$/.test(target)) {
      const names = this.list(target).map((t) => t.sandbox);
      if (names.length === 0) throw new AppError('NOT_FOUND', `run ${target} has no traced steps: set \`trace: true\` on steps (or in defaults) to record them`);
      return { names, dirs: names.map((n) => path.join(this.dir, n)) };
    }
    return { names: [target], dirs: [this.traceDir(target)] };
  }

  /** Write the Chrome-trace export of `target` to `stream` as stdout data, never dropping (it waits for acks). */
  async export(target: string, stream: ConnectionStream): Promise<void> {
    const { dirs } = this.exportDirs(target);
    for (const name of this.exportDirs(target).names) await this.sessions.get(name)?.writer?.sync();
    let pending: string[] = [];
    let size = 0;
    for (const piece of chromeTrace(dirs)) {
      pending.push(piece);
      size += piece.length;
      if (size < 256 * 1024) continue;
      await stream.writable();
      if (stream.done) return;
      stream.output(1, Buffer.from(pending.join('')));
      pending = [];
      size = 0;
    }
    await stream.writable();
    if (!stream.done && pending.length) stream.output(1, Buffer.from(pending.join('')));
    stream.end();
  }

  async shutdown(): Promise<void> {
    for (const s of this.sessions.values()) {
      await s.writer?.close(s.totals()).catch(() => undefined);
      for (const sub of s.subscribers) sub.stream.end();
    }
    this.sessions.clear();
    await this.tracer?.stop();
  }

  /** for tests: the tracer process */
  get tracerPid(): number | null {
    return this.tracer?.alive ? (this.tracer.pid ?? null) : null;
  }
}

export function defaultTracerBinary(launcherBinary: string): string {
  return path.join(path.dirname(launcherBinary), 'ai-sandbox-tracer');
}
