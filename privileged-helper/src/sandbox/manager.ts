/**
 * The sandbox manager: creates sandboxes through the launcher, keeps the table of live and finished ones,
 * turns a process's end into an exit report (exited, signaled, oom-killed, timed-out, failed-to-start),
 * and tears everything down (cgroups, tmpfs, records) so nothing outlives a sandbox.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import type { CgroupDriver, CgroupLimits, CgroupStats, ExitStats, SandboxCgroup } from '../cgroup/types.js';
import { AppError } from '../errors/app-error.js';
import { decodeWaitStatus, type Launcher, type SessionHandlers, type Spawned } from '../launcher/launcher.js';
import { exitReport, nsToMs, signalName } from './exit-report.js';
import type { ExitReport, Params, SandboxInfo, SandboxSpec, SandboxStats } from '../protocol/schema.js';
import { requireStatus } from './lifecycle.js';
import { OutputLog } from './output-log.js';
import { checkMounts, checkRootfs, DEFAULTS, resolveIdentity } from './policy.js';
import { Sandbox, type OutputSink } from './sandbox.js';
import { WarmPool, type WarmSlot } from './warm-pool.js';
import { wantsNetwork, type NetworkService } from '../network/network.js';
import type { SandboxObserver } from '../trace/service.js';

export interface LaunchOptions {
  autoRemove: boolean;
  sink?: OutputSink | undefined;
  /** the snapshot a restored sandbox continues from: the parent of its next checkpoint */
  restoredFrom?: string | undefined;
  /** when the request arrived (default: now) */
  requestNs?: bigint | undefined;
  /**
   * Binds the helper itself adds (a workflow step's output and input directories under the helper's
   * state): trusted, so not subject to the client mount policy that keeps helper state out of reach.
   */
  internalMounts?: Array<{ source: string; target: string; readOnly: boolean }> | undefined;
}

export interface ManagerOptions {
  /** warm slots kept ready (0: every start is cold) */
  warmSlots: number;
  /** networked sandboxes (null: only loopback sandboxes can be made) */
  network?: NetworkService | null;
}

export interface ManagerDirs {
  /** launcher state dir: sb/ and base/ tmpfs mounts live here */
  instance: string;
  /** the default root's skeleton layer */
  skeleton: string;
  logs: string;
}

interface ExecSession {
  id: string;
  launcherId: number;
  sandbox: Sandbox;
  sink: OutputSink | null;
  requestNs: bigint;
}


export class SandboxManager {
  private readonly sandboxes = new Map<string, Sandbox>();
  private readonly execs = new Map<string, ExecSession>();
  private nextLauncherId = 1;
  private nextExec = 1;
  private readonly warm: WarmPool;
  private readonly network: NetworkService | null;
  /** called around each sandbox's life (tracing registers the cgroup before the program starts) */
  readonly observers: SandboxObserver[] = [];

  constructor(
    private readonly launcher: Launcher,
    private readonly cgroups: CgroupDriver,
    private readonly dirs: ManagerDirs,
    opts: ManagerOptions = { warmSlots: 0 },
  ) {
    fs.mkdirSync(dirs.logs, { recursive: true, mode: 0o700 });
    this.network = opts.network ?? null;
    this.warm = new WarmPool(
      launcher,
      cgroups,
      path.join(dirs.instance, 'sb'),
      opts.warmSlots,
      { limits: { memoryBytes: DEFAULTS.memoryBytes, pidsMax: DEFAULTS.pidsMax }, tmpfsBytes: DEFAULTS.tmpfsBytes, lowerDirs: this.lowerDirs({}) },
      () => this.nextLauncherId++,
    );
    this.warm.fill();
  }

  get count(): number {
    return this.sandboxes.size;
  }

  /** Start a sandbox; resolves once its program has exec'd. Output goes to `sink` from the first byte. */
  async create(spec: SandboxSpec, opts: LaunchOptions): Promise<{ sandbox: Sandbox; spawned: Spawned }> {
    checkRootfs(spec.rootfs);
    checkMounts(spec.mounts);
    const mounts = [...spec.mounts, ...(opts.internalMounts ?? [])];
    // Sandboxes in a resource pool, with approvals (their filter is installed by a cold SPAWN only) or
    // with their own rootfs (a slot's overlay is the default root's) start cold.
    const slot = spec.pool === undefined && spec.approvals === undefined && spec.rootfs === undefined ? this.warm.take() : undefined;
    return this.launch(spec, opts, slot, async (sb, cgroup) => {
      const net = await this.attachNetwork(sb);
      // From a warm slot the launcher builds the root while the network rules go in, and starts the
      // program only on release; a cold start waits for the rules first.
      const hold = !!net && !!slot;
      if (net && !hold) await net.applied;
      const id = resolveIdentity(net ? { ...spec, env: { ...net.env, ...spec.env } } : spec, sb.hostname);
      const spawning = this.launcher.spawn(
        sb.launcherId,
        {
          argv: spec.command,
          env: id.env,
          lowerDirs: this.lowerDirs(spec),
          sandboxDir: sb.sandboxDir,
          tmpfsBytes: spec.tmpfsBytes ?? DEFAULTS.tmpfsBytes,
          hostname: sb.hostname,
          workdir: id.workdir,
          uid: id.uid,
          gid: id.gid,
          mounts: net ? [...mounts, ...net.mounts] : mounts,
          cgroup2Path: cgroup.cgroup2Path,
          v1ProcsFiles: cgroup.v1ProcsFiles,
          allowListen: spec.allowListen,
          tty: spec.tty,
          netnsPath: net?.slot.nsPath,
          hold,
          notify: this.observers.map((o) => o.notify?.(sb)).find((n) => n !== undefined),
        },
        this.sessionHandlers(sb),
      );
      if (!hold) return spawning;
      net.applied.then(
        () => this.launcher.release(sb.launcherId),
        () => this.launcher.release(sb.launcherId, true),
      );
      try {
        return await spawning;
      } catch (err) {
        await net.applied; // the rules' failure is the one to report, not the cancelled start
        throw err;
      }
    }).catch((err: unknown) => {
      const e = AppError.from(err);
      if (e.details?.stage === 'execve' && e.details.errnoName === 'ENOENT') {
        throw new AppError('FAILED_TO_START', `${spec.command[0]}: command not found in the sandbox (PATH=${DEFAULTS.path})`, { details: e.details });
      }
      throw e;
    });
  }

  /** A slot, rules and proxy for a sandbox with network rules (null: loopback only). */
  private async attachNetwork(sb: Sandbox): Promise<NonNullable<Sandbox['network']> | null> {
    const policy = sb.spec.network;
    if (!wantsNetwork(policy)) return null;
    if (!this.network) throw new AppError('UNSUPPORTED', 'this helper has no sandbox networking: network rules need the daemon or an embedded helper with networking');
    sb.network = await this.network.attach(sb.name, policy);
    sb.networkInfo = sb.network.info;
    return sb.network;
  }

  private async detachNetwork(sb: Sandbox): Promise<void> {
    const a = sb.network;
    sb.network = null;
    if (a) await this.network?.detach(a);
  }

  /** The overlay lower layers of a spec: its rootfs, or the skeleton over the host. */
  lowerDirs(spec: Pick<SandboxSpec, 'rootfs'>): string[] {
    return spec.rootfs ? [spec.rootfs] : [this.dirs.skeleton, '/'];
  }

  /**
   * Register a sandbox, give it a cgroup (its own, or a warm slot's) and an output log, and start it
   * with `start` (a spawn, or a restore from a snapshot). A failure leaves nothing behind.
   */
  async launch(
    spec: SandboxSpec,
    opts: LaunchOptions,
    slot: WarmSlot | undefined,
    start: (sb: Sandbox, cgroup: SandboxCgroup) => Promise<Spawned>,
  ): Promise<{ sandbox: Sandbox; spawned: Spawned }> {
    const name = spec.name ?? `sb-${randomBytes(4).toString('hex')}`;
    if (this.sandboxes.has(name)) throw new AppError('ALREADY_EXISTS', `a sandbox named "${name}" already exists: choose another --name or remove it with \`ai-sandbox rm ${name}\``);
    // Host-side names (cgroup, sandbox directory) come from the launcher id, never from the user's name:
    // a sandbox named like a warm slot (w4) must not share its cgroup or directory.
    const launcherId = slot?.launcherId ?? this.nextLauncherId++;
    const hostName = slot?.name ?? `s${launcherId}`;
    const sandboxDir = slot?.sandboxDir ?? path.join(this.dirs.instance, 'sb', hostName);
    const sb = new Sandbox(name, launcherId, { ...spec, name }, sandboxDir, opts.autoRemove, opts.requestNs ?? process.hrtime.bigint());
    sb.restoredFrom = opts.restoredFrom ?? null;
    this.sandboxes.set(name, sb);
    if (opts.sink) sb.sinks.add(opts.sink);
    try {
      const limits = {
        memoryBytes: spec.limits.memoryBytes ?? DEFAULTS.memoryBytes,
        pidsMax: spec.limits.pidsMax ?? DEFAULTS.pidsMax,
        cpus: spec.limits.cpus,
        cpuWeight: spec.limits.cpuWeight,
      };
      if (slot) {
        sb.cgroup = slot.cgroup;
        slot.cgroup.setLimits(limits);
      } else {
        sb.cgroup = await this.cgroups.createAsync(hostName, limits, spec.pool);
        fs.mkdirSync(sb.sandboxDir, { mode: 0o700 });
      }
      sb.log = new OutputLog(path.join(this.dirs.logs, `${name}.log`));
      for (const o of this.observers) await o.beforeStart?.(sb);
      const spawned = await start(sb, sb.cgroup);
      return { sandbox: sb, spawned };
    } catch (err) {
      const appErr = AppError.from(err);
      await this.failedToStart(sb, appErr);
      throw appErr;
    }
  }

  /** How the launcher's events for a sandbox reach it (spawned, restored, or exec'd into). */
  sessionHandlers(sb: Sandbox): SessionHandlers {
    return {
      onSpawned: (s) => this.onSpawned(sb, s),
      onOutput: (fd, data) => sb.emitOutput(fd, data),
      // The command's status arrives before its init is reaped: the report goes out then, the host
      // resources go once the init is gone. A checkpoint in progress waits for the end.
      onStatus: (e) => {
        if (!sb.checkpointing) sb.finishing ??= this.finish(sb, e.status, 0, e.exitNs);
      },
      onExit: (e) => void this.onGone(sb, e.status, e.initStatus, e.exitNs),
    };
  }

  private onSpawned(sb: Sandbox, s: Spawned): void {
    sb.move('started');
    sb.pid = s.pid;
    sb.startedAt = new Date();
    sb.execNs = s.execNs;
    sb.pipes = s.pipes;
    // while the program runs (after the create's answer): its exit report then reads the cgroup faster
    setImmediate(() => sb.cgroup?.prepareExitStats());
    if (sb.spec.timeoutMs !== undefined) {
      sb.timer = setTimeout(() => {
        sb.timedOut = true;
        this.launcher.kill(sb.launcherId, osConstants.signals.SIGKILL);
      }, sb.spec.timeoutMs);
    }
  }

  private async failedToStart(sb: Sandbox, err: AppError): Promise<void> {
    const errnoName = String(err.details?.errnoName ?? '');
    const exitCode = errnoName === 'ENOENT' && err.details?.stage === 'execve' ? 127 : errnoName === 'EACCES' ? 126 : 125;
    const report: ExitReport = {
      exitCode,
      signal: null,
      reason: 'failed-to-start',
      cpuMs: 0,
      memoryPeakBytes: 0,
      startMs: 0,
      wallMs: nsToMs(process.hrtime.bigint() - sb.requestNs),
      message: err.message,
    };
    Object.assign(err, { details: { ...err.details, report } });
    sb.exit = report;
    sb.finishedAt = new Date();
    sb.status = 'stopped';
    sb.sinks.clear();
    sb.log?.close();
    sb.markGone();
    await this.notifyStopped(sb);
    await this.release(sb);
    // A sandbox that never ran leaves no record: the error is the answer.
    this.forget(sb);
    sb.markSettled();
  }

  /** The program ended: its report goes to the subscribers and waiters. */
  private async finish(sb: Sandbox, status: number, initStatus: number, exitNs: bigint): Promise<void> {
    if (sb.timer) clearTimeout(sb.timer);
    sb.timer = null;
    sb.exit = exitReport({ status, initStatus, timedOut: sb.timedOut, stats: this.readExitStats(sb), requestNs: sb.requestNs, execNs: sb.execNs ?? exitNs, exitNs });
    // A checkpoint without --leave-running ends the tree once its snapshot is committed: that is the
    // checkpoint, not a crash. A program that ends on its own meanwhile is reported as it ended.
    if (sb.checkpointing?.ended) sb.exit = { ...sb.exit, reason: 'checkpointed', exitCode: 0, signal: null };
    sb.finishedAt = new Date();
    sb.move('exit');
    sb.log?.close();
    for (const s of sb.sinks) {
      s.event({ type: 'exit', report: sb.exit });
      s.end();
    }
    sb.sinks.clear();
    await this.notifyStopped(sb);
    for (const w of sb.exitWaiters.splice(0)) w();
  }

  /** Its init is reaped: report (if the status did not come first), then give back the cgroup and network. */
  private async onGone(sb: Sandbox, status: number, initStatus: number, exitNs: bigint): Promise<void> {
    sb.markGone();
    await (sb.finishing ??= this.finish(sb, status, initStatus, exitNs));
    try {
      await sb.cgroup?.remove();
    } catch {
      // reported by reconcile if it really stays
    }
    await this.detachNetwork(sb).catch((err: unknown) => process.stderr.write(`ai-sandbox helper: releasing the network of ${sb.name}: ${AppError.from(err).message}\n`));
    // a checkpoint in progress still needs the sandbox's files; it removes the sandbox when done
    if (sb.autoRemove && !sb.checkpointing) await this.remove(sb.name, false).catch(() => undefined);
    sb.markSettled();
  }

  private async notifyStopped(sb: Sandbox): Promise<void> {
    for (const o of this.observers) await o.stopped?.(sb).catch(() => undefined);
  }

  private readExitStats(sb: Sandbox): ExitStats | null {
    try {
      return sb.cgroup?.exitStats() ?? null;
    } catch {
      return null;
    }
  }

  private readStats(sb: Sandbox): CgroupStats | null {
    try {
      return sb.cgroup?.stats() ?? null;
    } catch {
      return null;
    }
  }

  /** A shared cgroup whose limits bound the sum of the sandboxes created with `spec.pool` = name. */
  ensurePool(name: string, limits: CgroupLimits): void {
    this.cgroups.ensurePool(name, limits);
  }

  removePool(name: string): Promise<void> {
    return this.cgroups.removePool(name);
  }

  has(name: string): boolean {
    return this.sandboxes.has(name);
  }

  get(name: string): Sandbox {
    const sb = this.sandboxes.get(name);
    if (!sb) throw new AppError('NOT_FOUND', `no sandbox named "${name}": \`ai-sandbox ps\` lists them`, { details: { name } });
    return sb;
  }

  list(): SandboxInfo[] {
    return [...this.sandboxes.values()].map((s) => s.info());
  }

  stats(name: string): SandboxStats {
    const sb = this.get(name);
    requireStatus(name, sb.status, 'exec', 'running', 'paused', 'checkpointing');
    const s = this.readStats(sb);
    if (!s) throw new AppError('CGROUP_UNAVAILABLE', `cannot read the cgroup of sandbox "${name}"`);
    return s;
  }

  wait(name: string): Promise<SandboxInfo> {
    const sb = this.get(name);
    if (sb.status === 'stopped') return Promise.resolve(sb.info());
    return new Promise((resolve) => sb.exitWaiters.push(() => resolve(sb.info())));
  }

  async stop(name: string, graceMs: number): Promise<SandboxInfo> {
    const sb = this.get(name);
    if (sb.status === 'stopped') return sb.info();
    requireStatus(name, sb.status, 'stop');
    const done = this.wait(name);
    this.launcher.kill(sb.launcherId, osConstants.signals.SIGTERM);
    const t = setTimeout(() => this.launcher.kill(sb.launcherId, osConstants.signals.SIGKILL), graceMs);
    try {
      return await done;
    } finally {
      clearTimeout(t);
    }
  }

  async remove(name: string, force: boolean): Promise<void> {
    const sb = this.get(name);
    if (sb.status !== 'stopped') {
      if (!force) requireStatus(name, sb.status, 'remove');
      await this.stop(name, 0);
      if (sb.autoRemove) return sb.settled; // onGone removes it
    }
    // once: a checkpoint's end and the init's reaping may both ask for an autoRemove sandbox
    await (sb.removing ??= (async () => {
      await this.release(sb);
      this.forget(sb);
    })());
  }

  /**
   * A checkpoint without --leave-running ends the tree once its snapshot is committed: SIGKILL to its
   * init, which criu left stopped. Nothing in it can run again, so (as with a command's early status)
   * the report goes out now; the host resources go once the init is gone (onGone), which takes the
   * kernel a few ms more (the tree's memory, the namespaces and their mounts).
   */
  endForCheckpoint(sb: Sandbox): Promise<void> {
    this.launcher.kill(sb.launcherId, osConstants.signals.SIGKILL);
    return (sb.finishing ??= this.finish(sb, osConstants.signals.SIGKILL, 0, process.hrtime.bigint()));
  }

  /** Give back everything a stopped sandbox holds on the host, once its init is gone. */
  private async release(sb: Sandbox): Promise<void> {
    // bounded: with the launcher dead the init died too (PDEATHSIG), but no EXIT will say so
    await Promise.race([sb.gone, new Promise((r) => setTimeout(r, 5000).unref())]);
    await this.detachNetwork(sb);
    await sb.cgroup?.remove();
    if (fs.existsSync(sb.sandboxDir)) await this.launcher.cleanup(sb.sandboxDir);
  }

  private forget(sb: Sandbox): void {
    fs.rmSync(path.join(this.dirs.logs, `${sb.name}.log`), { force: true });
    this.sandboxes.delete(sb.name);
  }

  /** Replay what a sandbox printed, then (with follow) what it prints next. */
  logs(name: string, follow: boolean, sink: OutputSink): void {
    const sb = this.get(name);
    for (const r of OutputLog.read(path.join(this.dirs.logs, `${name}.log`))) sink.output(r.fd, r.data);
    if (follow && sb.status !== 'stopped') {
      sb.sinks.add(sink);
    } else {
      if (sb.exit) sink.event({ type: 'exit', report: sb.exit });
      sink.end();
    }
  }

  unsubscribe(sink: OutputSink): void {
    for (const sb of this.sandboxes.values()) sb.sinks.delete(sink);
    for (const x of this.execs.values()) if (x.sink === sink) x.sink = null;
  }

  async exec(p: Params<'sandbox.exec'>, sink: OutputSink): Promise<{ exec: string; pid: number }> {
    const sb = this.get(p.name);
    requireStatus(p.name, sb.status, 'exec');
    const x: ExecSession = { id: `x${this.nextExec++}`, launcherId: this.nextLauncherId++, sandbox: sb, sink, requestNs: process.hrtime.bigint() };
    const id = resolveIdentity({ user: p.user ?? sb.spec.user, workdir: p.workdir ?? sb.spec.workdir, env: { ...sb.spec.env, ...p.env }, tty: p.tty }, sb.name);
    this.execs.set(x.id, x);
    try {
      const spawned = await this.launcher.exec(
        x.launcherId,
        { target: sb.launcherId, argv: p.command, env: id.env, workdir: id.workdir, uid: id.uid, gid: id.gid, tty: p.tty },
        {
          onSpawned: () => {},
          onOutput: (fd, data) => x.sink?.output(fd, data),
          onExit: (e) => {
            this.execs.delete(x.id);
            const st = decodeWaitStatus(e.status);
            const report: ExitReport = {
              exitCode: st.signal !== null ? 128 + st.signal : (st.exitCode ?? 0),
              signal: st.signal !== null ? signalName(st.signal) : null,
              reason: st.signal !== null ? 'signaled' : 'exited',
              cpuMs: 0,
              memoryPeakBytes: 0,
              startMs: 0,
              wallMs: nsToMs(e.exitNs - x.requestNs),
            };
            x.sink?.event({ type: 'exit', report });
            x.sink?.end();
          },
        },
      );
      return { exec: x.id, pid: spawned.pid };
    } catch (err) {
      this.execs.delete(x.id);
      throw err;
    }
  }

  private launcherIdOf(target: { sandbox: string } | { exec: string }): number {
    if ('sandbox' in target) {
      const sb = this.get(target.sandbox);
      requireStatus(sb.name, sb.status, 'exec');
      return sb.launcherId;
    }
    const x = this.execs.get(target.exec);
    if (!x) throw new AppError('NOT_FOUND', `no running exec session ${target.exec}`);
    return x.launcherId;
  }

  write(target: { sandbox: string } | { exec: string }, data: Buffer, eof: boolean): void {
    const id = this.launcherIdOf(target);
    this.launcher.write(id, data);
    if (eof) this.launcher.closeStdin(id);
  }

  resize(target: { sandbox: string } | { exec: string }, rows: number, cols: number): void {
    this.launcher.resize(this.launcherIdOf(target), rows, cols);
  }

  /** Run a latency-bound operation (checkpoint, restore, fork) with warm-slot refills held off until it ends. */
  holdRefills<T>(fn: () => Promise<T>): Promise<T> {
    return this.warm.holdRefills(fn);
  }

  /** Stop everything (helper shutdown): SIGKILL, wait for the exits, release. */
  async shutdown(): Promise<void> {
    await this.warm.close();
    const live = [...this.sandboxes.values()].filter((s) => s.status !== 'stopped');
    // Bounded: a sandbox whose launcher session is already gone would never report its exit.
    const stops = Promise.all(live.map((s) => this.stop(s.name, 0).catch(() => undefined)));
    await Promise.race([stops, new Promise((r) => setTimeout(r, 5000).unref())]);
    await Promise.all([...this.sandboxes.values()].map((s) => this.release(s).catch(() => undefined)));
  }
}
