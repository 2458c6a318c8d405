/**
 * What changed between two snapshots: files of the sandbox's writable layer (added, changed, removed,
 * including deletions of host files recorded as whiteouts), its processes, and its memory.
 */
import path from 'node:path';
import type { SnapshotDiffResult } from '../protocol/schema.js';
import type { ProcessEntry, SnapshotMeta } from './meta.js';
import { readTar, type TarEntry } from './tar.js';

export interface FileChange {
  path: string;
  kind: 'added' | 'changed' | 'removed';
  /** for changed: what differs */
  what?: string[];
  sizeBefore?: number;
  sizeAfter?: number;
}

export type SnapshotDiff = SnapshotDiffResult;

function present(entries: TarEntry[]): Map<string, TarEntry> {
  return new Map(entries.filter((e) => e.type !== 'whiteout').map((e) => [e.path, e]));
}

export function diffLayers(a: TarEntry[], b: TarEntry[]): FileChange[] {
  const before = present(a);
  const after = present(b);
  const out: FileChange[] = [];
  for (const [p, e] of after) {
    const old = before.get(p);
    if (!old) {
      out.push({ path: `/${p}`, kind: 'added', sizeAfter: e.size });
      continue;
    }
    const what: string[] = [];
    if (old.type !== e.type) what.push('type');
    if (old.sha256 !== e.sha256) what.push('content');
    if (old.mode !== e.mode) what.push('mode');
    if (old.linkTarget !== e.linkTarget) what.push('link');
    if (what.length) out.push({ path: `/${p}`, kind: 'changed', what, sizeBefore: old.size, sizeAfter: e.size });
  }
  for (const [p, e] of before) if (!after.has(p)) out.push({ path: `/${p}`, kind: 'removed', sizeBefore: e.size });
  // a whiteout only in B: a file of the base (host or rootfs) deleted since A
  const aWhiteouts = new Set(a.filter((e) => e.type === 'whiteout').map((e) => e.path));
  for (const e of b) if (e.type === 'whiteout' && !aWhiteouts.has(e.path) && !before.has(e.path)) out.push({ path: `/${e.path}`, kind: 'removed' });
  return out.sort((x, y) => x.path.localeCompare(y.path));
}

function processKey(p: ProcessEntry): string {
  return `${p.comm}\0${p.cmdline}`;
}

export function diffProcesses(a: ProcessEntry[], b: ProcessEntry[]): SnapshotDiff['processes'] {
  const count = (list: ProcessEntry[]) => {
    const m = new Map<string, ProcessEntry[]>();
    for (const p of list) m.set(processKey(p), [...(m.get(processKey(p)) ?? []), p]);
    return m;
  };
  const ca = count(a);
  const cb = count(b);
  const started: ProcessEntry[] = [];
  const ended: ProcessEntry[] = [];
  for (const [k, list] of cb) started.push(...list.slice(ca.get(k)?.length ?? 0));
  for (const [k, list] of ca) ended.push(...list.slice(cb.get(k)?.length ?? 0));
  return { started, ended };
}

export function diffSnapshots(a: SnapshotMeta, aDir: string, b: SnapshotMeta, bDir: string): SnapshotDiff {
  return {
    from: a.id,
    to: b.id,
    files: diffLayers(readTar(path.join(aDir, 'upper.tar')), readTar(path.join(bDir, 'upper.tar'))),
    processes: diffProcesses(a.processes, b.processes),
    memory: { beforeBytes: a.memoryBytes, afterBytes: b.memoryBytes, deltaBytes: b.memoryBytes - a.memoryBytes },
  };
}
