/**
 * CRIU through its command line, one process per operation (its RPC needs SOCK_SEQPACKET, which Node
 * cannot open): judged by exit status and its log, whose last error lines become the error message.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../errors/app-error.js';
import { criuVersion, findCriu } from '../doctor/doctor.js';

export const CRIU_RUN_DIR = '/run/criu';

export interface Criu {
  binary: string;
  version: string;
}

/**
 * `criu --version` of a binary, remembered while the file is unchanged (it costs ~25 ms of blocking
 * spawn). A failure is not remembered: the next call asks again.
 */
let known: { key: string; version: string } | null = null;

export function versionOf(binary: string): string | null {
  let key: string;
  try {
    const st = fs.statSync(binary);
    key = `${binary}:${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return null;
  }
  if (known?.key === key) return known.version;
  const version = criuVersion(binary);
  known = version ? { key, version } : null;
  return version;
}

/** The CRIU we use, or an UNSUPPORTED error that says how to get it. */
export function requireCriu(): Criu {
  const binary = findCriu();
  const version = binary ? versionOf(binary) : null;
  const [major = 0, minor = 0] = (version ?? '0').split('.').map(Number);
  if (!binary || !version || major < 4 || (major === 4 && minor < 2)) {
    throw new AppError('UNSUPPORTED', `snapshots need CRIU 4.2 or newer${version ? ` (found ${version})` : ''}: run \`npm run setup\`, which builds it from Debian's source into /opt/ai-sandbox/criu`);
  }
  return { binary, version };
}

/** CRIU keeps its kernel-feature cache only on a tmpfs: without it every dump re-probes (~3x slower). */
export async function ensureRunDir(): Promise<void> {
  fs.mkdirSync(CRIU_RUN_DIR, { recursive: true, mode: 0o700 });
  const mounted = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === CRIU_RUN_DIR);
  if (!mounted) await run('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0700', 'ai-sandbox-criu', CRIU_RUN_DIR]);
}

function run(cmd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 16 << 20 }, (err, _stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr: String(stderr) });
    });
  });
}

export function logTail(log: string, lines = 3): string {
  try {
    const text = fs.readFileSync(log, 'utf8').split('\n');
    const errors = text.filter((l) => /Error|error|failed|Failed/.test(l));
    return (errors.length ? errors : text).filter(Boolean).slice(-lines).map((l) => l.replace(/^\(\d+\.\d+\)\s*/, '')).join(' | ');
  } catch {
    return 'no log';
  }
}

export interface ExternalMount {
  /** where it is mounted in the sandbox */
  target: string;
  key: string;
  /** the host path bound there */
  source: string;
}

export interface DumpOptions {
  pid: number;
  imagesDir: string;
  externalMounts: ExternalMount[];
  /** keep the tree stopped after the dump (the caller archives the filesystem, then continues it) */
  leaveStopped: boolean;
  /**
   * Dump the network namespace as external under this key (a restore gets a fresh one from the
   * launcher's pool; sockets are still restored into it). Only for a sandbox's own private namespace
   * with nothing but lo, which no one outside the frozen tree can reach: so no network lock is needed.
   */
  netKey?: string | undefined;
}

export async function dump(criu: Criu, o: DumpOptions): Promise<void> {
  const log = path.join(o.imagesDir, 'dump.log');
  // --manage-cgroups=ignore: a restore puts the tree in the new sandbox's cgroups anyway (~35 ms less)
  const args = ['dump', '-t', String(o.pid), '--images-dir', o.imagesDir, '-o', log, '-v4', '--tcp-established', '--file-locks', '--manage-cgroups=ignore'];
  if (o.netKey) {
    const inode = /^net:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${o.pid}/ns/net`))?.[1];
    if (!inode) throw new AppError('SNAPSHOT_FAILED', `cannot read the network namespace of pid ${o.pid}`);
    args.push('--external', `net[${inode}]:${o.netKey}`, '--network-lock', 'skip');
  } else {
    args.push('--network-lock', 'nftables');
  }
  for (const m of o.externalMounts) args.push('--external', `mnt[${m.target}]:${m.key}`);
  if (o.leaveStopped) args.push('--leave-stopped');
  const r = await run(criu.binary, args);
  if (r.code !== 0) throw new AppError('SNAPSHOT_FAILED', `criu dump failed: ${logTail(log)} (log: ${log})`, { details: { log } });
}

/** The key a host-bound mount is dumped under (letters, digits and dashes, as the launcher requires). */
export function externalKey(target: string): string {
  return `ext${target.replace(/[^a-zA-Z0-9]+/g, '-')}`;
}
