import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildHostSkeleton } from './rootfs.js';

describe('host skeleton', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  it('hides every top-level entry but the system dirs and copies only allowlisted /etc files', async () => {
    const host = fs.mkdtempSync(path.join(os.tmpdir(), 'host-'));
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'skel-')), 'host');
    dirs.push(host, path.dirname(out));
    for (const d of ['usr', 'etc/ssl/private', 'etc/ssl/certs', 'root', 'work', 'data']) fs.mkdirSync(path.join(host, d), { recursive: true });
    fs.symlinkSync('usr/bin', path.join(host, 'bin'));
    fs.writeFileSync(path.join(host, 'etc/shadow'), 'secret');
    fs.writeFileSync(path.join(host, 'etc/ssl/private/key.pem'), 'secret');
    fs.writeFileSync(path.join(host, 'etc/ssl/certs/ca.pem'), 'public');
    fs.writeFileSync(path.join(host, 'etc/nsswitch.conf'), 'passwd: files');
    fs.writeFileSync(path.join(host, 'notes.txt'), 'x');

    const marks: Array<[string, string]> = [];
    await buildHostSkeleton(out, { mark: async (p, k) => void marks.push([path.relative(out, p), k]) }, host);

    expect(marks).toEqual(
      expect.arrayContaining([
        ['root', 'opaque'],
        ['work', 'whiteout'],
        ['data', 'whiteout'],
        ['etc', 'opaque'],
        ['notes.txt', 'whiteout'],
      ]),
    );
    expect(marks.map(([p]) => p)).not.toContain('usr');
    expect(marks.map(([p]) => p)).not.toContain('bin');
    expect(fs.existsSync(path.join(out, 'etc/shadow'))).toBe(false);
    expect(fs.existsSync(path.join(out, 'etc/ssl/private'))).toBe(false);
    expect(fs.readFileSync(path.join(out, 'etc/ssl/certs/ca.pem'), 'utf8')).toBe('public');
    expect(fs.readFileSync(path.join(out, 'etc/passwd'), 'utf8')).toContain('sandbox:x:65534');
    expect(fs.statSync(path.join(out, 'tmp')).mode & 0o7777).toBe(0o1777);
  });
});
