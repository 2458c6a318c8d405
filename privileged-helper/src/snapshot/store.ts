/**
 * Snapshots on disk: `<root>/<id>/{meta.json, img/…, upper.tar}`. A snapshot is built in `.tmp-<id>` and
 * renamed into place only when complete, so a crash mid-checkpoint leaves no half snapshot (the next
 * store open removes the leftovers). Every file's sha256 is in the metadata and is verified before a
 * restore; a mismatch names the snapshot and the file and points at the parent.
 *
 * Hashing a snapshot costs tens of ms (and seconds for a large one), so the store remembers, for the
 * helper's lifetime, each file's inode, size, mtime and ctime as it was when last hashed (at commit or
 * verify): a file that was written, replaced or truncated since is hashed again; an untouched one is
 * not (a fork of N copies hashes once). A new helper hashes everything again on first use.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../errors/app-error.js';
import { infoOf, snapshotMetaSchema, SNAPSHOT_ID_RE, type SnapshotInfo, type SnapshotMeta } from './meta.js';

export class SnapshotStore {
  /** snapshot id → the stat signature of its files when their checksums last matched */
  private readonly verified = new Map<string, string>();

  constructor(readonly root: string) {
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
    for (const e of fs.readdirSync(root)) if (e.startsWith('.tmp-')) fs.rmSync(path.join(root, e), { recursive: true, force: true });
  }

  newId(): string {
    return `s-${randomBytes(5).toString('hex')}`;
  }

  /** A fresh working directory for snapshot `id`; `commit` moves it into place. */
  stage(id: string): string {
    const dir = path.join(this.root, `.tmp-${id}`);
    fs.mkdirSync(path.join(dir, 'img'), { recursive: true, mode: 0o700 });
    return dir;
  }

  abandon(id: string): void {
    fs.rmSync(path.join(this.root, `.tmp-${id}`), { recursive: true, force: true });
  }

  /** Checksum every file of a staged snapshot, write its metadata (with how long that took), and publish it. */
  async commit(meta: Omit<SnapshotMeta, 'files' | 'sizes'>): Promise<SnapshotMeta> {
    const t0 = performance.now();
    const dir = path.join(this.root, `.tmp-${meta.id}`);
    const files: SnapshotMeta['files'] = {};
    let images = 0;
    let upper = 0;
    for (const rel of listFiles(dir)) {
      const { size, sha256 } = await hashFile(path.join(dir, rel));
      files[rel] = { size, sha256 };
      if (rel.startsWith('img/')) images += size;
      else upper += size;
    }
    const commitMs = Math.round((performance.now() - t0) * 100) / 100;
    const full: SnapshotMeta = { ...meta, files, sizes: { images, upper, total: images + upper }, timings: { ...meta.timings, commitMs } };
    fs.writeFileSync(path.join(dir, 'meta.json'), JSON.stringify(full, null, 2));
    fs.renameSync(dir, path.join(this.root, meta.id));
    const sig = this.signature(meta.id, full);
    if (sig !== null) this.verified.set(meta.id, sig);
    return full;
  }

  private signature(id: string, meta: SnapshotMeta): string | null {
    const dir = this.dir(id);
    const parts: string[] = [];
    for (const rel of Object.keys(meta.files).sort()) {
      let st: fs.BigIntStats;
      try {
        st = fs.statSync(path.join(dir, rel), { bigint: true });
      } catch {
        return null;
      }
      parts.push(`${rel}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`);
    }
    return parts.join('|');
  }

  dir(id: string): string {
    return path.join(this.root, id);
  }

  exists(id: string): boolean {
    return SNAPSHOT_ID_RE.test(id) && fs.existsSync(path.join(this.root, id, 'meta.json'));
  }

  get(id: string): SnapshotMeta {
    if (!SNAPSHOT_ID_RE.test(id) || !fs.existsSync(path.join(this.root, id))) {
      throw new AppError('NOT_FOUND', `no snapshot ${id}: \`ai-sandbox snapshots\` lists them`, { details: { snapshot: id } });
    }
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(path.join(this.root, id, 'meta.json'), 'utf8'));
    } catch (err) {
      throw new AppError('DATA_CORRUPT', `snapshot ${id} is incomplete: meta.json cannot be read (${(err as Error).message})`, { details: { snapshot: id, file: 'meta.json' } });
    }
    const parsed = snapshotMetaSchema.safeParse(raw);
    if (!parsed.success || parsed.data.id !== id) {
      throw new AppError('DATA_CORRUPT', `snapshot ${id} is corrupt: meta.json does not describe it (${parsed.success ? 'wrong id' : parsed.error.issues[0]?.message})`, { details: { snapshot: id, file: 'meta.json' } });
    }
    return parsed.data;
  }

  list(): SnapshotMeta[] {
    const out: SnapshotMeta[] = [];
    for (const id of fs.readdirSync(this.root)) {
      if (!SNAPSHOT_ID_RE.test(id)) continue;
      try {
        out.push(this.get(id));
      } catch {
        // listed by `snapshots` through listInfo with its error; skipped here
      }
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  listInfo(): SnapshotInfo[] {
    return this.list().map(infoOf);
  }

  /** Check every file against its checksum. Throws DATA_CORRUPT naming the file and offering the parent. */
  async verify(id: string): Promise<SnapshotMeta> {
    const meta = this.get(id);
    const sig = this.signature(id, meta);
    if (sig !== null && this.verified.get(id) === sig) return meta;
    this.verified.delete(id);
    const dir = this.dir(id);
    for (const [rel, want] of Object.entries(meta.files)) {
      const file = path.join(dir, rel);
      let problem: string | null = null;
      if (!fs.existsSync(file)) problem = 'is missing';
      else {
        const got = await hashFile(file);
        if (got.size !== want.size) problem = `has ${got.size} bytes instead of ${want.size}`;
        else if (got.sha256 !== want.sha256) problem = 'does not match its checksum';
      }
      if (problem) {
        const parent = meta.parent && this.exists(meta.parent) ? ` Its parent ${meta.parent} can be restored instead: ai-sandbox restore ${meta.parent}` : '';
        throw new AppError('DATA_CORRUPT', `snapshot ${id} is corrupt: ${rel} ${problem}.${parent}`, { details: { snapshot: id, file: rel, parent: meta.parent } });
      }
    }
    if (sig !== null) this.verified.set(id, sig);
    return meta;
  }

  remove(id: string): void {
    this.get(id);
    this.verified.delete(id);
    fs.rmSync(this.dir(id), { recursive: true, force: true });
  }

  totalBytes(): number {
    return this.list().reduce((n, m) => n + m.sizes.total, 0);
  }

  /**
   * Free space down to `maxBytes`: oldest first, only snapshots nobody still needs: not labelled (a label
   * pins), with no children (a tree keeps its shape), and not `keep` (e.g. the latest snapshot of each live
   * sandbox, its restore point). Returns the removed ids.
   */
  gc(maxBytes: number, keep: ReadonlySet<string>): string[] {
    const removed: string[] = [];
    let total = this.totalBytes();
    while (total > maxBytes) {
      const all = this.list();
      const parents = new Set(all.map((m) => m.parent).filter((p): p is string => p !== null));
      const victim = all.find((m) => m.label === null && !parents.has(m.id) && !keep.has(m.id));
      if (!victim) break;
      fs.rmSync(this.dir(victim.id), { recursive: true, force: true });
      total -= victim.sizes.total;
      removed.push(victim.id);
    }
    return removed;
  }
}

function listFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(dir, r));
    else if (e.isFile() && r !== 'meta.json') out.push(r);
  }
  return out.sort();
}

const HASH_CHUNK = 1 << 20;
let hashBuffer: Buffer | null = null;

/**
 * Size and sha256 of a file, read through one reused buffer: fresh buffers cost page faults, which are
 * hypercalls on a PVM host (a checkpoint's 3 MB of CRIU images: 14 ms with readFileSync, 2.5 ms this
 * way). Each chunk is read and hashed in one synchronous step, so callers never see another's data in
 * the shared buffer; between chunks the event loop runs, so a 100 MB image does not stall the helper.
 */
async function hashFile(file: string): Promise<{ size: number; sha256: string }> {
  const buf = (hashBuffer ??= Buffer.allocUnsafe(HASH_CHUNK));
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  let size = 0;
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, HASH_CHUNK, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      size += n;
      if (n === HASH_CHUNK) await new Promise((r) => setImmediate(r));
    }
  } finally {
    fs.closeSync(fd);
  }
  return { size, sha256: h.digest('hex') };
}
