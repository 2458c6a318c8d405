/**
 * cgroup drivers: one interface, a v2 driver (pure cgroup2 hosts, the common case) and a hybrid driver
 * (v1 controllers for memory/cpu/pids plus a controller-less cgroup2 for identity, as on our CI hosts).
 *
 * Threat model: names come from the helper (never from a client verbatim: they are validated
 * `[a-z0-9][a-z0-9_.-]{0,62}`), and every path is built under the `ai-sandbox` parent of each hierarchy,
 * so a driver can never create, write, or remove a cgroup that the project did not create.
 */

export interface CgroupLimits {
  /** memory limit in bytes (swap limited to the same where the kernel allows it) */
  memoryBytes?: number | undefined;
  /** CPU quota in CPUs, e.g. 0.5 = 50 ms per 100 ms period */
  cpus?: number | undefined;
  /** relative CPU weight, 1..10000 (cgroup v2 scale; 100 is the default) */
  cpuWeight?: number | undefined;
  /** maximum number of tasks */
  pidsMax?: number | undefined;
}

export interface CgroupStats {
  cpuUsageNs: number;
  memoryCurrentBytes: number;
  memoryPeakBytes: number;
  oomKills: number;
  pidsCurrent: number;
  /** CPU throttling periods (quota exhausted) */
  throttledPeriods: number;
}

/** what an exit report needs (three reads instead of stats()'s six, on every sandbox's exit) */
export type ExitStats = Pick<CgroupStats, 'cpuUsageNs' | 'memoryPeakBytes' | 'oomKills'>;

export interface SandboxCgroup {
  readonly name: string;
  /** pool this cgroup sits in, or undefined for the top level */
  readonly pool: string | undefined;
  /** cgroup2 directory: CLONE_INTO_CGROUP target; its inode is the cgroup id eBPF filters on */
  readonly cgroup2Path: string;
  /** v1 `cgroup.procs` files the sandbox init must join (empty on a pure v2 host) */
  readonly v1ProcsFiles: readonly string[];
  /** writes the limits; nothing when they are what this handle last wrote (a warm slot taken with defaults) */
  setLimits(limits: CgroupLimits): void;
  stats(): CgroupStats;
  exitStats(): ExitStats;
  /** open the files exitStats reads, so the exit report reads them faster; closed by remove */
  prepareExitStats(): void;
  /** pids of every process in it */
  pids(): number[];
  /** SIGKILL every process in it and wait (bounded) until it is empty */
  kill(): Promise<void>;
  /** remove the directories (kills first if not empty); idempotent */
  remove(): Promise<void>;
}

export interface CgroupDriver {
  readonly mode: 'v2' | 'hybrid';
  /** create the `ai-sandbox` parents (idempotent) and check what works; throws AppError CGROUP_UNAVAILABLE */
  init(): void;
  /** create (or reuse, for re-adoption) the cgroup of one sandbox; with `pool`, nested inside that pool */
  create(name: string, limits: CgroupLimits, pool?: string): SandboxCgroup;
  /** the same, with the directories made off the event loop (see CgroupFs.mkdirAsync) */
  createAsync(name: string, limits: CgroupLimits, pool?: string): Promise<SandboxCgroup>;
  /** open an existing one without changing it (reconcile) */
  open(name: string, pool?: string): SandboxCgroup | undefined;
  /** create or update a shared pool whose limits bound the sum of its sandboxes */
  ensurePool(pool: string, limits: CgroupLimits): void;
  removePool(pool: string): Promise<void>;
  /** every sandbox cgroup that exists now, for reconcile after a crash */
  list(): Array<{ name: string; pool: string | undefined }>;
  listPools(): string[];
  /** remove every sandbox and pool, then the parent itself in every hierarchy (an instance's teardown); idempotent */
  destroy(): Promise<void>;
}
