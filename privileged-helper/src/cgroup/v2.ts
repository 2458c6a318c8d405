/**
 * cgroup2 driver for hosts whose /sys/fs/cgroup is a unified hierarchy with cpu, memory and pids (most
 * current distributions).
 *
 * Threat model: every directory is built by CgroupLayout under `<root>/<parent>` from validated names, so
 * nothing outside our parent is created, written or removed. The host root's cgroup.subtree_control is
 * read, never written: enabling controllers there is the administrator's decision (or systemd's), and
 * flipping it would change every other service on the machine. Processes inside a sandbox cannot write
 * these files (they have no access to the host's cgroupfs), so the limits written here hold.
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

const CONTROLLERS = ['cpu', 'memory', 'pids'] as const;

export interface V2DriverOptions {
  root?: string;
  parent?: string;
  fs?: CgroupFs;
  signal?: (pid: number) => void;
  killTimeoutMs?: number;
}

export class V2CgroupDriver implements CgroupDriver {
  readonly mode = 'v2' as const;
  private readonly root: string;
  private readonly layout: CgroupLayout;
  private readonly fs: CgroupFs;
  private readonly signal: (pid: number) => void;
  private readonly killTimeoutMs: number;

  constructor(opts: V2DriverOptions = {}) {
    this.root = opts.root ?? '/sys/fs/cgroup';
    this.layout = new CgroupLayout(opts.parent ?? DEFAULT_PARENT);
    this.fs = opts.fs ?? realCgroupFs;
    this.signal = opts.signal ?? sigkill;
    this.killTimeoutMs = opts.killTimeoutMs ?? 2000;
  }

  init(): void {
    const available = words(this.readOrUnavailable(`${this.root}/cgroup.controllers`));
    const notInKernel = CONTROLLERS.filter((c) => !available.has(c));
    if (notInKernel.length > 0) {
      throw unavailable(
        `cgroup2 at ${this.root} does not offer ${notInKernel.join(', ')}: the kernel lacks them or a cgroup v1 ` +
          `hierarchy holds them; boot with systemd.unified_cgroup_hierarchy=1 (or cgroup_no_v1=all)`,
        { root: this.root, missing: notInKernel },
      );
    }
    const enabled = words(this.readOrUnavailable(`${this.root}/cgroup.subtree_control`));
    const notEnabled = CONTROLLERS.filter((c) => !enabled.has(c));
    if (notEnabled.length > 0) {
      throw unavailable(
        `${notEnabled.join(', ')} not enabled in ${this.root}/cgroup.subtree_control; enable them ` +
          `(echo "${notEnabled.map((c) => `+${c}`).join(' ')}" > ${this.root}/cgroup.subtree_control) or run ` +
          `the helper as a systemd service with Delegate=yes`,
        { root: this.root, missing: notEnabled },
      );
    }
    const parent = `${this.root}/${this.layout.parent}`;
    try {
      this.fs.mkdir(parent);
      this.enableControllers(parent);
    } catch (err) {
      throw unavailable(`cannot set up ${parent} (${errnoOf(err) ?? String(err)}): the helper must run as root with a writable cgroup2 filesystem`, { parent }, err);
    }
  }

  create(name: string, limits: CgroupLimits, pool?: string): SandboxCgroup {
    const { cg, dir } = this.planned(name, limits, pool);
    this.fs.mkdir(dir);
    cg.setLimits(limits);
    return cg;
  }

  async createAsync(name: string, limits: CgroupLimits, pool?: string): Promise<SandboxCgroup> {
    const { cg, dir } = this.planned(name, limits, pool);
    await this.fs.mkdirAsync(dir);
    cg.setLimits(limits);
    return cg;
  }

  private planned(name: string, limits: CgroupLimits, pool: string | undefined) {
    validateLimits(limits);
    const rel = this.layout.sandboxRel(name, pool);
    if (pool !== undefined) this.requirePool(pool);
    return { cg: this.handle(name, pool, rel), dir: `${this.root}/${rel}` };
  }

  open(name: string, pool?: string): SandboxCgroup | undefined {
    const rel = this.layout.sandboxRel(name, pool);
    return this.fs.exists(`${this.root}/${rel}`) ? this.handle(name, pool, rel) : undefined;
  }

  ensurePool(pool: string, limits: CgroupLimits): void {
    validateLimits(limits);
    const dir = `${this.root}/${this.layout.poolRel(pool)}`;
    this.fs.mkdir(dir);
    this.enableControllers(dir);
    writeV2Limits(this.fs, dir, limits);
  }

  async removePool(pool: string): Promise<void> {
    for (const sb of this.list().filter((s) => s.pool === pool)) await this.open(sb.name, pool)?.remove();
    await removeCgroupDir(this.fs, `${this.root}/${this.layout.poolRel(pool)}`);
  }

  async destroy(): Promise<void> {
    for (const sb of this.list()) await this.open(sb.name, sb.pool)?.remove();
    for (const pool of this.listPools()) await this.removePool(pool);
    await removeCgroupDir(this.fs, `${this.root}/${this.layout.parent}`);
  }

  list(): Array<{ name: string; pool: string | undefined }> {
    return this.layout.list(this.fs, [this.root]);
  }

  listPools(): string[] {
    return this.layout.listPools(this.fs, [this.root]);
  }

  private handle(name: string, pool: string | undefined, rel: string): V2SandboxCgroup {
    return new V2SandboxCgroup(this.fs, name, pool, `${this.root}/${rel}`, this.signal, this.killTimeoutMs);
  }

  private requirePool(pool: string): void {
    if (!this.fs.exists(`${this.root}/${this.layout.poolRel(pool)}`)) {
      throw new AppError('NOT_FOUND', `cgroup pool "${pool}" does not exist (ensurePool first)`, { details: { pool } });
    }
  }

  /** only in our own directories: children of ai-sandbox and of pools get the controllers */
  private enableControllers(dir: string): void {
    this.fs.write(`${dir}/cgroup.subtree_control`, CONTROLLERS.map((c) => `+${c}`).join(' '));
  }

  private readOrUnavailable(path: string): string {
    try {
      return this.fs.read(path);
    } catch (err) {
      throw unavailable(`cannot read ${path} (${errnoOf(err) ?? String(err)}): no cgroup2 filesystem there`, { path }, err);
    }
  }
}

class V2SandboxCgroup implements SandboxCgroup {
  readonly v1ProcsFiles: readonly string[] = [];

  constructor(
    private readonly fs: CgroupFs,
    readonly name: string,
    readonly pool: string | undefined,
    readonly cgroup2Path: string,
    private readonly signal: (pid: number) => void,
    private readonly killTimeoutMs: number,
  ) {
    this.exitFiles = new ExitStatFiles(fs, [`${cgroup2Path}/cpu.stat`, `${cgroup2Path}/memory.peak`, `${cgroup2Path}/memory.events`]);
  }

  private readonly exitFiles: ExitStatFiles;
  private applied: string | null = null;

  setLimits(limits: CgroupLimits): void {
    const key = limitsKey(limits);
    if (key === this.applied) return;
    validateLimits(limits);
    writeV2Limits(this.fs, this.cgroup2Path, limits);
    this.applied = key;
  }

  exitStats(): ExitStats {
    return this.exitFiles.read();
  }

  prepareExitStats(): void {
    this.exitFiles.open();
  }

  stats(): CgroupStats {
    const dir = this.cgroup2Path;
    return {
      cpuUsageNs: readKeyed(this.fs, `${dir}/cpu.stat`, 'usage_usec') * 1000,
      throttledPeriods: readKeyed(this.fs, `${dir}/cpu.stat`, 'nr_throttled'),
      memoryCurrentBytes: readNumber(this.fs, `${dir}/memory.current`),
      memoryPeakBytes: readNumber(this.fs, `${dir}/memory.peak`),
      oomKills: readKeyed(this.fs, `${dir}/memory.events`, 'oom_kill'),
      pidsCurrent: readNumber(this.fs, `${dir}/pids.current`),
    };
  }

  pids(): number[] {
    return readPids(this.fs, `${this.cgroup2Path}/cgroup.procs`);
  }

  async kill(): Promise<void> {
    if (!this.fs.exists(this.cgroup2Path)) return;
    // cgroup.kill (5.14+) kills atomically, forks included; before it, SIGKILL in rounds until no one is left
    const hasKillFile = this.fs.exists(`${this.cgroup2Path}/cgroup.kill`);
    if (hasKillFile) await this.fs.writeAsync(`${this.cgroup2Path}/cgroup.kill`, '1');
    const deadline = Date.now() + this.killTimeoutMs;
    let round = 0;
    while (this.populated()) {
      if (Date.now() > deadline) {
        throw new AppError('INTERNAL', `cgroup ${this.cgroup2Path} still has processes after ${this.killTimeoutMs} ms of SIGKILL`, {
          retryable: true,
          details: { path: this.cgroup2Path, pids: this.pids() },
        });
      }
      if (!hasKillFile) for (const pid of this.pids()) this.signal(pid);
      await sleep(killPollMs(round++));
    }
  }

  private removing: Promise<void> | null = null;

  /** One removal at a time: a second caller (exit handling and `rm` racing) shares the first's. */
  remove(): Promise<void> {
    this.exitFiles.close();
    this.removing ??= (async () => {
      if (!this.fs.exists(this.cgroup2Path)) return;
      if (this.populated()) await this.kill();
      await removeCgroupDir(this.fs, this.cgroup2Path);
    })().finally(() => (this.removing = null));
    return this.removing;
  }

  /** cgroup.events counts descendants too, unlike cgroup.procs */
  private populated(): boolean {
    const events = `${this.cgroup2Path}/cgroup.events`;
    return this.fs.exists(events) ? readKeyed(this.fs, events, 'populated') === 1 : this.pids().length > 0;
  }
}

/** declarative: a limit left undefined is reset to the kernel default, so a reused cgroup ends up exactly as asked */
function writeV2Limits(cgfs: CgroupFs, dir: string, limits: CgroupLimits): void {
  cgfs.write(`${dir}/memory.max`, limits.memoryBytes === undefined ? 'max' : String(limits.memoryBytes));
  // no swap at all under a limit, so the limit is the sandbox's real footprint, as with v1 memsw = limit
  if (cgfs.exists(`${dir}/memory.swap.max`)) {
    cgfs.write(`${dir}/memory.swap.max`, limits.memoryBytes === undefined ? 'max' : '0');
  }
  const quota = limits.cpus === undefined ? 'max' : String(cpuQuotaUs(limits.cpus));
  cgfs.write(`${dir}/cpu.max`, `${quota} ${CPU_PERIOD_US}`);
  cgfs.write(`${dir}/cpu.weight`, String(limits.cpuWeight ?? 100));
  cgfs.write(`${dir}/pids.max`, limits.pidsMax === undefined ? 'max' : String(limits.pidsMax));
}

function words(text: string): Set<string> {
  return new Set(text.split(/\s+/).filter((w) => w !== ''));
}
