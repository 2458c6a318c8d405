import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { versionOf } from './criu.js';

describe('versionOf', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'criu-version-'));
  const bin = path.join(dir, 'criu');
  const calls = path.join(dir, 'calls');
  /** a stand-in criu that prints `version` and counts how often it ran */
  const write = (version: string, exit = 0) => {
    fs.writeFileSync(bin, `#!/bin/sh\necho x >> ${calls}\necho "Version: ${version}"\nexit ${exit}\n`, { mode: 0o755 });
  };
  const ran = () => (fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').split('\n').filter(Boolean).length : 0);
  afterEach(() => fs.rmSync(calls, { force: true }));

  it('asks the binary once while the file is unchanged, and again when it changes', () => {
    write('4.2.1');
    expect(versionOf(bin)).toBe('4.2.1');
    expect(versionOf(bin)).toBe('4.2.1');
    expect(ran()).toBe(1);
    write('4.3'); // a new size: another binary
    expect(versionOf(bin)).toBe('4.3');
    expect(ran()).toBe(2);
  });

  it('does not remember a failure', () => {
    write('9.9.9', 1);
    expect(versionOf(bin)).toBeNull();
    expect(versionOf(bin)).toBeNull();
    expect(ran()).toBe(2);
  });

  it('is null for a binary that is not there', () => {
    expect(versionOf(path.join(dir, 'missing'))).toBeNull();
  });
});
