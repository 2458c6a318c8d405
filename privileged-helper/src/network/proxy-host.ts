/**
 * The auditing proxies run in one worker thread of the helper, not on its main event loop: a sandbox
 * downloading at full speed then neither queues the helper's control plane (sandbox starts, RPCs)
 * behind its body chunks nor pays for garbage collection of the helper's much larger heap (measured:
 * in the main thread the proxy spent a third of its busy time in GC and kept ~330 MB/s; see
 * docs/network.md). A bug in the proxy's handling of a sandbox's bytes ends the worker, not the helper:
 * the host starts a new worker and starts every live proxy in it again.
 *
 * Contract: `ToWorker` / `FromWorker` below, both ends in this repository (the worker is
 * proxy-worker.ts); every proxy is named by an id of the host's.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { NetRange } from './addressing.js';
import type { AuditEvent, AuditSink } from './audit.js';
import type { DomainPolicy } from './domains.js';
import type { Pin } from './proxy.js';

/** what one sandbox's proxy needs: plain data (it crosses to the worker by structured clone) */
export interface ProxySpec {
  sandbox: string;
  gateway: string;
  policy: DomainPolicy;
  pins: Array<[string, Pin]>;
  range: NetRange;
}

export type ToWorker = { op: 'start'; id: number; spec: ProxySpec } | { op: 'close'; id: number };
export type FromWorker = { kind: 'reply'; id: number; error: string | null } | { kind: 'audit'; event: AuditEvent };

/** the part of a worker_threads Worker the host uses (a fake in unit tests) */
export interface WorkerLike {
  postMessage(m: ToWorker): void;
  on(event: 'message', fn: (m: FromWorker) => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
  on(event: 'exit', fn: (code: number) => void): unknown;
  terminate(): Promise<number>;
  unref(): void;
}

const RESTART_SPACING_MS = 1000;

export interface ProxyHandle {
  close(): Promise<void>;
}

/** the compiled worker beside this module (dist/…/proxy-worker.js; .ts when run from sources by tsx) */
function spawnProxyWorker(): WorkerLike {
  const self = fileURLToPath(import.meta.url);
  return new Worker(path.join(path.dirname(self), `proxy-worker${path.extname(self)}`), { name: 'ai-sandbox-proxy' }) as WorkerLike;
}

export class ProxyHost {
  private worker: WorkerLike | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  /** the proxies that should be running, to start again in a new worker */
  private readonly live = new Map<number, ProxySpec>();
  private closed = false;
  private lastExit = 0;

  constructor(
    private readonly audit: AuditSink,
    private readonly spawn: () => WorkerLike = spawnProxyWorker,
    private readonly warn: (msg: string) => void = (m) => process.stderr.write(`ai-sandbox helper: ${m}\n`),
  ) {}

  /** Start the worker ahead of the first proxy (a worker takes tens of milliseconds to boot). */
  warm(): void {
    if (!this.closed) this.ensure();
  }

  async start(spec: ProxySpec): Promise<ProxyHandle> {
    if (this.closed) throw new Error('the proxy host is shut down');
    const id = this.nextId++;
    this.live.set(id, spec);
    try {
      await this.call({ op: 'start', id, spec });
    } catch (err) {
      this.live.delete(id);
      throw err;
    }
    return { close: () => this.stop(id) };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.live.clear();
    const w = this.worker;
    this.worker = null;
    this.failPending(new Error('the proxy host is shut down'));
    await w?.terminate();
  }

  private async stop(id: number): Promise<void> {
    if (!this.live.delete(id) || !this.worker) return;
    // a worker that dies meanwhile took the proxy with it: nothing is left to close
    await this.call({ op: 'close', id }).catch(() => undefined);
  }

  private call(m: ToWorker): Promise<void> {
    const w = this.ensure();
    return new Promise<void>((resolve, reject) => {
      this.pending.set(m.id, { resolve, reject });
      w.postMessage(m);
    });
  }

  private ensure(): WorkerLike {
    if (this.worker) return this.worker;
    const w = this.spawn();
    this.worker = w;
    w.unref();
    w.on('message', (m: FromWorker) => {
      if (m.kind === 'audit') {
        this.audit.append(m.event);
        return;
      }
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error === null) p.resolve();
      else p.reject(new Error(m.error));
    });
    let why = '';
    w.on('error', (err: Error) => (why = err.stack ?? err.message));
    w.on('exit', (code: number) => {
      if (this.worker !== w) return; // terminated by close()
      this.worker = null;
      this.failPending(new Error(`the proxy worker ended (exit ${code})`));
      if (this.closed) return;
      // a worker that keeps dying is started again at most once a second, not in a tight loop
      const now = Date.now();
      const delay = now - this.lastExit < RESTART_SPACING_MS ? RESTART_SPACING_MS : 0;
      this.lastExit = now;
      this.warn(`the proxy worker ended (exit ${code})${why ? `: ${why}` : ''}; the live proxies start again in a new one`);
      setTimeout(() => this.restartLive(), delay).unref();
    });
    return w;
  }

  private restartLive(): void {
    if (this.closed || this.worker) return;
    for (const [id, spec] of this.live) {
      this.call({ op: 'start', id, spec }).catch((err: Error) => this.warn(`the proxy of ${spec.sandbox} did not start again: ${err.message}`));
    }
  }

  private failPending(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }
}
