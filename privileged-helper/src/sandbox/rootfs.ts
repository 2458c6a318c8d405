/**
 * The default sandbox root: an overlay of a small "skeleton" layer over the host's `/`. The skeleton
 * decides what the sandbox may see of the host: the system directories (`/usr` and the merged-usr links)
 * show through read-only (writes copy up into the sandbox's tmpfs); every other top-level entry is an
 * empty opaque directory or a whiteout, and `/etc` is an opaque directory holding copies of an allowlist
 * of files (no shadow, no ssh keys, no host users). Allowlisting, not denylisting: a directory the host
 * adds later stays hidden.
 *
 * Threat model: the skeleton is written by the helper only, from host files it chose; the sandbox sees it
 * only as a read-only lower layer.
 */
import fs from 'node:fs';
import path from 'node:path';

/** Top-level host entries that show through. */
export const HOST_VISIBLE = new Set(['usr', 'bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']);

/** /etc entries copied into the skeleton (files, links, or whole directories). */
export const ETC_ALLOWLIST = [
  'alternatives', 'bash.bashrc', 'ca-certificates', 'ca-certificates.conf', 'debian_version', 'environment',
  'gai.conf', 'host.conf', 'inputrc', 'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'localtime', 'magic',
  'magic.mime', 'mime.types', 'networks', 'nsswitch.conf', 'os-release', 'profile', 'protocols', 'python3',
  'python3.11', 'services', 'shells', 'ssl', 'timezone', 'xattr.conf',
];
/** never copied even inside an allowlisted directory */
const ETC_NEVER = new Set(['ssl/private']);

/** Directories a sandbox expects, empty unless filled below, whether or not the host has them. */
const SKELETON_DIRS = ['etc', 'tmp', 'home', 'root', 'var', 'run', 'proc', 'dev', 'sys', 'mnt', 'opt', 'srv'];

export const SANDBOX_UID = 65534;
export const SANDBOX_GID = 65534;
export const SANDBOX_HOME = '/home/sandbox';

export interface Marker {
  mark(absPath: string, kind: 'whiteout' | 'opaque'): Promise<void>;
}

/** Build the skeleton in `dir` (which must be on its own filesystem, not the host root's). */
export async function buildHostSkeleton(dir: string, marker: Marker, hostRoot = '/'): Promise<void> {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { mode: 0o755 });
  for (const entry of fs.readdirSync(hostRoot, { withFileTypes: true })) {
    if (HOST_VISIBLE.has(entry.name)) continue;
    const target = path.join(dir, entry.name);
    // Standard directories stay (empty); anything else the host has at its top level is not even named.
    if (entry.isDirectory() && SKELETON_DIRS.includes(entry.name)) {
      fs.mkdirSync(target, { mode: 0o755 });
      await marker.mark(target, 'opaque');
    } else {
      await marker.mark(target, 'whiteout');
    }
  }
  for (const d of SKELETON_DIRS) {
    const target = path.join(dir, d);
    if (!fs.existsSync(target)) {
      fs.mkdirSync(target, { mode: 0o755 });
      await marker.mark(target, 'opaque');
    }
  }
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777);
  fs.chmodSync(path.join(dir, 'root'), 0o700);
  for (const d of ['var/tmp', 'var/lib', 'var/cache', 'var/log']) fs.mkdirSync(path.join(dir, d), { recursive: true, mode: 0o755 });
  fs.chmodSync(path.join(dir, 'var/tmp'), 0o1777);
  const home = path.join(dir, SANDBOX_HOME);
  fs.mkdirSync(home, { recursive: true, mode: 0o755 });
  fs.chownSync(home, SANDBOX_UID, SANDBOX_GID);
  writeEtc(path.join(dir, 'etc'), path.join(hostRoot, 'etc'));
}

function writeEtc(etc: string, hostEtc: string): void {
  for (const name of ETC_ALLOWLIST) {
    const src = path.join(hostEtc, name);
    if (!fs.existsSync(src) && !isSymlink(src)) continue;
    fs.cpSync(src, path.join(etc, name), {
      recursive: true,
      verbatimSymlinks: true,
      preserveTimestamps: true,
      filter: (from) => !ETC_NEVER.has(path.relative(hostEtc, from)),
    });
  }
  fs.writeFileSync(
    path.join(etc, 'passwd'),
    `root:x:0:0:root:/root:/bin/sh\nsandbox:x:${SANDBOX_UID}:${SANDBOX_GID}:ai-sandbox user:${SANDBOX_HOME}:/bin/sh\n`,
  );
  fs.writeFileSync(path.join(etc, 'group'), `root:x:0:\nsandbox:x:${SANDBOX_GID}:\n`);
  fs.writeFileSync(path.join(etc, 'hosts'), '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n');
  // No resolver the sandbox could use: with no network there is nothing to ask.
  fs.writeFileSync(path.join(etc, 'resolv.conf'), '');
  fs.writeFileSync(path.join(etc, 'hostname'), 'sandbox\n');
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
