/**
 * Warm slots: a few sandbox inits made ahead of time (tmpfs mounted, namespaces cloned, cgroups joined,
 * the default root's overlay, /proc and /dev mounted), each waiting for the rest of its plan. Only a
 * sandbox on the default root takes one (a --rootfs needs another overlay). Taking one skips the slowest part of a start: creating a
 * network namespace (~1 ms) and, on hybrid cgroup hosts, joining v1 cgroups, which can wait for an RCU
 * grace period (several ms) after the machine was idle. Slots are refilled in the background; each is
 * used by exactly one sandbox and never recycled.
 */
import path from 'node:path';
import type { CgroupDriver, CgroupLimits, SandboxCgroup } from '../cgroup/types.js';
import type { Launcher } from '../launcher/launcher.js';

/** a low pool is refilled this long after a take (the start it serves has exec'd by then) */
const REFILL_DELAY_MS = 10;
/** otherwise the pool is topped up once starts pause this long */
const IDLE_REFILL_MS = 50;

export interface WarmSlot {
  launcherId: number;
  /** also the name of its cgroup and sandbox directory */
  name: string;
  cgroup: SandboxCgroup;
  sandboxDir: string;
}

export class WarmPool {
  private readonly ready: WarmSlot[] = [];
  private pending = 0;
  private closed = false;
  private idleTimer: NodeJS.Timeout | null = null;
  /** holdRefills calls running */
  private held = 0;
  /** the pending timer is a low-pool refill (not pushed back by later takes) */
  private refillDue = false;
  /** after a failure, no new attempt before this time (no hot loop on a broken host) */
  private backoffUntil = 0;

  constructor(
    private readonly launcher: Launcher,
    private readonly cgroups: CgroupDriver,
    private readonly sbRoot: string,
    private readonly size: number,
    private readonly defaults: { limits: CgroupLimits; tmpfsBytes: number; lowerDirs: readonly string[] },
    private readonly allocId: () => number,
  ) {}

  /** A prepared slot, or undefined (the caller starts cold). */
  take(): WarmSlot | undefined {
    const slot = this.ready.shift();
    // Refill in batches, and never inside the start that took the slot: on this 2-core host a PREPARE
    // handled while the start's init sets up and execs took the CPU from it (every other start, the one
    // that left the pool at half, was ~4 ms slower with an immediate refill). Low: refill shortly after
    // the start, and a refill already due is not pushed back. Otherwise top up once starts pause (a
    // burst shares one refill batch).
    if (this.held > 0 || (this.idleTimer && this.refillDue)) return slot;
    this.schedule();
    return slot;
  }

  /**
   * Runs `fn` (a checkpoint, restore or fork) with refills held off until it ends, and schedules the one
   * due then: a refill's PREPAREs took the launcher and a CPU from a checkpoint that began just after a
   * start (idle Python: dump 20 → 28 ms, checkpoint p50 33 → 44 ms when the top-up landed in it).
   */
  async holdRefills<T>(fn: () => Promise<T>): Promise<T> {
    this.held++;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    try {
      return await fn();
    } finally {
      if (--this.held === 0 && this.ready.length + this.pending < this.size) this.schedule();
    }
  }

  private schedule(): void {
    const low = this.ready.length + this.pending <= this.size / 2;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.refillDue = low;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      this.refillDue = false;
      this.fill();
    }, low ? REFILL_DELAY_MS : IDLE_REFILL_MS);
    this.idleTimer.unref();
  }

  fill(): void {
    if (this.closed || Date.now() < this.backoffUntil) return;
    while (this.ready.length + this.pending < this.size) {
      this.pending++;
      void this.prepareOne().finally(() => this.pending--);
    }
  }

  private async prepareOne(): Promise<void> {
    const id = this.allocId();
    const name = `w${id}`;
    let cgroup: SandboxCgroup | undefined;
    const sandboxDir = path.join(this.sbRoot, name);
    try {
      cgroup = await this.cgroups.createAsync(name, this.defaults.limits);
      const slot: WarmSlot = { launcherId: id, name, cgroup, sandboxDir };
      await this.launcher.prepare(id, { sandboxDir, tmpfsBytes: this.defaults.tmpfsBytes, cgroup2Path: cgroup.cgroup2Path, v1ProcsFiles: cgroup.v1ProcsFiles, lowerDirs: this.defaults.lowerDirs }, () => {
        // the slot's init died before it was used: forget it and give back its resources
        const i = this.ready.indexOf(slot);
        if (i >= 0) this.ready.splice(i, 1);
        void this.release(slot);
      });
      if (this.closed) {
        await this.discard(slot);
      } else {
        cgroup.prepareExitStats(); // off the request path: the exit report of its sandbox reads faster
        this.ready.push(slot);
      }
    } catch (err) {
      this.backoffUntil = Date.now() + 1000;
      if (process.env.AI_SANDBOX_DEBUG) process.stderr.write(`warm pool: ${(err as Error).message}\n`);
      await cgroup?.remove().catch(() => undefined);
    }
  }

  private async discard(slot: WarmSlot): Promise<void> {
    this.launcher.kill(slot.launcherId, 9);
    // the EXIT of the slot's init runs onGone, which releases it
  }

  private async release(slot: WarmSlot): Promise<void> {
    await slot.cgroup.remove().catch(() => undefined);
    await this.launcher.cleanup(slot.sandboxDir).catch(() => undefined);
  }

  /** Kill every unused slot (helper shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const slots = this.ready.splice(0);
    for (const s of slots) this.launcher.kill(s.launcherId, 9);
    await new Promise((r) => setTimeout(r, slots.length ? 20 : 0));
  }
}
