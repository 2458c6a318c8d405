/**
 * Approvals: sandboxes whose policy marks syscalls `ask` stop on those calls until a person allows or
 * denies them (once, or always for that syscall in that sandbox); a timeout denies. The native
 * supervisor (native/unotify, docs/approvals-protocol.md) holds the seccomp notification fds; this
 * service starts it, tells it each sandbox's timeout and rules, turns its requests into ApprovalInfo
 * for clients, and passes their decisions back.
 *
 * Threat model: clients (ai-sandbox group) can list and decide approvals of any sandbox, like they can
 * stop any sandbox. Which syscalls may be `ask` is a closed list: calls the command itself needs after
 * the filter is installed (sendmsg, read, close, seccomp, execve, exit...) would deadlock it. What a
 * request shows (a sockaddr) is read from the process's memory once: another thread can change it
 * afterwards (TOCTOU), so an approval informs a decision; the kernel-enforced policy (seccomp allowlist,
 * Landlock, network namespace) is what holds regardless of the answer.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { AppError } from '../errors/app-error.js';
import type { ApprovalInfo, Params } from '../protocol/schema.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import type { ConnectionStream } from '../server/stream.js';
import { decodeAddr } from '../trace/records.js';
import type { SandboxObserver } from '../trace/service.js';
import { syscallName, syscallNumber } from '../trace/syscalls.js';
import { TracerFrameDecoder } from '../trace/tracer.js';

/** Syscalls a policy may mark `ask`: none of them is made by the command between the filter and its execve. */
export const ASKABLE = [
  'connect', 'bind', 'listen', 'accept', 'accept4', 'socket', 'sendto', 'open', 'openat', 'openat2', 'creat',
  'unlink', 'unlinkat', 'rename', 'renameat', 'renameat2', 'mkdir', 'mkdirat', 'rmdir', 'truncate', 'ftruncate',
  'chmod', 'fchmod', 'fchmodat', 'chown', 'fchown', 'fchownat', 'link', 'linkat', 'symlink', 'symlinkat',
  'kill', 'tkill', 'tgkill', 'ptrace', 'clone', 'clone3', 'fork', 'vfork', 'mount', 'setsockopt',
] as const;

const REQ_DECIDE = 1;
const REQ_POLICY = 2;
const REQ_FORGET = 3;
const EV_ACK = 101;
const EV_REQUEST = 103;
const EV_RESOLVED = 104;
const WHY = ['', 'user', 'timeout', 'rule', 'gone'] as const;
const KEEP_SETTLED = 200;

interface Entry {
  info: ApprovalInfo;
  notifId: bigint;
  requestNs: bigint;
}

export class ApprovalService {
  private proc: ChildProcessByStdio<Writable, Readable, Readable> | null = null;
  private readonly decoder = new TracerFrameDecoder();
  private readonly pending = new Map<number, { resolve(err: number): void }>();
  private readonly byLauncherId = new Map<number, Sandbox>();
  private readonly entries = new Map<string, Entry>();
  private readonly byNotif = new Map<bigint, Entry>();
  private readonly watchers = new Set<ConnectionStream>();
  private readonly settled: string[] = [];
  private nextReq = 1;
  private nextId = 1;
  private log = '';
  /** called when an approval is denied (by a person, a rule or the timeout) */
  readonly onDenied: Array<(info: ApprovalInfo) => void> = [];

  constructor(
    private readonly binary: string,
    /** root-only directory for the supervisor's socket (the helper's instance dir) */
    private readonly socketDir: string,
  ) {}

  get socketPath(): string {
    return path.join(this.socketDir, 'unotify.sock');
  }

  readonly observer: SandboxObserver = {
    beforeStart: (sb) => this.beforeStart(sb),
    stopped: (sb) => this.stopped(sb),
    notify: (sb) => (sb.spec.approvals && this.byLauncherId.get(sb.launcherId) === sb ? { socket: this.socketPath, nrs: this.nrsOf(sb) } : undefined),
  };

  private nrsOf(sb: Sandbox): number[] {
    return (sb.spec.approvals?.ask ?? []).map((n) => syscallNumber(n)!);
  }

  private async ensure(): Promise<void> {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) return;
    if (!fs.existsSync(this.binary)) throw new AppError('UNSUPPORTED', `approvals need the supervisor (${this.binary}): run \`npm run setup\``);
    // its own session (a Ctrl-C at the helper's terminal is the helper's to handle); ends on EOF on stdin
    const proc = spawn(this.binary, ['--socket', this.socketPath], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.proc = proc;
    proc.stdin.on('error', () => {});
    proc.stderr.on('data', (d: Buffer) => {
      this.log = (this.log + d.toString()).slice(-2000);
      if (process.env.AI_SANDBOX_DEBUG) process.stderr.write(d);
    });
    proc.stdout.on('data', (c: Buffer) => this.onData(c));
    proc.on('exit', () => {
      for (const p of this.pending.values()) p.resolve(-1);
      this.pending.clear();
    });
    // ready once its socket exists (it removes a stale one first)
    const deadline = Date.now() + 5000;
    while (!this.log.includes('ready on')) {
      if (proc.exitCode !== null || Date.now() > deadline) throw new AppError('UNSUPPORTED', `the approvals supervisor did not start: ${this.log.trim()}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  private request(type: number, body: Buffer): Promise<number> {
    const id = this.nextReq++;
    const h = Buffer.alloc(9);
    h.writeUInt32LE(body.length + 5, 0);
    h.writeUInt8(type, 4);
    h.writeUInt32LE(id, 5);
    return new Promise((resolve) => {
      this.pending.set(id, { resolve });
      this.proc!.stdin.write(Buffer.concat([h, body]));
    });
  }

  private async beforeStart(sb: Sandbox): Promise<void> {
    const policy = sb.spec.approvals;
    if (!policy) return;
    const bad = policy.ask.filter((n) => !(ASKABLE as readonly string[]).includes(n));
    if (bad.length) {
      throw new AppError('INVALID_ARGUMENT', `approvals: ${bad.join(', ')} cannot be \`ask\` (the sandbox needs them before its program starts, or they are not syscalls); askable: ${ASKABLE.join(', ')}`);
    }
    await this.ensure();
    const body = Buffer.alloc(8 + 512);
    body.writeUInt32LE(sb.launcherId, 0);
    body.writeUInt32LE(policy.timeoutMs, 4);
    const err = await this.request(REQ_POLICY, body);
    if (err !== 0) throw new AppError('RESOURCE_EXHAUSTED', `the approvals supervisor refused the sandbox (errno ${err})`);
    this.byLauncherId.set(sb.launcherId, sb);
  }

  private async stopped(sb: Sandbox): Promise<void> {
    if (this.byLauncherId.get(sb.launcherId) !== sb) return;
    this.byLauncherId.delete(sb.launcherId);
    const body = Buffer.alloc(4);
    body.writeUInt32LE(sb.launcherId, 0);
    await this.request(REQ_FORGET, body);
  }

  list(): ApprovalInfo[] {
    return [...this.entries.values()].map((e) => e.info);
  }

  watch(stream: ConnectionStream): void {
    for (const e of this.entries.values()) if (e.info.status === 'pending') stream.event({ type: 'approval', approval: e.info });
    this.watchers.add(stream);
  }

  unwatch(stream: ConnectionStream): void {
    this.watchers.delete(stream);
  }

  async decide(p: Params<'approvals.decide'>): Promise<ApprovalInfo> {
    const e = this.entries.get(p.id);
    if (!e) throw new AppError('NOT_FOUND', `no approval ${p.id}: \`ai-sandbox approvals\` lists them`);
    if (e.info.status !== 'pending') throw new AppError('INVALID_STATE', `approval ${p.id} is already ${e.info.status}`);
    const body = Buffer.alloc(16);
    body.writeBigUInt64LE(e.notifId, 0);
    body.writeUInt32LE(p.allow ? 1 : 0, 8);
    body.writeUInt32LE(p.always ? 1 : 0, 12);
    const err = await this.request(REQ_DECIDE, body);
    if (err !== 0 && e.info.status === 'pending') throw new AppError('INVALID_STATE', `approval ${p.id} could not be decided: it timed out or its process is gone`);
    return e.info;
  }

  private publish(info: ApprovalInfo): void {
    for (const w of this.watchers) {
      if (w.done) this.watchers.delete(w);
      else w.event({ type: 'approval', approval: info });
    }
  }

  private onData(chunk: Buffer): void {
    for (const f of this.decoder.push(chunk)) {
      const b = f.body;
      if (f.type === EV_ACK) {
        this.pending.get(f.id)?.resolve(b.readInt32LE(0));
        this.pending.delete(f.id);
      } else if (f.type === EV_REQUEST) {
        const notifId = b.readBigUInt64LE(0);
        const sb = this.byLauncherId.get(b.readUInt32LE(8));
        const nr = b.readUInt32LE(16);
        const alen = b.readUInt32LE(20);
        const args = Array.from({ length: 6 }, (_, i) => `0x${b.readBigUInt64LE(24 + i * 8).toString(16)}`);
        const info: ApprovalInfo = {
          id: `a${this.nextId++}`,
          sandbox: sb?.name ?? `launcher-id-${b.readUInt32LE(8)}`,
          pid: b.readUInt32LE(12),
          syscall: syscallName(nr),
          nr,
          args,
          addr: alen > 0 ? decodeAddr(b.subarray(72, 72 + alen)) : undefined,
          requestedAt: new Date().toISOString(),
          status: 'pending',
        };
        const e: Entry = { info, notifId, requestNs: b.readBigUInt64LE(104) };
        this.entries.set(info.id, e);
        this.byNotif.set(notifId, e);
        this.publish(info);
      } else if (f.type === EV_RESOLVED) {
        const notifId = b.readBigUInt64LE(0);
        const err = b.readInt32LE(12);
        const why = WHY[b.readUInt32LE(16)] ?? 'user';
        const e = this.byNotif.get(notifId);
        if (!e) continue; // settled by a rule without asking anyone: nothing was shown
        this.byNotif.delete(notifId);
        e.info.status = why === 'gone' ? 'gone' : why === 'timeout' ? 'timed-out' : err === 0 ? 'allowed' : 'denied';
        e.info.by = why === '' ? undefined : why;
        e.info.roundTripUs = Number(b.readBigUInt64LE(24) - e.requestNs) / 1000;
        this.publish(e.info);
        if (e.info.status === 'denied' || e.info.status === 'timed-out') for (const l of this.onDenied) l(e.info);
        this.settled.push(e.info.id);
        while (this.settled.length > KEEP_SETTLED) this.entries.delete(this.settled.shift()!);
      }
    }
  }

  async shutdown(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => p.kill('SIGKILL'), 2000);
      p.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      p.stdin.end();
    });
  }
}

export function defaultUnotifyBinary(launcherBinary: string): string {
  return path.join(path.dirname(launcherBinary), 'ai-sandbox-unotify');
}
