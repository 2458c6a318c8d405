/**
 * Time travel: checkpoint a running sandbox (CRIU images of its whole process tree + an archive of its
 * writable layer + metadata), restore a snapshot as a new sandbox, fork N copies at once, and compare two
 * snapshots. Restores go through the launcher, which stays the parent of every sandbox init.
 *
 * Threat model: snapshot ids are validated (`s-` + hex) before any path is built from them; a snapshot's
 * files are checked against their checksums before CRIU reads them; everything else comes from the
 * helper's own records.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../errors/app-error.js';
import type { DumpPlan, Launcher } from '../launcher/launcher.js';
import type { SandboxSpec } from '../protocol/schema.js';
import { requireStatus } from '../sandbox/lifecycle.js';
import type { LaunchOptions, SandboxManager } from '../sandbox/manager.js';
import { checkMounts, checkRootfs, DEFAULTS } from '../sandbox/policy.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import { ensureRunDir, externalKey, requireCriu, type ExternalMount } from './criu.js';
import { diffSnapshots, type SnapshotDiff } from './diff.js';
import { infoOf, type ProcessEntry, type SnapshotInfo } from './meta.js';
import type { SnapshotStore } from './store.js';

const NET_KEY = 'sandbox-net';

/**
 * The init re-executes its in-sandbox binary ~20 ms after starting the command (at once when sent
 * INIT_SIG_SETTLE_NOW), and the new image holds the launcher's pidfd for a moment: dump only after both.
 */
function initIsSettled(pid: number): boolean {
  if (fs.readlinkSync(`/proc/${pid}/exe`) !== '/.ai-sandbox/init') return false;
  return !fs.readdirSync(`/proc/${pid}/fd`).some((fd) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/${fd}`).includes('pidfd');
    } catch {
      return false;
    }
  });
}

/** native/launcher/initloop.h INIT_SIG_SETTLE_NOW: the init re-execs at once instead of ~20 ms after its start */
const INIT_SIG_SETTLE_NOW = 63;

async function initSettled(pid: number): Promise<void> {
  const deadline = Date.now() + 2000;
  if (!initIsSettled(pid)) {
    try {
      process.kill(pid, INIT_SIG_SETTLE_NOW);
    } catch {
      // ended meanwhile: the dump reports it
    }
  }
  while (!initIsSettled(pid)) {
    if (Date.now() > deadline) throw new AppError('SNAPSHOT_FAILED', `the sandbox init (pid ${pid}) has not settled yet: try again`, { retryable: true });
    await new Promise((r) => setTimeout(r, 1));
  }
}

export class SnapshotService {
  constructor(
    private readonly manager: SandboxManager,
    private readonly store: SnapshotStore,
    private readonly launcher: Launcher,
    private readonly restoreLogs: string,
  ) {}

  checkpoint(name: string, opts: { leaveRunning: boolean; label?: string | undefined }): Promise<SnapshotInfo> {
    return this.manager.holdRefills(() => this.checkpointNow(name, opts));
  }

  private async checkpointNow(name: string, opts: { leaveRunning: boolean; label?: string | undefined }): Promise<SnapshotInfo> {
    const criu = requireCriu();
    const sb = this.manager.get(name);
    requireStatus(name, sb.status, 'checkpoint');
    if (!sb.pipes || sb.pid === null) {
      throw new AppError('UNSUPPORTED', `cannot checkpoint sandbox "${name}": a sandbox with a terminal (--tty) cannot be checkpointed yet`);
    }
    if (sb.networkInfo) {
      throw new AppError('UNSUPPORTED', `cannot checkpoint sandbox "${name}": a sandbox with network rules cannot be checkpointed yet (its veth, address and proxy cannot be carried into a restore)`);
    }
    const tStart = performance.now();
    await ensureRunDir();
    const id = this.store.newId();
    const dir = this.store.stage(id);
    sb.move('checkpoint');
    sb.checkpointing = { ended: false };
    const { leaveRunning } = opts;
    let stopped = false;
    try {
      const externalMounts = [
        ...devNullMasks(sb.pid).map((target) => ({ target, key: externalKey(target), source: '/dev/null' })),
        ...sb.spec.mounts.map((m) => ({ target: path.posix.normalize(m.target), key: externalKey(m.target), source: m.source })),
      ];
      await initSettled(sb.pid);
      const t0 = performance.now();
      // The launcher runs criu dump (the tree left stopped) and then tars the upper layer: one point
      // in time, in a child that forks far cheaper than this process (see native/launcher/dump.c).
      stopped = true;
      const { criuMs: dumpMs, tarMs: archiveMs } = await this.launcher.dump(sb.launcherId, dumpPlan(criu, dir, externalMounts));
      // read while criu has left the tree stopped: exactly the processes (and command lines) it dumped
      const processes = processTree(sb);
      if (leaveRunning) {
        continueTree(sb);
        stopped = false;
      }
      const meta = await this.store.commit({
        version: 1,
        id,
        sandbox: name,
        parent: sb.restoredFrom,
        createdAt: new Date().toISOString(),
        label: opts.label ?? null,
        spec: sb.spec,
        leaveRunning,
        criuVersion: criu.version,
        pipes: sb.pipes,
        externalMounts,
        netKey: NET_KEY,
        processes,
        memoryBytes: imagesMemory(path.join(dir, 'img')),
        timings: { prepareMs: round(t0 - tStart), dumpMs: round(dumpMs), archiveMs: round(archiveMs) },
      });
      if (!leaveRunning) {
        // only now that the snapshot is safe: the tree ends, reported as `checkpointed`
        sb.checkpointing.ended = true;
        stopped = false;
        await this.manager.endForCheckpoint(sb);
      }
      sb.restoredFrom = id;
      return infoOf(meta);
    } catch (err) {
      if (stopped) continueTree(sb);
      this.store.abandon(id);
      throw err;
    } finally {
      sb.checkpointing = null;
      if (sb.status === 'checkpointing') sb.move('checkpointed');
      // once its init is gone (the answer does not wait for the kernel's teardown)
      if (sb.status === 'stopped' && sb.autoRemove) void this.manager.remove(name, false).catch(() => undefined);
    }
  }

  list(sandbox?: string): SnapshotInfo[] {
    return this.store.listInfo().filter((s) => sandbox === undefined || s.sandbox === sandbox);
  }

  /** Continue from a snapshot as a new sandbox. Checksums are verified first; a failure leaves nothing. */
  restore(snapshotId: string, opts: { name?: string | undefined } & LaunchOptions): Promise<{ sandbox: Sandbox; pid: number }> {
    return this.manager.holdRefills(() => this.restoreNow(snapshotId, opts));
  }

  private async restoreNow(snapshotId: string, opts: { name?: string | undefined } & LaunchOptions): Promise<{ sandbox: Sandbox; pid: number }> {
    const criu = requireCriu();
    const meta = await this.store.verify(snapshotId);
    const spec: SandboxSpec = { ...meta.spec, name: opts.name };
    checkRootfs(spec.rootfs);
    // the host paths bound back in must still pass the mount policy (they may have changed since)
    checkMounts(spec.mounts);
    const dir = this.store.dir(snapshotId);
    await ensureRunDir();
    fs.mkdirSync(this.restoreLogs, { recursive: true, mode: 0o700 });
    const { sandbox, spawned } = await this.manager.launch(spec, { ...opts, restoredFrom: snapshotId }, undefined, (sb, cgroup) =>
      this.launcher.restore(
        sb.launcherId,
        {
          sandboxDir: sb.sandboxDir,
          tmpfsBytes: spec.tmpfsBytes ?? DEFAULTS.tmpfsBytes,
          cgroup2Path: cgroup.cgroup2Path,
          v1ProcsFiles: cgroup.v1ProcsFiles,
          lowerDirs: this.manager.lowerDirs(spec),
          imagesDir: path.join(dir, 'img'),
          upperArchive: path.join(dir, 'upper.tar'),
          criu: criu.binary,
          inherit: Object.entries(meta.pipes).map(([role, pipe]) => `${role}=${pipe}`),
          external: meta.externalMounts.map((m) => `mnt[${m.key}]:${m.source}`),
          hostname: sb.hostname,
          log: path.join(this.restoreLogs, `${sb.name}.restore.log`),
          netKey: meta.netKey ?? undefined,
        },
        this.manager.sessionHandlers(sb),
      ),
    );
    return { sandbox, pid: spawned.pid };
  }

  /** N independent copies of one snapshot, started at once; all or nothing. */
  async fork(snapshotId: string, count: number, prefix: string): Promise<string[]> {
    const names = Array.from({ length: count }, (_, i) => `${prefix}-${i + 1}`);
    for (const n of names) if (this.manager.has(n)) throw new AppError('ALREADY_EXISTS', `a sandbox named "${n}" already exists: choose another --prefix`);
    await this.store.verify(snapshotId);
    const results = await Promise.allSettled(names.map((name) => this.restore(snapshotId, { name, autoRemove: false })));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.all(names.filter((n) => this.manager.has(n)).map((n) => this.manager.remove(n, true).catch(() => undefined)));
      throw AppError.from(failed.reason);
    }
    return names;
  }

  /** Each snapshot holds full images, so its children stay restorable without it. */
  remove(snapshotId: string): void {
    this.store.remove(snapshotId);
  }

  diff(a: string, b: string): SnapshotDiff {
    return diffSnapshots(this.store.get(a), this.store.dir(a), this.store.get(b), this.store.dir(b));
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/** criu dump's arguments for the launcher (it adds the pid, the flags and the netns inode itself). */
function dumpPlan(criu: { binary: string }, dir: string, externalMounts: ExternalMount[]): DumpPlan {
  const imagesDir = path.join(dir, 'img');
  fs.mkdirSync(imagesDir, { recursive: true, mode: 0o700 });
  return {
    criu: criu.binary,
    imagesDir,
    log: path.join(imagesDir, 'dump.log'),
    upperArchive: path.join(dir, 'upper.tar'),
    external: externalMounts.map((m) => `mnt[${m.target}]:${m.key}`),
    netKey: NET_KEY,
  };
}

/** The sandbox's processes as seen inside it (pid namespace numbers). */
function processTree(sb: Sandbox): ProcessEntry[] {
  const hostToNs = new Map<number, number>();
  const entries: Array<{ host: number; ppidHost: number; comm: string; cmdline: string }> = [];
  for (const pid of sb.cgroup?.pids() ?? []) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const nspid = /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/);
      const ppid = Number(/^PPid:\s*(\d+)/m.exec(status)?.[1] ?? 0);
      hostToNs.set(pid, Number(nspid?.at(-1) ?? pid));
      entries.push({
        host: pid,
        ppidHost: ppid,
        comm: fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim(),
        cmdline: fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim(),
      });
    } catch {
      // exited meanwhile
    }
  }
  return entries.map((e) => ({ pid: hostToNs.get(e.host)!, ppid: hostToNs.get(e.ppidHost) ?? 0, comm: e.comm, cmdline: e.cmdline })).sort((a, b) => a.pid - b.pid);
}

/** Paths the launcher masked with the host's /dev/null: CRIU dumps them as external mounts. */
function devNullMasks(initPid: number): string[] {
  return fs
    .readFileSync(`/proc/${initPid}/mountinfo`, 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[f.indexOf('-') + 1] === 'devtmpfs')
    .map((f) => f[4]!)
    .filter(Boolean);
}

function continueTree(sb: Sandbox): void {
  for (const pid of sb.cgroup?.pids() ?? []) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone
    }
  }
}

function imagesMemory(imgDir: string): number {
  return fs
    .readdirSync(imgDir)
    .filter((f) => f.startsWith('pages-'))
    .reduce((n, f) => n + fs.statSync(path.join(imgDir, f)).size, 0);
}
