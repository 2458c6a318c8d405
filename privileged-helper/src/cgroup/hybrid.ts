/**
 * Hybrid driver: limits through the cgroup v1 memory, cpu and pids hierarchies, identity (the cgroup id
 * eBPF filters on, CLONE_INTO_CGROUP, cgroup.kill, CPU time) through a controller-less cgroup2 mount.
 * Every sandbox and pool exists once in each of the four hierarchies, under the same relative path.
 *
 * Threat model: as in v2.ts, every path is built by CgroupLayout under `<mount>/<parent>` from validated
 * names, so other software's cgroups on the host are never created, written, moved or removed. v1 has no
 * atomic kill: a sandbox may fork while we SIGKILL it, so kill() repeats until the cgroups are empty, with
 * cgroup.kill on the cgroup2 directory catching the forks that joined it; pids.max bounds the race.
 */
import { AppError } from '../errors/app-error.js';
import {
  errnoOf,
  ExitStatFiles,
  readKeyed,
  readNumber,
  readPids,
  realCgroupFs,
  killPollMs,
  removeCgroupDir,
  sigkill,
  sleep,
  type CgroupFs,
} from './fs.js';
import {
  CgroupLayout,
  CPU_PERIOD_US,
  cpuQuotaUs,
  DEFAULT_PARENT,
  limitsKey,
  unavailable,
  validateLimits,
} from './layout.js';
import type { CgroupDriver, CgroupLimits, CgroupStats, ExitStats, SandboxCgroup } from './types.js';

export interface HybridMounts {
  memory: string;
  cpu: string;
  pids: string;
  /** cgroup2 mount, controllers not required */
  unified: string;
}

export const DEFAULT_HYBRID_MOUNTS: HybridMounts = {
  memory: '/sys/fs/cgroup/memory',
  cpu: '/sys/fs/cgroup/cpu',
  pids: '/sys/fs/cgroup/pids',
  unified: '/sys/fs/cgroup/unified',
};

export interface HybridDriverOptions {
  mounts?: HybridMounts;
  parent?: string;
  fs?: CgroupFs;
  signal?: (pid: number) => void;
  killTimeoutMs?: number;
}

/** the same relative cgroup in each hierarchy */
interface Dirs {
  memory: string;
  cpu: string;
  pids: string;
  unified: string;
}

/** a file in each hierarchy that proves the controller is really there (v1 hierarchy roots lack some) */
const PROOF_FILES: Record<keyof Dirs, string> = {
  memory: 'memory.limit_in_bytes',
  cpu: 'cpu.cfs_quota_us',
  pids: 'pids.max',
  unified: 'cgroup.procs',
};

export class HybridCgroupDriver implements CgroupDriver {
  readonly mode = 'hybrid' as const;
  private readonly mounts: HybridMounts;
  private readonly layout: CgroupLayout;
  private readonly fs: CgroupFs;
  private readonly signal: (pid: number) => void;
  private readonly killTimeoutMs: number;

  constructor(opts: HybridDriverOptions = {}) {
    this.mounts = opts.mounts ?? DEFAULT_HYBRID_MOUNTS;
    this.layout = new CgroupLayout(opts.parent ?? DEFAULT_PARENT);
    this.fs = opts.fs ?? realCgroupFs;
    this.signal = opts.signal ?? sigkill;
    this.killTimeoutMs = opts.killTimeoutMs ?? 2000;
  }

  init(): void {
    const dirs = this.dirs(this.layout.parent);
    for (const key of Object.keys(dirs) as Array<keyof Dirs>) {
      try {
        this.fs.mkdir(dirs[key]);
      } catch (err) {
        throw unavailable(
          `cannot create ${dirs[key]} (${errnoOf(err) ?? String(err)}): the helper must run as root with the ` +
            `${key} cgroup hierarchy mounted writable at ${this.mounts[key]}`,
          { path: dirs[key] },
          err,
        );
      }
      if (!this.fs.exists(`${dirs[key]}/${PROOF_FILES[key]}`)) {
        throw unavailable(
          `${this.mounts[key]} is not a ${key === 'unified' ? 'cgroup2' : `cgroup v1 ${key}`} hierarchy ` +
            `(${PROOF_FILES[key]} missing in ${dirs[key]}); mount it there or use a cgroup v2 host`,
          { path: dirs[key], missing: PROOF_FILES[key] },
        );
      }
    }
  }

  create(name: string, limits: CgroupLimits, pool?: string): SandboxCgroup {
    const cg = this.planned(name, limits, pool);
    for (const dir of Object.values(cg.dirs)) this.fs.mkdir(dir);
    cg.setLimits(limits);
    return cg;
  }

  async createAsync(name: string, limits: CgroupLimits, pool?: string): Promise<SandboxCgroup> {
    const cg = this.planned(name, limits, pool);
    for (const dir of Object.values(cg.dirs)) await this.fs.mkdirAsync(dir);
    cg.setLimits(limits);
    return cg;
  }

  private planned(name: string, limits: CgroupLimits, pool: string | undefined): HybridSandboxCgroup {
    validateLimits(limits);
    const rel = this.layout.sandboxRel(name, pool);
    if (pool !== undefined && !this.fs.exists(this.dirs(this.layout.poolRel(pool)).memory)) {
      throw new AppError('NOT_FOUND', `cgroup pool "${pool}" does not exist (ensurePool first)`, { details: { pool } });
    }
    return this.handle(name, pool, rel);
  }

  /** a sandbox present in any hierarchy opens, so reconcile can finish removing a half-created one */
  open(name: string, pool?: string): SandboxCgroup | undefined {
    const cg = this.handle(name, pool, this.layout.sandboxRel(name, pool));
    return Object.values(cg.dirs).some((dir) => this.fs.exists(dir)) ? cg : undefined;
  }

  ensurePool(pool: string, limits: CgroupLimits): void {
    validateLimits(limits);
    const dirs = this.dirs(this.layout.poolRel(pool));
    for (const dir of Object.values(dirs)) this.fs.mkdir(dir);
    try {
      writeV1Limits(this.fs, dirs, limits);
    } catch (err) {
      if (errnoOf(err) !== 'EINVAL' || limits.cpus === undefined) throw err;
      // v1 refuses a parent quota below a child's (cgroup2 would cap the child instead)
      throw new AppError('INVALID_ARGUMENT', `pool "${pool}" cpus ${limits.cpus} is below the quota of a sandbox in it`, {
        details: { pool, limits },
        cause: err,
      });
    }
  }

  async removePool(pool: string): Promise<void> {
    for (const sb of this.list().filter((s) => s.pool === pool)) await this.open(sb.name, pool)?.remove();
    for (const dir of Object.values(this.dirs(this.layout.poolRel(pool)))) await removeCgroupDir(this.fs, dir);
  }

  async destroy(): Promise<void> {
    for (const sb of this.list()) await this.open(sb.name, sb.pool)?.remove();
    for (const pool of this.listPools()) await this.removePool(pool);
    for (const dir of Object.values(this.dirs(this.layout.parent))) await removeCgroupDir(this.fs, dir);
  }

  list(): Array<{ name: string; pool: string | undefined }> {
    return this.layout.list(this.fs, Object.values(this.mounts));
  }

  listPools(): string[] {
    return this.layout.listPools(this.fs, Object.values(this.mounts));
  }

  private dirs(rel: string): Dirs {
    const m = this.mounts;
    return { memory: `${m.memory}/${rel}`, cpu: `${m.cpu}/${rel}`, pids: `${m.pids}/${rel}`, unified: `${m.unified}/${rel}` };
  }

  private handle(name: string, pool: string | undefined, rel: string): HybridSandboxCgroup {
    return new HybridSandboxCgroup(this.fs, name, pool, this.dirs(rel), this.signal, this.killTimeoutMs);
  }
}

class HybridSandboxCgroup implements SandboxCgroup {
  readonly cgroup2Path: string;
  readonly v1ProcsFiles: readonly string[];

  constructor(
    private readonly fs: CgroupFs,
    readonly name: string,
    readonly pool: string | undefined,
    readonly dirs: Dirs,
    private readonly signal: (pid: number) => void,
    private readonly killTimeoutMs: number,
  ) {
    this.cgroup2Path = dirs.unified;
    this.v1ProcsFiles = [dirs.memory, dirs.cpu, dirs.pids].map((d) => `${d}/cgroup.procs`);
    // cgroup2 keeps per-cgroup CPU time even with no controllers, which spares us a fifth (cpuacct) hierarchy
    this.exitFiles = new ExitStatFiles(fs, [`${dirs.unified}/cpu.stat`, `${dirs.memory}/memory.max_usage_in_bytes`, `${dirs.memory}/memory.oom_control`]);
  }

  private readonly exitFiles: ExitStatFiles;

  private applied: string | null = null;

  setLimits(limits: CgroupLimits): void {
    const key = limitsKey(limits);
    if (key === this.applied) return;
    validateLimits(limits);
    writeV1Limits(this.fs, this.dirs, limits);
    this.applied = key;
  }

  exitStats(): ExitStats {
    return this.exitFiles.read();
  }

  prepareExitStats(): void {
    this.exitFiles.open();
  }

  stats(): CgroupStats {
    const { memory, cpu, pids, unified } = this.dirs;
    return {
      // cgroup2 keeps per-cgroup CPU time even with no controllers, which spares us a fifth (cpuacct) hierarchy
      cpuUsageNs: readKeyed(this.fs, `${unified}/cpu.stat`, 'usage_usec') * 1000,
      throttledPeriods: readKeyed(this.fs, `${cpu}/cpu.stat`, 'nr_throttled'),
      memoryCurrentBytes: readNumber(this.fs, `${memory}/memory.usage_in_bytes`),
      memoryPeakBytes: readNumber(this.fs, `${memory}/memory.max_usage_in_bytes`),
      // memory.failcnt can stay 0 when memsw is what hit the limit; oom_kill counts the kills themselves
      oomKills: readKeyed(this.fs, `${memory}/memory.oom_control`, 'oom_kill'),
      pidsCurrent: readNumber(this.fs, `${pids}/pids.current`),
    };
  }

  /** union over the hierarchies: a process that joined only some of them (a start cut short) still counts */
  pids(): number[] {
    const all = new Set<number>();
    for (const dir of Object.values(this.dirs)) for (const pid of readPids(this.fs, `${dir}/cgroup.procs`)) all.add(pid);
    return [...all].sort((a, b) => a - b);
  }

  async kill(): Promise<void> {
    const killFile = `${this.dirs.unified}/cgroup.kill`;
    if (this.fs.exists(killFile)) await this.fs.writeAsync(killFile, '1');
    const deadline = Date.now() + this.killTimeoutMs;
    let round = 0;
    for (let pids = this.pids(); pids.length > 0; pids = this.pids()) {
      if (Date.now() > deadline) {
        throw new AppError('INTERNAL', `cgroup ${this.name} still has processes after ${this.killTimeoutMs} ms of SIGKILL`, {
          retryable: true,
          details: { dirs: this.dirs, pids },
        });
      }
      for (const pid of pids) this.signal(pid);
      await sleep(killPollMs(round++));
    }
  }

  private removing: Promise<void> | null = null;

  /** One removal at a time: a second caller (exit handling and `rm` racing) shares the first's. */
  remove(): Promise<void> {
    this.exitFiles.close();
    this.removing ??= (async () => {
      if (this.pids().length > 0) await this.kill();
      for (const dir of Object.values(this.dirs)) await removeCgroupDir(this.fs, dir);
    })().finally(() => (this.removing = null));
    return this.removing;
  }
}

function writeV1Limits(cgfs: CgroupFs, dirs: Dirs, limits: CgroupLimits): void {
  writeV1Memory(cgfs, dirs.memory, limits.memoryBytes);
  writeV1Cpu(cgfs, dirs.cpu, limits.cpus);
  cgfs.write(`${dirs.cpu}/cpu.shares`, String(Math.max(2, Math.round(((limits.cpuWeight ?? 100) * 1024) / 100))));
  cgfs.write(`${dirs.pids}/pids.max`, limits.pidsMax === undefined ? 'max' : String(limits.pidsMax));
}

/**
 * memsw (memory + swap) must stay >= the memory limit at every instant or the kernel answers EINVAL, so
 * when the new value is above the current memsw, memsw moves first; otherwise the memory limit does.
 * memsw = limit means no swap beyond the limit, the same as memory.swap.max = 0 on cgroup2.
 */
function writeV1Memory(cgfs: CgroupFs, dir: string, bytes: number | undefined): void {
  const value = bytes === undefined ? '-1' : String(bytes);
  const memsw = `${dir}/memory.memsw.limit_in_bytes`;
  const limit = `${dir}/memory.limit_in_bytes`;
  if (!cgfs.exists(memsw)) {
    cgfs.write(limit, value);
    return;
  }
  const raising = (bytes ?? Infinity) > Number(cgfs.read(memsw).trim());
  const order = raising ? [memsw, limit] : [limit, memsw];
  for (const file of order) cgfs.write(file, value);
}

/**
 * v1 refuses (EINVAL) a child quota above its parent's where cgroup2 would cap it; capping it here keeps
 * the same meaning on both drivers for sandboxes inside a CPU-limited pool.
 */
function writeV1Cpu(cgfs: CgroupFs, dir: string, cpus: number | undefined): void {
  cgfs.write(`${dir}/cpu.cfs_period_us`, String(CPU_PERIOD_US));
  let quota = cpus === undefined ? -1 : cpuQuotaUs(cpus);
  const parentQuotaFile = `${dir.slice(0, dir.lastIndexOf('/'))}/cpu.cfs_quota_us`;
  const parentQuota = cgfs.exists(parentQuotaFile) ? Number(cgfs.read(parentQuotaFile).trim()) : -1;
  if (quota > 0 && parentQuota > 0) quota = Math.min(quota, parentQuota);
  cgfs.write(`${dir}/cpu.cfs_quota_us`, String(quota));
}
