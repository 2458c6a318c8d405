/**
 * Where our cgroups live inside one hierarchy, shared by both drivers:
 *   <mount>/<parent>/sb-<name>                 a sandbox
 *   <mount>/<parent>/pool-<pool>/sb-<name>     a sandbox inside a pool (pools hold no processes)
 *
 * Threat model: names and the parent are validated against one pattern with no `/` and no leading dot,
 * so a joined path can never leave `<mount>/<parent>`. The `sb-` / `pool-` prefixes keep reconcile from
 * mistaking a directory someone else made for one of ours, and let both live side by side.
 */
import { AppError } from '../errors/app-error.js';
import type { CgroupFs } from './fs.js';
import type { CgroupLimits } from './types.js';

const NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
const SANDBOX_PREFIX = 'sb-';
const POOL_PREFIX = 'pool-';

export const DEFAULT_PARENT = 'ai-sandbox';

export function validateName(kind: 'sandbox' | 'pool' | 'parent', name: string): void {
  if (!NAME_RE.test(name)) {
    throw new AppError('INVALID_ARGUMENT', `invalid cgroup ${kind} name ${JSON.stringify(name)}`, {
      details: { kind, name, pattern: NAME_RE.source },
    });
  }
}

export function validateLimits(limits: CgroupLimits): void {
  const bad = (field: string, why: string): never => {
    throw new AppError('INVALID_ARGUMENT', `invalid cgroup limit ${field}: ${why}`, { details: { limits } });
  };
  const { memoryBytes, cpus, cpuWeight, pidsMax } = limits;
  // 1 MiB: below that the kernel OOM-kills a process before it reaches main()
  if (memoryBytes !== undefined && !(Number.isSafeInteger(memoryBytes) && memoryBytes >= 1 << 20)) {
    bad('memoryBytes', 'must be an integer number of bytes >= 1 MiB');
  }
  // 0.01 CPU = 1 ms per 100 ms period, the kernel's minimum quota
  if (cpus !== undefined && !(Number.isFinite(cpus) && cpus >= 0.01 && cpus <= 4096)) {
    bad('cpus', 'must be between 0.01 and 4096');
  }
  if (cpuWeight !== undefined && !(Number.isInteger(cpuWeight) && cpuWeight >= 1 && cpuWeight <= 10000)) {
    bad('cpuWeight', 'must be an integer between 1 and 10000');
  }
  if (pidsMax !== undefined && !(Number.isSafeInteger(pidsMax) && pidsMax >= 1)) {
    bad('pidsMax', 'must be a positive integer');
  }
}

/** one string per distinct set of limits: equal keys write the same files */
export function limitsKey(l: CgroupLimits): string {
  return `${l.memoryBytes}|${l.cpus}|${l.cpuWeight}|${l.pidsMax}`;
}

export function unavailable(message: string, details: Record<string, unknown>, cause?: unknown): AppError {
  return new AppError('CGROUP_UNAVAILABLE', message, { details, cause });
}

export const CPU_PERIOD_US = 100_000;

export function cpuQuotaUs(cpus: number): number {
  return Math.max(1000, Math.round(cpus * CPU_PERIOD_US));
}

/** paths of the parent, pools and sandboxes relative to one hierarchy's mount point */
export class CgroupLayout {
  constructor(readonly parent: string = DEFAULT_PARENT) {
    validateName('parent', parent);
  }

  poolRel(pool: string): string {
    validateName('pool', pool);
    return `${this.parent}/${POOL_PREFIX}${pool}`;
  }

  sandboxRel(name: string, pool: string | undefined): string {
    validateName('sandbox', name);
    const base = pool === undefined ? this.parent : this.poolRel(pool);
    return `${base}/${SANDBOX_PREFIX}${name}`;
  }

  /** pools found under any of the given mounts (a half-created pool after a crash is still ours to clean) */
  listPools(cgfs: CgroupFs, mounts: readonly string[]): string[] {
    const pools = new Set<string>();
    for (const mount of mounts) {
      for (const dir of childDirs(cgfs, `${mount}/${this.parent}`)) {
        const pool = stripPrefix(dir, POOL_PREFIX);
        if (pool !== undefined) pools.add(pool);
      }
    }
    return [...pools].sort();
  }

  list(cgfs: CgroupFs, mounts: readonly string[]): Array<{ name: string; pool: string | undefined }> {
    const seen = new Map<string, { name: string; pool: string | undefined }>();
    const scan = (rel: string, pool: string | undefined): void => {
      for (const mount of mounts) {
        for (const dir of childDirs(cgfs, `${mount}/${rel}`)) {
          const name = stripPrefix(dir, SANDBOX_PREFIX);
          if (name !== undefined) seen.set(`${pool ?? ''}/${name}`, { name, pool });
        }
      }
    };
    scan(this.parent, undefined);
    for (const pool of this.listPools(cgfs, mounts)) scan(this.poolRel(pool), pool);
    return [...seen.values()].sort(
      (a, b) => (a.pool ?? '').localeCompare(b.pool ?? '') || a.name.localeCompare(b.name),
    );
  }
}

function childDirs(cgfs: CgroupFs, path: string): string[] {
  return cgfs.exists(path) ? cgfs.readdir(path) : [];
}

function stripPrefix(dir: string, prefix: string): string | undefined {
  if (!dir.startsWith(prefix)) return undefined;
  const name = dir.slice(prefix.length);
  return NAME_RE.test(name) ? name : undefined;
}
