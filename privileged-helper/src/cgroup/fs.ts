/**
 * The drivers' doors to the kernel — cgroup files (CgroupFs, faked in unit tests: DESIGN rule 3) and
 * SIGKILL — plus the parsing and retry rules every cgroup file read or rmdir shares.
 *
 * Threat model: callers pass paths the drivers built under their own `ai-sandbox` parents from validated
 * names; nothing here interprets user input. Values go out in one write() each because cgroup files parse
 * one value per write: a split write would apply half a value or fail with EINVAL.
 */
import * as fs from 'node:fs';
import type { ExitStats } from './types.js';

/** a control file kept open: each read is one pread at offset 0, which kernfs answers with fresh content */
export interface CgroupFile {
  read(): string;
  close(): void;
}

export interface CgroupFs {
  read(path: string): string;
  /** open a control file for repeated reads; throws like open(2) */
  openRead(path: string): CgroupFile;
  /** one write() of the whole value; throws the kernel's errno (EINVAL, EBUSY, ...) */
  write(path: string, value: string): void;
  /** creates one directory; succeeds if it already exists */
  mkdir(path: string): void;
  /** throws ENOENT / EBUSY like rmdir(2) so callers decide what is idempotent */
  rmdir(path: string): void;
  exists(path: string): boolean;
  /** names of the child directories (child cgroups), not the control files */
  readdir(path: string): string[];
  /**
   * The operations that take the kernel's cgroup mutex, off the caller's thread: on hybrid hosts a
   * v1 migration holds that mutex for an RCU grace period (~7 ms), and a synchronous call would stall
   * the helper's whole event loop meanwhile.
   */
  mkdirAsync(path: string): Promise<void>;
  rmdirAsync(path: string): Promise<void>;
  writeAsync(path: string, value: string): Promise<void>;
}

export const realCgroupFs: CgroupFs = {
  read: (path) => fs.readFileSync(path, 'utf8'),
  openRead: (path) => {
    const fd = fs.openSync(path, fs.constants.O_RDONLY);
    let buf = Buffer.allocUnsafe(4096);
    return {
      read: () => {
        for (;;) {
          const n = fs.readSync(fd, buf, 0, buf.length, 0);
          if (n < buf.length) return buf.toString('utf8', 0, n);
          buf = Buffer.allocUnsafe(buf.length * 2);
        }
      },
      close: () => fs.closeSync(fd),
    };
  },
  write: (path, value) => {
    const fd = fs.openSync(path, fs.constants.O_WRONLY);
    try {
      const buf = Buffer.from(value);
      const n = fs.writeSync(fd, buf, 0, buf.length);
      if (n !== buf.length) throw new Error(`short write to ${path}: ${n} of ${buf.length} bytes`);
    } finally {
      fs.closeSync(fd);
    }
  },
  mkdir: (path) => {
    try {
      fs.mkdirSync(path);
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
    }
  },
  rmdir: (path) => fs.rmdirSync(path),
  mkdirAsync: async (path) => {
    try {
      await fs.promises.mkdir(path);
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
    }
  },
  rmdirAsync: (path) => fs.promises.rmdir(path),
  writeAsync: async (path, value) => {
    const fh = await fs.promises.open(path, fs.constants.O_WRONLY);
    try {
      const buf = Buffer.from(value);
      const { bytesWritten } = await fh.write(buf, 0, buf.length);
      if (bytesWritten !== buf.length) throw new Error(`short write to ${path}: ${bytesWritten} of ${buf.length} bytes`);
    } finally {
      await fh.close();
    }
  },
  exists: (path) => fs.existsSync(path),
  readdir: (path) =>
    fs
      .readdirSync(path, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name),
};

export function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
    ? err.code
    : undefined;
}

/** value of `key` in a flat-keyed file (`key value` per line: cpu.stat, memory.events, oom_control) */
export function readKeyed(cgfs: CgroupFs, path: string, key: string): number {
  return parseKeyed(cgfs.read(path), key);
}

function parseKeyed(text: string, key: string): number {
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k === key && v !== undefined) return Number(v);
  }
  return 0;
}

/** a single-number file, 0 when absent (e.g. memory.peak before 5.19) so stats never fail on old kernels */
export function readNumber(cgfs: CgroupFs, path: string): number {
  if (!cgfs.exists(path)) return 0;
  return parseNumber(cgfs.read(path));
}

function parseNumber(text: string): number {
  const n = Number(text.trim());
  return Number.isFinite(n) ? n : 0;
}

/**
 * The three files an exit report reads. Opened ahead (`open`: a warm slot's when it is made, a cold
 * sandbox's while its program runs), each read at the exit is one pread instead of a path lookup,
 * open, fstat, read and close: ~0.2 ms less between a program's end and its report. Without `open`,
 * or for a file that would not open (memory.peak before 5.19), it reads by path.
 */
export class ExitStatFiles {
  private files: Array<CgroupFile | null> | null = null;
  private closed = false;

  constructor(
    private readonly cgfs: CgroupFs,
    /** cpu.stat (usage_usec), the memory peak file, and the file holding `oom_kill` */
    private readonly paths: readonly [cpu: string, peak: string, oom: string],
  ) {}

  /** a no-op once closed: the cgroup is being removed */
  open(): void {
    if (this.closed) return;
    this.files ??= this.paths.map((p) => {
      try {
        return this.cgfs.openRead(p);
      } catch {
        return null;
      }
    });
  }

  read(): ExitStats {
    const [cpu, peak, oom] = this.paths;
    const [cpuFile, peakFile, oomFile] = this.files ?? [];
    return {
      cpuUsageNs: (cpuFile ? parseKeyed(cpuFile.read(), 'usage_usec') : readKeyed(this.cgfs, cpu, 'usage_usec')) * 1000,
      memoryPeakBytes: peakFile ? parseNumber(peakFile.read()) : readNumber(this.cgfs, peak),
      oomKills: oomFile ? parseKeyed(oomFile.read(), 'oom_kill') : readKeyed(this.cgfs, oom, 'oom_kill'),
    };
  }

  close(): void {
    for (const f of this.files ?? []) f?.close();
    this.files = null;
    this.closed = true;
  }
}

export function readPids(cgfs: CgroupFs, procsPath: string): number[] {
  if (!cgfs.exists(procsPath)) return [];
  let text: string;
  try {
    text = cgfs.read(procsPath);
  } catch (err) {
    // a cgroup being removed answers ENODEV (or is gone): it holds no process
    if (errnoOf(err) === 'ENODEV' || errnoOf(err) === 'ENOENT') return [];
    throw err;
  }
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(Number);
}

/** a SIGKILLed process usually leaves within a millisecond; back off to 10 ms for the ones stuck in the kernel */
export function killPollMs(round: number): number {
  return Math.min(2 ** round, 10);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * rmdir that tolerates a cgroup already gone, and retries EBUSY: the kernel reports a cgroup busy for a
 * moment after its last task exits (the exit is still being accounted) even though it is empty.
 */
export async function removeCgroupDir(cgfs: CgroupFs, path: string, attempts = 10): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      await cgfs.rmdirAsync(path);
      return;
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || i >= attempts) throw err;
      await sleep(10 * i);
    }
  }
}

/** SIGKILL that treats an already-exited process as done (it raced us out of the cgroup) */
export function sigkill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    if (errnoOf(err) !== 'ESRCH') throw err;
  }
}
