/**
 * One sandbox as the helper sees it: its spec, status, cgroup, output log and subscribers. Status only
 * changes through `move`, which goes through the lifecycle table.
 */
import type { SandboxCgroup } from '../cgroup/types.js';
import type { ExitReport, SandboxInfo, SandboxSpec, SandboxStatus, StreamEvent } from '../protocol/schema.js';
import { transition, type SandboxAction } from './lifecycle.js';
import type { OutputLog } from './output-log.js';
import type { Spawned } from '../launcher/launcher.js';
import type { Attachment } from '../network/network.js';

/** Where a sandbox's output goes: a connection's stream, with its own flow control. */
export interface OutputSink {
  output(fd: 1 | 2, data: Buffer): void;
  event(ev: StreamEvent): void;
  /** the sandbox (or exec) ended; no more calls follow */
  end(): void;
}

export class Sandbox {
  status: SandboxStatus = 'creating';
  pid: number | null = null;
  /** CLOCK_MONOTONIC ns of the program's execve, as the launcher saw it */
  execNs: bigint | null = null;
  cgroup: SandboxCgroup | null = null;
  log: OutputLog | null = null;
  startedAt: Date | null = null;
  finishedAt: Date | null = null;
  exit: ExitReport | null = null;
  timedOut = false;
  /** names of its stdio and status pipes, which a checkpoint records for the restore */
  pipes: Spawned['pipes'] = null;
  /** the snapshot it was restored from, then its latest checkpoint: the parent of the next one */
  restoredFrom: string | null = null;
  /** a checkpoint in progress; `ended`: its snapshot is committed and the tree is being killed for it */
  checkpointing: { ended: boolean } | null = null;
  timer: NodeJS.Timeout | null = null;
  /** its network slot, proxy and rules while it runs (released when it stops) */
  network: Attachment | null = null;
  /** what it had, kept after the release for inspect */
  networkInfo: SandboxInfo['network'] = null;
  readonly sinks = new Set<OutputSink>();
  readonly exitWaiters: Array<() => void> = [];
  readonly createdAt = new Date();
  /** the exit report in the making: from the command's early status, or else when the init is gone */
  finishing: Promise<void> | null = null;
  /** its removal in progress (release, then forget): asked twice, done once */
  removing: Promise<void> | null = null;
  /** the launcher reaped its init (or it never ran): the namespaces are gone, its cgroup can go */
  readonly gone: Promise<void>;
  markGone!: () => void;
  /** its end is fully handled: cgroup and network given back (and, with autoRemove, it is forgotten) */
  readonly settled: Promise<void>;
  markSettled!: () => void;

  constructor(
    readonly name: string,
    readonly launcherId: number,
    readonly spec: SandboxSpec,
    readonly sandboxDir: string,
    readonly autoRemove: boolean,
    /** CLOCK_MONOTONIC ns when the request that created it arrived: startMs and wallMs count from here */
    readonly requestNs: bigint,
  ) {
    this.gone = new Promise((resolve) => (this.markGone = resolve));
    this.settled = new Promise((resolve) => (this.markSettled = resolve));
  }

  get hostname(): string {
    return this.name.replace(/[_.]/g, '-');
  }

  move(action: SandboxAction): void {
    this.status = transition(this.name, this.status, action);
  }

  emitOutput(fd: 1 | 2, data: Buffer): void {
    this.log?.append(fd, data);
    for (const s of this.sinks) s.output(fd, data);
  }

  info(): SandboxInfo {
    return {
      name: this.name,
      status: this.status,
      command: this.spec.command,
      pid: this.pid,
      createdAt: this.createdAt.toISOString(),
      startedAt: this.startedAt?.toISOString() ?? null,
      finishedAt: this.finishedAt?.toISOString() ?? null,
      limits: this.spec.limits,
      pool: this.spec.pool ?? null,
      exit: this.exit,
      cgroup2Path: this.cgroup?.cgroup2Path ?? null,
      network: this.networkInfo,
    };
  }
}
