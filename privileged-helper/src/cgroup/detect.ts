/**
 * Picks the cgroup driver for this host from the mount table: pure cgroup2 first (most user machines),
 * else the hybrid layout (v1 memory/cpu/pids plus a cgroup2 mount), else a CGROUP_UNAVAILABLE that names
 * what is missing — `ai-sandbox doctor` shows that message as is.
 *
 * Threat model: reads /proc/self/mounts and cgroup.controllers only; the driver it returns is not yet
 * initialised, so detection alone never writes to any cgroup.
 */
import * as fs from 'node:fs';
import { realCgroupFs, type CgroupFs } from './fs.js';
import { DEFAULT_HYBRID_MOUNTS, HybridCgroupDriver, type HybridMounts } from './hybrid.js';
import { unavailable } from './layout.js';
import type { CgroupDriver } from './types.js';
import { V2CgroupDriver } from './v2.js';

export interface DetectOptions {
  /** parent cgroup name in every hierarchy; tests use `ai-sandbox-test-<pid>` */
  parent?: string;
  /** contents of /proc/self/mounts, for tests */
  mounts?: string;
  fs?: CgroupFs;
  signal?: (pid: number) => void;
}

interface Mount {
  path: string;
  type: string;
  options: string[];
}

const V1_CONTROLLERS = ['memory', 'cpu', 'pids'] as const;
const V2_CONTROLLERS = ['cpu', 'memory', 'pids'];
const PREFERRED_V2 = '/sys/fs/cgroup';

export function detectCgroupDriver(opts: DetectOptions = {}): CgroupDriver {
  const cgfs = opts.fs ?? realCgroupFs;
  const mounts = parseMounts(opts.mounts ?? fs.readFileSync('/proc/self/mounts', 'utf8'));
  const common = { parent: opts.parent, fs: cgfs, signal: opts.signal };

  // /sys/fs/cgroup first: a cgroup2 mounted elsewhere with controllers is a rarer, deliberate setup
  const cgroup2 = mounts
    .filter((m) => m.type === 'cgroup2')
    .sort((a, b) => Number(b.path === PREFERRED_V2) - Number(a.path === PREFERRED_V2));
  const v2Missing = new Map<string, string[]>();
  for (const m of cgroup2) {
    const missing = controllersMissing(cgfs, m.path);
    if (missing.length === 0) return new V2CgroupDriver({ ...common, root: m.path });
    v2Missing.set(m.path, missing);
  }

  const v1 = new Map<string, string>();
  for (const m of mounts.filter((m) => m.type === 'cgroup')) {
    for (const c of V1_CONTROLLERS) if (m.options.includes(c) && !v1.has(c)) v1.set(c, m.path);
  }
  const v1Missing = V1_CONTROLLERS.filter((c) => !v1.has(c));
  const unified = cgroup2.find((m) => m.path === DEFAULT_HYBRID_MOUNTS.unified) ?? cgroup2[0];
  const [memory, cpu, pids] = V1_CONTROLLERS.map((c) => v1.get(c));
  if (memory !== undefined && cpu !== undefined && pids !== undefined && unified !== undefined) {
    const hybridMounts: HybridMounts = { memory, cpu, pids, unified: unified.path };
    return new HybridCgroupDriver({ ...common, mounts: hybridMounts });
  }

  const reasons: string[] = [];
  if (cgroup2.length === 0) reasons.push('no cgroup2 filesystem is mounted');
  for (const [path, missing] of v2Missing) reasons.push(`cgroup2 at ${path} lacks ${missing.join(', ')}`);
  if (v1Missing.length > 0) reasons.push(`cgroup v1 hierarchies for ${v1Missing.join(', ')} are not mounted`);
  throw unavailable(
    `no usable cgroups: ${reasons.join('; ')}. Use a kernel with cgroup2 and the cpu, memory and pids ` +
      `controllers (systemd.unified_cgroup_hierarchy=1), or mount cgroup v1 memory, cpu and pids plus a cgroup2`,
    { cgroup2: cgroup2.map((m) => m.path), v1: Object.fromEntries(v1), v1Missing },
  );
}

function controllersMissing(cgfs: CgroupFs, root: string): string[] {
  const file = `${root}/cgroup.controllers`;
  const have = new Set(cgfs.exists(file) ? cgfs.read(file).split(/\s+/) : []);
  return V2_CONTROLLERS.filter((c) => !have.has(c));
}

/** /proc/self/mounts escapes space, tab, newline and backslash in paths as octal (`\040`) */
export function parseMounts(text: string): Mount[] {
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    const [, path, type, options] = line.split(' ');
    if (path === undefined || type === undefined || options === undefined) continue;
    mounts.push({ path: unescape(path), type, options: options.split(',') });
  }
  return mounts;
}
