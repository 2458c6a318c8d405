import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { SnapshotMeta } from './meta.js';
import { SnapshotStore } from './store.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function store(): SnapshotStore {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'snaps-'));
  dirs.push(d);
  return new SnapshotStore(d);
}

async function make(s: SnapshotStore, opts: { parent?: string | null; label?: string | null; bytes?: number; createdAt?: string } = {}): Promise<SnapshotMeta> {
  const id = s.newId();
  const dir = s.stage(id);
  fs.writeFileSync(path.join(dir, 'img', 'pages-1.img'), Buffer.alloc(opts.bytes ?? 1000, 7));
  fs.writeFileSync(path.join(dir, 'upper.tar'), 'upper layer');
  return s.commit({
    version: 1,
    id,
    sandbox: 'box',
    parent: opts.parent ?? null,
    createdAt: opts.createdAt ?? new Date().toISOString(),
    label: opts.label ?? null,
    spec: { command: ['python3'], limits: {}, mounts: [], env: {}, allowListen: false },
    leaveRunning: false,
    criuVersion: '4.2.1',
    pipes: { stdin: 'pipe:[1]', stdout: 'pipe:[2]', stderr: 'pipe:[3]', status: 'pipe:[4]' },
    externalMounts: [],
    netKey: null,
    processes: [{ pid: 1, ppid: 0, comm: 'init', cmdline: '' }],
    memoryBytes: 1000,
    timings: { dumpMs: 1, archiveMs: 1 },
  });
}

describe('SnapshotStore', () => {
  it('publishes a snapshot only when complete, with sizes and checksums', async () => {
    const s = store();
    const m = await make(s, { bytes: 4096 });
    expect(m.sizes).toEqual({ images: 4096, upper: 11, total: 4107 });
    expect(m.timings).toEqual({ dumpMs: 1, archiveMs: 1, commitMs: expect.any(Number) });
    expect(Object.keys(m.files)).toEqual(['img/pages-1.img', 'upper.tar']);
    expect(s.listInfo().map((i) => i.id)).toEqual([m.id]);
    const staged = s.stage('s-00000000ff');
    expect(fs.existsSync(staged)).toBe(true);
    expect(s.listInfo()).toHaveLength(1);
    new SnapshotStore(s.root); // a new store removes what a crash left half-built
    expect(fs.existsSync(staged)).toBe(false);
  });

  it('refuses a corrupt snapshot, naming the file and offering the parent', async () => {
    const s = store();
    const parent = await make(s);
    const child = await make(s, { parent: parent.id });
    await expect(s.verify(child.id)).resolves.toMatchObject({ id: child.id });
    const f = path.join(s.dir(child.id), 'img', 'pages-1.img');
    const b = fs.readFileSync(f);
    b[10] = b[10]! ^ 0xff;
    fs.writeFileSync(f, b);
    await expect(s.verify(child.id)).rejects.toThrow(`snapshot ${child.id} is corrupt: img/pages-1.img does not match its checksum. Its parent ${parent.id} can be restored instead`);
    fs.rmSync(path.join(s.dir(child.id), 'upper.tar'));
    await expect(s.verify(child.id)).rejects.toMatchObject({ code: 'DATA_CORRUPT' });
    fs.writeFileSync(path.join(s.dir(parent.id), 'meta.json'), '{"version":1');
    expect(() => s.get(parent.id)).toThrow(/meta.json cannot be read/);
    expect(() => s.get('s-zzz')).toThrow(/no snapshot s-zzz/);
  });

  it('checksums a file of several read chunks whole: a flipped byte past the first MiB is caught', async () => {
    const s = store();
    const bytes = (5 << 20) / 2; // 2.5 MiB: two full chunks and a partial one
    const m = await make(s, { bytes });
    const data = Buffer.alloc(bytes, 7);
    expect(m.files['img/pages-1.img']).toEqual({ size: bytes, sha256: createHash('sha256').update(data).digest('hex') });
    const f = path.join(s.dir(m.id), 'img', 'pages-1.img');
    data[bytes - 3] = 8;
    fs.writeFileSync(f, data);
    await expect(s.verify(m.id)).rejects.toThrow(/img\/pages-1.img does not match its checksum/);
  });

  it('hashes an untouched snapshot once, and again after any change, even one that keeps size and mtime', async () => {
    const s = store();
    const m = await make(s);
    const f = path.join(s.dir(m.id), 'img', 'pages-1.img');
    const before = fs.statSync(f);
    await expect(s.verify(m.id)).resolves.toMatchObject({ id: m.id }); // from the commit's hashes
    const b = fs.readFileSync(f);
    b[0] = b[0]! ^ 1;
    fs.writeFileSync(f, b);
    fs.utimesSync(f, before.atime, before.mtime); // same size, same mtime: only ctime tells
    await expect(s.verify(m.id)).rejects.toThrow(/img\/pages-1.img does not match its checksum/);
    await expect(new SnapshotStore(s.root).verify(m.id)).rejects.toMatchObject({ code: 'DATA_CORRUPT' });
  });

  it('collects garbage oldest first, never a labelled snapshot, a parent, or one it must keep', async () => {
    const s = store();
    const t = (n: number) => new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString();
    const a = await make(s, { createdAt: t(1) });
    const b = await make(s, { createdAt: t(2), parent: a.id });
    const c = await make(s, { createdAt: t(3), label: 'keep me' });
    const d = await make(s, { createdAt: t(4) });
    const e = await make(s, { createdAt: t(5) });
    const removed = s.gc(0, new Set([e.id]));
    expect(removed).toEqual([b.id, a.id, d.id]);
    expect(s.list().map((m) => m.id).sort()).toEqual([c.id, e.id].sort());
  });
});
