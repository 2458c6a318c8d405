import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { diffLayers, diffProcesses } from './diff.js';
import { readTar } from './tar.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** Archive a directory the way checkpoints do (GNU tar with PAX xattrs). */
function archive(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'layer-'));
  dirs.push(root);
  const src = path.join(root, 'src');
  fs.mkdirSync(src);
  for (const [p, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(src, p)), { recursive: true });
    fs.writeFileSync(path.join(src, p), content);
  }
  const out = path.join(root, 'upper.tar');
  execFileSync('tar', ['--xattrs', "--xattrs-include=*", '--numeric-owner', '-C', src, '-cf', out, '.']);
  return out;
}

describe('snapshot diff', () => {
  it('reads GNU tar archives, including long names, with content hashes', () => {
    const long = `${'d'.repeat(120)}/${'f'.repeat(120)}.txt`;
    const entries = readTar(archive({ 'a.txt': 'hello', [long]: 'deep' }));
    const a = entries.find((e) => e.path === 'a.txt');
    expect(a).toMatchObject({ type: 'file', size: 5 });
    expect(a?.sha256).toBe('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    expect(entries.find((e) => e.path === long)).toMatchObject({ type: 'file', size: 4 });
  });

  it('lists added, changed and removed files', () => {
    const a = readTar(archive({ 'home/x.txt': 'one', 'home/gone.txt': 'bye', 'tmp/same': 's' }));
    const b = readTar(archive({ 'home/x.txt': 'two!', 'home/new.txt': 'hi', 'tmp/same': 's' }));
    expect(diffLayers(a, b)).toEqual([
      { path: '/home/gone.txt', kind: 'removed', sizeBefore: 3 },
      { path: '/home/new.txt', kind: 'added', sizeAfter: 2 },
      { path: '/home/x.txt', kind: 'changed', what: ['content'], sizeBefore: 3, sizeAfter: 4 },
    ]);
  });

  it('treats a new whiteout as a deleted base file, and diffs processes as multisets', () => {
    const wo = { path: 'etc/hosts', type: 'whiteout' as const, mode: 0, size: 0, sha256: null, linkTarget: null, opaque: false };
    expect(diffLayers([], [wo])).toEqual([{ path: '/etc/hosts', kind: 'removed' }]);
    const p = (pid: number, comm: string) => ({ pid, ppid: 1, comm, cmdline: comm });
    expect(diffProcesses([p(1, 'init'), p(2, 'python3')], [p(1, 'init'), p(2, 'python3'), p(3, 'sleep')])).toEqual({ started: [p(3, 'sleep')], ended: [] });
  });
});
