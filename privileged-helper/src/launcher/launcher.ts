/**
 * Client of the native launcher process (docs/launcher-protocol.md). The helper owns exactly one; it is
 * the only thing that clones sandboxes, so its death is fatal to the helper (and, through
 * PDEATHSIG, to the sandboxes), and the next helper's reconcile removes what is left.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { AppError } from '../errors/app-error.js';
import { encodeFrame, encodeTlv, Ev, Flag, LauncherFrameDecoder, MarkKind, Req, Tag, TlvBody, u64, type TlvField } from './codec.js';

export interface SpawnPlan {
  argv: string[];
  env: string[];
  lowerDirs: string[];
  sandboxDir: string;
  tmpfsBytes: number;
  hostname: string;
  workdir: string;
  uid: number;
  gid: number;
  mounts: Array<{ source: string; target: string; readOnly: boolean }>;
  cgroup2Path: string;
  v1ProcsFiles: readonly string[];
  allowListen: boolean;
  tty?: { rows: number; cols: number } | undefined;
  netnsPath?: string | undefined;
  /** prepared slot only: set up, then wait for `release(id)` before the command starts */
  hold?: boolean | undefined;
  /** approvals: the supervisor's socket and the syscalls it decides (docs/launcher-protocol.md) */
  notify?: { socket: string; nrs: number[] } | undefined;
}

export interface ExecPlan {
  target: number;
  argv: string[];
  env: string[];
  workdir: string;
  uid: number;
  gid: number;
  tty?: { rows: number; cols: number } | undefined;
}

export interface SessionHandlers {
  /** called synchronously when the launcher reports the execve, before any output or exit of that id */
  onSpawned(spawned: Spawned): void;
  onOutput(fd: 1 | 2, data: Buffer): void;
  /** a sandbox's command ended (its init is about to exit); absent when the init was killed */
  onStatus?(status: { status: number; exitNs: bigint }): void;
  /** the process (a sandbox's init, or an exec'd one) is reaped: nothing of it runs any more */
  onExit(exit: { status: number; initStatus: number; exitNs: bigint }): void;
}

export interface Spawned {
  pid: number;
  recvNs: bigint;
  execNs: bigint;
  /** `pipe:[inode]` names of the sandbox's stdio and status pipes (absent with a TTY) */
  pipes: { stdin: string; stdout: string; stderr: string; status: string } | null;
}

/** Restore a CRIU image set as a new sandbox (docs/launcher-protocol.md, RESTORE). */
export interface RestorePlan {
  sandboxDir: string;
  tmpfsBytes: number;
  cgroup2Path: string;
  v1ProcsFiles: readonly string[];
  lowerDirs: string[];
  imagesDir: string;
  upperArchive: string;
  criu: string;
  /** role=pipe:[inode] of the dumped tree's pipes, e.g. stdout=pipe:[123] */
  inherit: string[];
  /** criu --external arguments for restore */
  external: string[];
  hostname: string;
  log: string;
  /** the image's network namespace was dumped as external under this key: restore into a fresh one */
  netKey?: string | undefined;
}

/** A checkpoint of a running sandbox (launcher DUMP): criu dump, then an archive of its upper layer. */
export interface DumpPlan {
  criu: string;
  imagesDir: string;
  log: string;
  /** where the tar of the sandbox's upper layer goes */
  upperArchive: string;
  /** criu dump --external mnt[/PATH]:KEY arguments */
  external: string[];
  /** dump the sandbox's network namespace as external under this key */
  netKey?: string | undefined;
}

interface Session extends SessionHandlers {
  pending?: { resolve(s: Spawned): void; reject(e: AppError): void };
  /** a warm slot: its init waits for a SPAWN with the same id */
  prepared?: boolean;
}

/** What a warm slot is made of ahead of time: its tmpfs, namespaces and cgroups. */
export interface PreparePlan {
  sandboxDir: string;
  tmpfsBytes: number;
  cgroup2Path: string;
  v1ProcsFiles: readonly string[];
  /** the overlay's lower layers, mounted (with /proc and /dev) before the plan; a SPAWN must match */
  lowerDirs?: readonly string[] | undefined;
}

const errnoNames = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, num]) => [num, name] as [number, string]),
);
export function errnoName(n: number): string {
  return errnoNames.get(n) ?? `errno ${n}`;
}

export class Launcher {
  private readonly sessions = new Map<number, Session>();
  private readonly acks = new Map<number, { resolve(): void; reject(e: AppError): void }>();
  private readonly dumps = new Map<number, { resolve(t: { criuMs: number; tarMs: number }): void; reject(e: AppError): void }>();
  private nextControlId = 0x8000_0000;
  private exited = false;
  onFatal: (err: AppError) => void = () => {};

  private constructor(private readonly proc: ChildProcessByStdio<Writable, Readable, Readable>) {
    const decoder = new LauncherFrameDecoder();
    proc.stdout.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) this.dispatch(frame.type, frame.id, frame.body);
    });
    let stderrTail = '';
    proc.stderr.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      stderrTail = (stderrTail + text).slice(-4000);
      if (process.env.AI_SANDBOX_DEBUG) process.stderr.write(text);
    });
    proc.stdin.on('error', () => {});
    proc.on('exit', (code, signal) => {
      this.exited = true;
      const err = new AppError('LAUNCHER_FAILED', `the sandbox launcher exited (${signal ?? `code ${code}`}): ${stderrTail.trim().split('\n').pop() ?? ''}`);
      for (const s of this.sessions.values()) s.pending?.reject(err);
      for (const a of this.acks.values()) a.reject(err);
      for (const d of this.dumps.values()) d.reject(err);
      this.sessions.clear();
      this.acks.clear();
      this.dumps.clear();
      if (code !== 0) this.onFatal(err);
    });
  }

  static start(binary: string, stateDir: string): Launcher {
    // Its own session: a Ctrl-C at the helper's terminal is the helper's to handle (an orderly stop),
    // not a signal that kills the launcher under it. It still ends with the helper (EOF on stdin).
    const proc = spawn(binary, ['--state-dir', stateDir], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    return new Launcher(proc);
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  spawn(id: number, plan: SpawnPlan, handlers: SessionHandlers): Promise<Spawned> {
    const fields: TlvField[] = [
      ...plan.argv.map((a): TlvField => [Tag.ARG, a]),
      ...plan.env.map((e): TlvField => [Tag.ENV, e]),
      ...plan.lowerDirs.map((d): TlvField => [Tag.LOWER, d]),
      [Tag.SANDBOX_DIR, plan.sandboxDir],
      [Tag.TMPFS_BYTES, BigInt(plan.tmpfsBytes)],
      [Tag.HOSTNAME, plan.hostname],
      [Tag.WORKDIR, plan.workdir],
      [Tag.UID, BigInt(plan.uid)],
      [Tag.GID, BigInt(plan.gid)],
      ...plan.mounts.map((m): TlvField => [Tag.MOUNT, `${m.source}\0${m.target}\0${m.readOnly ? 'ro' : 'rw'}`]),
      [Tag.CGROUP2, plan.cgroup2Path],
      ...plan.v1ProcsFiles.map((f): TlvField => [Tag.CGROUP_PROCS, f]),
      [Tag.FLAGS, (plan.allowListen ? Flag.ALLOW_LISTEN : 0n) | (plan.tty ? Flag.TTY : 0n) | (plan.hold ? Flag.HOLD : 0n)],
    ];
    if (plan.tty) fields.push([Tag.ROWS, BigInt(plan.tty.rows)], [Tag.COLS, BigInt(plan.tty.cols)]);
    if (plan.netnsPath) fields.push([Tag.NETNS, plan.netnsPath]);
    if (plan.notify) {
      const nrs = Buffer.alloc(plan.notify.nrs.length * 4);
      plan.notify.nrs.forEach((n, i) => nrs.writeUInt32LE(n, i * 4));
      fields.push([Tag.NOTIFY_SOCKET, plan.notify.socket], [Tag.NOTIFY_NRS, nrs]);
    }
    return this.startSession(Req.SPAWN, id, fields, handlers);
  }

  restore(id: number, plan: RestorePlan, handlers: SessionHandlers): Promise<Spawned> {
    const fields: TlvField[] = [
      [Tag.SANDBOX_DIR, plan.sandboxDir],
      [Tag.TMPFS_BYTES, BigInt(plan.tmpfsBytes)],
      [Tag.CGROUP2, plan.cgroup2Path],
      ...plan.v1ProcsFiles.map((f): TlvField => [Tag.CGROUP_PROCS, f]),
      ...plan.lowerDirs.map((d): TlvField => [Tag.LOWER, d]),
      [Tag.IMAGES_DIR, plan.imagesDir],
      [Tag.UPPER_ARCHIVE, plan.upperArchive],
      [Tag.CRIU, plan.criu],
      ...plan.inherit.map((i): TlvField => [Tag.INHERIT, i]),
      ...plan.external.map((e): TlvField => [Tag.EXTERNAL, e]),
      [Tag.HOSTNAME, plan.hostname],
      [Tag.LOG, plan.log],
    ];
    if (plan.netKey) fields.push([Tag.NET_KEY, plan.netKey]);
    return this.startSession(Req.RESTORE, id, fields, handlers);
  }

  /**
   * Checkpoint the running sandbox `target` (see native/launcher/dump.c): `criu dump --leave-stopped`
   * of its init, then a tar of its upper layer, in a child of the launcher, which forks far cheaper
   * than the helper. The tree is left stopped either way: the caller continues it or kills it.
   */
  dump(target: number, plan: DumpPlan): Promise<{ criuMs: number; tarMs: number }> {
    const id = this.nextControlId++;
    const fields: TlvField[] = [
      [Tag.TARGET, BigInt(target)],
      [Tag.CRIU, plan.criu],
      [Tag.IMAGES_DIR, plan.imagesDir],
      [Tag.LOG, plan.log],
      [Tag.UPPER_ARCHIVE, plan.upperArchive],
      ...plan.external.map((e): TlvField => [Tag.EXTERNAL, e]),
    ];
    if (plan.netKey) fields.push([Tag.NET_KEY, plan.netKey]);
    return new Promise((resolve, reject) => {
      this.dumps.set(id, { resolve, reject });
      this.send(Req.DUMP, id, encodeTlv(fields));
    });
  }

  /**
   * Make a warm slot: the launcher mounts its tmpfs and clones an init into fresh namespaces and the
   * given cgroups now, off the request path (on hybrid hosts joining v1 cgroups can cost an RCU grace
   * period, several ms). A later `spawn` with the same id hands it the rest of the plan.
   * `onGone` runs if the slot's init dies before that.
   */
  prepare(id: number, plan: PreparePlan, onGone: () => void): Promise<void> {
    if (this.sessions.has(id)) throw new AppError('INTERNAL', `launcher id ${id} is in use`);
    this.sessions.set(id, { prepared: true, onSpawned: () => {}, onOutput: () => {}, onExit: onGone });
    return new Promise<void>((resolve, reject) => {
      this.acks.set(id, { resolve, reject });
      this.send(
        Req.PREPARE,
        id,
        encodeTlv([
          [Tag.SANDBOX_DIR, plan.sandboxDir],
          [Tag.TMPFS_BYTES, BigInt(plan.tmpfsBytes)],
          [Tag.CGROUP2, plan.cgroup2Path],
          ...plan.v1ProcsFiles.map((f): TlvField => [Tag.CGROUP_PROCS, f]),
          ...(plan.lowerDirs ?? []).map((d): TlvField => [Tag.LOWER, d]),
        ]),
      );
    }).catch((err: unknown) => {
      this.sessions.delete(id);
      throw err;
    });
  }

  exec(id: number, plan: ExecPlan, handlers: SessionHandlers): Promise<Spawned> {
    const fields: TlvField[] = [
      [Tag.TARGET, BigInt(plan.target)],
      ...plan.argv.map((a): TlvField => [Tag.ARG, a]),
      ...plan.env.map((e): TlvField => [Tag.ENV, e]),
      [Tag.WORKDIR, plan.workdir],
      [Tag.UID, BigInt(plan.uid)],
      [Tag.GID, BigInt(plan.gid)],
      [Tag.FLAGS, plan.tty ? Flag.TTY : 0n],
    ];
    if (plan.tty) fields.push([Tag.ROWS, BigInt(plan.tty.rows)], [Tag.COLS, BigInt(plan.tty.cols)]);
    return this.startSession(Req.EXEC, id, fields, handlers);
  }

  write(id: number, data: Buffer): void {
    if (data.length > 0) this.send(Req.STDIN, id, data);
  }

  closeStdin(id: number): void {
    this.send(Req.STDIN, id, Buffer.alloc(0));
  }

  /** A held SPAWN's command may start (see SpawnPlan.hold), or, with cancel, must not: SPAWN_FAILED follows. */
  release(id: number, cancel = false): void {
    this.send(Req.RELEASE, id, cancel ? Buffer.from([1]) : Buffer.alloc(0));
  }

  kill(id: number, signal: number): void {
    this.send(Req.KILL, id, u64(signal));
  }

  resize(id: number, rows: number, cols: number): void {
    this.send(Req.RESIZE, id, Buffer.concat([u64(rows), u64(cols)]));
  }

  cleanup(sandboxDir: string): Promise<void> {
    return this.control(Req.CLEANUP, [[Tag.SANDBOX_DIR, sandboxDir]]);
  }

  mark(path: string, kind: 'whiteout' | 'opaque'): Promise<void> {
    return this.control(Req.MARK, [
      [Tag.PATH, path],
      [Tag.KIND, kind === 'whiteout' ? MarkKind.WHITEOUT : MarkKind.OPAQUE],
    ]);
  }

  /** Close the control pipe: the launcher kills every sandbox, unmounts, and exits. */
  stop(): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      this.proc.once('exit', () => resolve());
      this.proc.stdin.end();
    });
  }

  private startSession(type: number, id: number, fields: TlvField[], handlers: SessionHandlers): Promise<Spawned> {
    const existing = this.sessions.get(id);
    if (existing && !(existing.prepared && type === Req.SPAWN)) throw new AppError('INTERNAL', `launcher id ${id} is in use`);
    return new Promise((resolve, reject) => {
      this.sessions.set(id, { ...handlers, pending: { resolve, reject } });
      this.send(type, id, encodeTlv(fields));
    });
  }

  private control(type: number, fields: TlvField[]): Promise<void> {
    const id = this.nextControlId++;
    return new Promise((resolve, reject) => {
      this.acks.set(id, { resolve, reject });
      this.send(type, id, encodeTlv(fields));
    });
  }

  private send(type: number, id: number, body: Buffer): void {
    if (this.exited) throw new AppError('LAUNCHER_FAILED', 'the sandbox launcher is not running');
    this.proc.stdin.write(encodeFrame(type, id, body));
  }

  private dispatch(type: number, id: number, body: Buffer): void {
    if (type === Ev.ACK) {
      const ack = this.acks.get(id);
      this.acks.delete(id);
      const tlv = new TlvBody(body);
      const errno = Number(tlv.num(Tag.ERRNO) ?? 0n);
      if (errno === 0) ack?.resolve();
      else ack?.reject(new AppError('LAUNCHER_FAILED', `${tlv.str(Tag.MESSAGE) ?? 'launcher request failed'} (${errnoName(errno)})`, { details: { errno } }));
      return;
    }
    if (type === Ev.DUMPED) {
      const dump = this.dumps.get(id);
      this.dumps.delete(id);
      const tlv = new TlvBody(body);
      const stage = tlv.str(Tag.STAGE) ?? '';
      const ms = (t: number) => Number(tlv.num(t) ?? 0n) / 1e6;
      if (!stage) dump?.resolve({ criuMs: ms(Tag.CRIU_NS), tarMs: ms(Tag.TAR_NS) });
      else {
        const errno = Number(tlv.num(Tag.ERRNO) ?? 0n);
        dump?.reject(new AppError('SNAPSHOT_FAILED', `${stage} failed: ${tlv.str(Tag.MESSAGE) ?? errnoName(errno)}`, { details: { stage, errno } }));
      }
      return;
    }
    const session = this.sessions.get(id);
    if (!session) return;
    switch (type) {
      case Ev.SPAWNED: {
        const tlv = new TlvBody(body);
        const pipe = (t: number) => tlv.str(t) ?? '';
        const spawned: Spawned = {
          pid: Number(tlv.num(Tag.PID) ?? 0n),
          recvNs: tlv.num(Tag.RECV_NS) ?? 0n,
          execNs: tlv.num(Tag.EXEC_NS) ?? 0n,
          pipes: tlv.str(Tag.PIPE_STATUS) ? { stdin: pipe(Tag.PIPE_STDIN), stdout: pipe(Tag.PIPE_STDOUT), stderr: pipe(Tag.PIPE_STDERR), status: pipe(Tag.PIPE_STATUS) } : null,
        };
        session.onSpawned(spawned);
        session.pending?.resolve(spawned);
        delete session.pending;
        return;
      }
      case Ev.SPAWN_FAILED: {
        const tlv = new TlvBody(body);
        const errno = Number(tlv.num(Tag.ERRNO) ?? 0n);
        const stage = tlv.str(Tag.STAGE) ?? 'setup';
        const msg = tlv.str(Tag.MESSAGE) ?? '';
        this.sessions.delete(id);
        session.pending?.reject(
          new AppError('FAILED_TO_START', `${stage} failed: ${msg || errnoName(errno)}`, {
            details: { stage, errno, errnoName: errnoName(errno) },
          }),
        );
        return;
      }
      case Ev.OUTPUT: {
        const fd = body.readUInt8(0) === 2 ? 2 : 1;
        session.onOutput(fd, body.subarray(1));
        return;
      }
      case Ev.STATUS: {
        const tlv = new TlvBody(body);
        session.onStatus?.({ status: Number(tlv.num(Tag.STATUS) ?? 0n), exitNs: tlv.num(Tag.EXIT_NS) ?? process.hrtime.bigint() });
        return;
      }
      case Ev.EXIT: {
        const tlv = new TlvBody(body);
        this.sessions.delete(id);
        session.onExit({
          status: Number(tlv.num(Tag.STATUS) ?? 0n),
          initStatus: Number(tlv.num(Tag.INIT_STATUS) ?? 0n),
          exitNs: tlv.num(Tag.EXIT_NS) ?? process.hrtime.bigint(),
        });
        return;
      }
      default:
        return;
    }
  }
}

/** Decode a wait status the way waitpid's macros do. */
export function decodeWaitStatus(status: number): { exitCode: number | null; signal: number | null } {
  const sig = status & 0x7f;
  if (sig === 0) return { exitCode: (status >> 8) & 0xff, signal: null };
  if (sig !== 0x7f) return { exitCode: null, signal: sig };
  return { exitCode: null, signal: null };
}
