/**
 * Where one helper instance keeps its things. The daemon is the instance "daemon"; `ai-sandbox run`
 * without a daemon starts an embedded instance "cli-<pid>". Every instance owns a run directory (its
 * launcher's tmpfs mounts and sandbox records), a cgroup parent, and a log directory, so instances never
 * step on each other and a later one can recognise and clean up a dead one.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { NetConfig } from './network/network.js';
import { tableName } from './network/rules.js';

export interface HelperConfig {
  instance: string;
  /** /run/ai-sandbox: the socket, and instances/<name>/ below it */
  runRoot: string;
  /** /var/lib/ai-sandbox: what outlives a reboot */
  stateRoot: string;
  socketPath: string | null;
  socketGroup: string;
  /** cgroup parent directory name in every hierarchy */
  cgroupParent: string;
  launcherBinary: string;
  /** the eBPF tracer (default: ai-sandbox-tracer next to the launcher) */
  tracerBinary?: string | undefined;
  /** sandbox inits kept prepared ahead of time (see sandbox/warm-pool.ts) */
  warmSlots: number;
  /** networked sandboxes: address range, interface prefix, nftables table, slots made ahead */
  net: NetConfig;
}

export const DEFAULT_NET_RANGE = '10.231.0.0/16';
export const DEFAULT_NET_PREFIX = 'aisb';

function netConfig(instance: string, poolSize: number): NetConfig {
  return {
    range: process.env.AI_SANDBOX_NET_RANGE ?? DEFAULT_NET_RANGE,
    prefix: process.env.AI_SANDBOX_NET_PREFIX ?? DEFAULT_NET_PREFIX,
    table: process.env.AI_SANDBOX_NET_TABLE ?? tableName(instance),
    poolSize,
  };
}

export const DEFAULT_RUN_ROOT = '/run/ai-sandbox';
export const DEFAULT_STATE_ROOT = '/var/lib/ai-sandbox';
export const DEFAULT_SOCKET = '/run/ai-sandbox/helper.sock';
export const SOCKET_GROUP = 'ai-sandbox';

export function defaultLauncherBinary(): string {
  // src/config.ts and dist/config.js both sit one level below privileged-helper/.
  return fileURLToPath(new URL('../native/build/ai-sandbox-launcher', import.meta.url));
}

export function instanceDir(cfg: Pick<HelperConfig, 'runRoot' | 'instance'>): string {
  return path.join(cfg.runRoot, 'instances', cfg.instance);
}

export function daemonConfig(overrides: Partial<HelperConfig> = {}): HelperConfig {
  return {
    instance: 'daemon',
    runRoot: process.env.AI_SANDBOX_RUN_ROOT ?? DEFAULT_RUN_ROOT,
    stateRoot: process.env.AI_SANDBOX_STATE_ROOT ?? DEFAULT_STATE_ROOT,
    socketPath: process.env.AI_SANDBOX_SOCKET ?? DEFAULT_SOCKET,
    socketGroup: SOCKET_GROUP,
    cgroupParent: process.env.AI_SANDBOX_CGROUP_PARENT ?? 'ai-sandbox',
    launcherBinary: process.env.AI_SANDBOX_LAUNCHER ?? defaultLauncherBinary(),
    tracerBinary: process.env.AI_SANDBOX_TRACER,
    warmSlots: Number(process.env.AI_SANDBOX_WARM_SLOTS ?? 4),
    net: netConfig('daemon', Number(process.env.AI_SANDBOX_NET_POOL ?? 2)),
    ...overrides,
  };
}

export function embeddedConfig(): HelperConfig {
  const base = daemonConfig();
  // One sandbox, started at once: a warm slot would only add work.
  const instance = `cli-${process.pid}`;
  return { ...base, instance, socketPath: null, cgroupParent: `${base.cgroupParent}-cli-${process.pid}`, warmSlots: 0, net: { ...netConfig(instance, 0), table: tableName(instance) } };
}
