/**
 * A small streaming reader of the upper-layer archives (GNU tar, PAX headers for long names and
 * xattrs): enough to list entries with their type, mode, size, content hash, and the overlay markers
 * (whiteouts are char devices 0:0; opaque directories carry trusted.overlay.opaque=y).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';

export interface TarEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'whiteout' | 'other';
  mode: number;
  size: number;
  sha256: string | null;
  linkTarget: string | null;
  opaque: boolean;
}

const BLOCK = 512;

function field(h: Buffer, start: number, len: number): string {
  const s = h.subarray(start, start + len);
  const nul = s.indexOf(0);
  return s.subarray(0, nul < 0 ? len : nul).toString('utf8');
}

function octal(h: Buffer, start: number, len: number): number {
  if (h[start]! & 0x80) return Number(h.readBigUInt64BE(start + len - 8)); // GNU base-256
  return parseInt(field(h, start, len).trim() || '0', 8);
}

function parsePax(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let off = 0;
  const buf = Buffer.from(text, 'utf8');
  while (off < buf.length) {
    const sp = buf.indexOf(0x20, off);
    if (sp < 0) break;
    const len = Number(buf.toString('utf8', off, sp));
    if (!Number.isFinite(len) || len <= 0) break;
    const rec = buf.toString('utf8', sp + 1, off + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    off += len;
  }
  return out;
}

export function readTar(file: string): TarEntry[] {
  const fd = fs.openSync(file, 'r');
  const entries: TarEntry[] = [];
  try {
    const header = Buffer.alloc(BLOCK);
    let pos = 0;
    let pax = new Map<string, string>();
    let longName: string | null = null;
    const readContent = (size: number, hash: boolean): { text: string; sha256: string } => {
      const h = createHash('sha256');
      const chunks: Buffer[] = [];
      let left = size;
      const buf = Buffer.alloc(Math.min(1 << 20, Math.max(size, 1)));
      while (left > 0) {
        const n = fs.readSync(fd, buf, 0, Math.min(buf.length, left), pos);
        if (n <= 0) throw new Error(`${file}: archive ends inside an entry`);
        if (hash) h.update(buf.subarray(0, n));
        else chunks.push(Buffer.from(buf.subarray(0, n)));
        pos += n;
        left -= n;
      }
      pos += (BLOCK - (size % BLOCK)) % BLOCK;
      return { text: Buffer.concat(chunks).toString('utf8'), sha256: hash ? h.digest('hex') : '' };
    };
    for (;;) {
      if (fs.readSync(fd, header, 0, BLOCK, pos) < BLOCK) break;
      pos += BLOCK;
      if (header.every((b) => b === 0)) break;
      const type = String.fromCharCode(header[156]!) || '0';
      const size = octal(header, 124, 12);
      if (type === 'x') {
        pax = parsePax(readContent(size, false).text);
        continue;
      }
      if (type === 'g') {
        readContent(size, false);
        continue;
      }
      if (type === 'L') {
        longName = readContent(size, false).text.replace(/\0+$/, '');
        continue;
      }
      const prefix = field(header, 345, 155);
      const rawName = pax.get('path') ?? longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
      const name = rawName.replace(/^\.\/?/, '').replace(/\/$/, '');
      const realSize = pax.has('size') ? Number(pax.get('size')) : size;
      const isFile = type === '0' || type === '\0' || type === '7';
      const content = isFile ? readContent(realSize, true) : null;
      if (!isFile && realSize > 0 && type !== '1' && type !== '2') readContent(realSize, false);
      const devMajor = octal(header, 329, 8);
      const devMinor = octal(header, 337, 8);
      const kind: TarEntry['type'] = isFile ? 'file' : type === '5' ? 'dir' : type === '2' ? 'symlink' : type === '1' ? 'hardlink' : type === '3' && devMajor === 0 && devMinor === 0 ? 'whiteout' : 'other';
      if (name !== '') {
        entries.push({
          path: name,
          type: kind,
          mode: octal(header, 100, 8) & 0o7777,
          size: isFile ? realSize : 0,
          sha256: content?.sha256 ?? null,
          linkTarget: type === '1' || type === '2' ? (pax.get('linkpath') ?? field(header, 157, 100)) : null,
          opaque: pax.get('SCHILY.xattr.trusted.overlay.opaque') === 'y',
        });
      }
      pax = new Map();
      longName = null;
    }
  } finally {
    fs.closeSync(fd);
  }
  return entries;
}
