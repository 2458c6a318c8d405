/**
 * Meaning checks on a sandbox spec, beyond its shape: host paths a client may bind into a sandbox, and
 * the defaults a spec is completed with.
 *
 * Threat model: a member of the `ai-sandbox` group chooses every field of the spec. Binding host paths is
 * the one way to hand a sandbox host data, so sources that hold host secrets or the helper's own state,
 * and writable binds of system directories, are refused; targets may not shadow the sandbox's
 * /proc, /dev or /sys.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../errors/app-error.js';
import type { SandboxSpec } from '../protocol/schema.js';
import { SANDBOX_GID, SANDBOX_HOME, SANDBOX_UID } from './rootfs.js';

export const DEFAULTS = {
  memoryBytes: 1024 * 1024 * 1024,
  pidsMax: 1024,
  tmpfsBytes: 1024 * 1024 * 1024,
  path: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
} as const;

/** Never bound into a sandbox, even read-only (they or their children). */
const SECRET_SOURCES = ['/root', '/etc/shadow', '/etc/gshadow', '/etc/ssh', '/etc/sudoers', '/boot', '/proc', '/sys', '/dev', '/run', '/var/lib/ai-sandbox'];
/** Never bound writable (they or their children); `/` itself is refused in every mode. */
const SYSTEM_SOURCES = ['/etc', '/usr', '/bin', '/sbin', '/lib', '/lib64', '/var', '/opt'];
const RESERVED_TARGETS = ['/proc', '/dev', '/sys'];

function within(p: string, base: string): boolean {
  return p === base || p.startsWith(base === '/' ? '/' : `${base}/`);
}

export function checkMounts(mounts: SandboxSpec['mounts']): void {
  for (const m of mounts) {
    let real: string;
    try {
      real = fs.realpathSync(m.source);
    } catch {
      throw new AppError('INVALID_ARGUMENT', `mount source ${m.source} does not exist on the host`, { details: { mount: m } });
    }
    const target = path.posix.normalize(m.target);
    if (real === '/') throw new AppError('INVALID_ARGUMENT', 'the host root cannot be mounted into a sandbox', { details: { mount: m } });
    const secret = SECRET_SOURCES.find((s) => within(real, s) || within(s, real));
    if (secret) throw new AppError('INVALID_ARGUMENT', `mount source ${m.source} exposes ${secret}, which sandboxes may not see`, { details: { mount: m } });
    const system = SYSTEM_SOURCES.find((s) => within(real, s) || within(s, real));
    if (system && !m.readOnly) {
      throw new AppError('INVALID_ARGUMENT', `mount source ${m.source} is a system directory: mount it read-only (${m.source}:${m.target}:ro)`, { details: { mount: m } });
    }
    if (target === '/' || RESERVED_TARGETS.some((t) => within(target, t))) {
      throw new AppError('INVALID_ARGUMENT', `mount target ${m.target} is reserved by the sandbox`, { details: { mount: m } });
    }
  }
}

export function checkRootfs(rootfs: string | undefined): void {
  if (rootfs === undefined) return;
  let st: fs.Stats;
  try {
    st = fs.statSync(rootfs);
  } catch {
    throw new AppError('INVALID_ARGUMENT', `rootfs ${rootfs} does not exist`, { details: { rootfs } });
  }
  if (!st.isDirectory()) throw new AppError('INVALID_ARGUMENT', `rootfs ${rootfs} is not a directory`, { details: { rootfs } });
  if (fs.realpathSync(rootfs) === '/') throw new AppError('INVALID_ARGUMENT', 'rootfs / is the host root: leave --rootfs out to get the default read-only view of the host system', { details: { rootfs } });
}

export interface ResolvedIdentity {
  uid: number;
  gid: number;
  workdir: string;
  env: string[];
}

export function resolveIdentity(
  spec: Pick<SandboxSpec, 'user' | 'workdir' | 'env' | 'tty'>,
  hostname: string,
): ResolvedIdentity {
  const uid = spec.user?.uid ?? SANDBOX_UID;
  const gid = spec.user?.gid ?? SANDBOX_GID;
  const env: Record<string, string> = {
    PATH: DEFAULTS.path,
    HOME: uid === 0 ? '/root' : SANDBOX_HOME,
    HOSTNAME: hostname,
    LANG: 'C.UTF-8',
    ...(spec.tty ? { TERM: 'xterm-256color' } : {}),
    ...spec.env,
  };
  return {
    uid,
    gid,
    workdir: spec.workdir ?? (uid === 0 ? '/root' : SANDBOX_HOME),
    env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
  };
}
