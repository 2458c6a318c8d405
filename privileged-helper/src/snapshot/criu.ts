/**
 * The CRIU we use (version, where), the run dir its feature cache needs, and the keys of external
 * mounts. CRIU itself runs from the launcher, one process per operation (its RPC needs SOCK_SEQPACKET,
 * which Node cannot open): `criu dump` in a DUMP's dumper (native/launcher/dump.c), `criu restore` in
 * a RESTORE's restorer (restore.c), each judged by its exit status and the last error lines of its log.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
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

const TMPFS_MAGIC = 0x01021994;

/** CRIU keeps its kernel-feature cache only on a tmpfs: without it every dump re-probes (~3x slower). */
export async function ensureRunDir(): Promise<void> {
  // every checkpoint and restore asks: statfs is CRIU's own test (kerndat.c) and costs ~20 µs, the
  // mountinfo scan below ~0.5 ms
  try {
    if (fs.statfsSync(CRIU_RUN_DIR).type === TMPFS_MAGIC) return;
  } catch {
    // not there yet
  }
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

export interface ExternalMount {
  /** where it is mounted in the sandbox */
  target: string;
  key: string;
  /** the host path bound there */
  source: string;
}

/** The key a host-bound mount is dumped under (letters, digits and dashes, as the launcher requires). */
export function externalKey(target: string): string {
  return `ext${target.replace(/[^a-zA-Z0-9]+/g, '-')}`;
}
