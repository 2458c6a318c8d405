/**
 * In-memory CgroupFs for unit tests (here and in the sandbox manager's): directories, files and a log of
 * every write, with the kernel behaviours the drivers depend on — control files appear on mkdir, rmdir of
 * a missing / non-empty cgroup fails with ENOENT / EBUSY, writes to a missing file fail with ENOENT.
 */
import type { CgroupFile, CgroupFs } from './fs.js';

export interface FakeCgroupFsOptions {
  /** control files (name → initial content) the kernel would create in a new cgroup at `dir` */
  controlFiles?: (dir: string) => Record<string, string>;
  /** runs before a write is stored; throw an errno error to refuse it as the kernel would */
  onWrite?: (path: string, value: string, fake: FakeCgroupFs) => void;
}

export class FakeCgroupFs implements CgroupFs {
  readonly files = new Map<string, string>();
  readonly dirs = new Set<string>();
  readonly writes: Array<[path: string, value: string]> = [];
  readonly opened = new Set<string>();

  constructor(private readonly opts: FakeCgroupFsOptions = {}) {}

  /** a directory that exists before the test (a mount point) with its files */
  addDir(dir: string, files: Record<string, string> = {}): void {
    this.dirs.add(dir);
    for (const [name, content] of Object.entries(files)) this.files.set(`${dir}/${name}`, content);
  }

  read(path: string): string {
    const content = this.files.get(path);
    if (content === undefined) throw errno('ENOENT', path);
    return content;
  }

  /** reads the live content each time, as a kept-open kernfs file does; `opened` counts what is open */
  openRead(path: string): CgroupFile {
    if (!this.files.has(path)) throw errno('ENOENT', path);
    this.opened.add(path);
    return { read: () => this.read(path), close: () => this.opened.delete(path) };
  }

  write(path: string, value: string): void {
    if (!this.files.has(path)) throw errno('ENOENT', path);
    this.opts.onWrite?.(path, value, this);
    this.writes.push([path, value]);
    this.files.set(path, value);
  }

  mkdir(path: string): void {
    if (this.dirs.has(path)) return;
    if (!this.dirs.has(dirname(path))) throw errno('ENOENT', path);
    this.addDir(path, this.opts.controlFiles?.(path) ?? {});
  }

  rmdir(path: string): void {
    if (!this.dirs.has(path)) throw errno('ENOENT', path);
    const procs = this.files.get(`${path}/cgroup.procs`) ?? '';
    if (this.readdir(path).length > 0 || procs.trim() !== '') throw errno('EBUSY', path);
    this.dirs.delete(path);
    for (const file of [...this.files.keys()]) if (dirname(file) === path) this.files.delete(file);
  }

  async mkdirAsync(path: string): Promise<void> {
    this.mkdir(path);
  }

  async rmdirAsync(path: string): Promise<void> {
    this.rmdir(path);
  }

  async writeAsync(path: string, value: string): Promise<void> {
    this.write(path, value);
  }

  exists(path: string): boolean {
    return this.dirs.has(path) || this.files.has(path);
  }

  readdir(path: string): string[] {
    if (!this.dirs.has(path)) throw errno('ENOENT', path);
    return [...this.dirs].filter((d) => dirname(d) === path).map((d) => d.slice(path.length + 1));
  }

  /** writes to files named `name` (e.g. 'memory.max'), in order */
  writesTo(name: string): Array<[path: string, value: string]> {
    return this.writes.filter(([p]) => p.endsWith(`/${name}`));
  }
}

export function errno(code: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${path}`), { code, path });
}

function dirname(path: string): string {
  return path.slice(0, path.lastIndexOf('/'));
}
