import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OutputLog } from './output-log.js';

describe('OutputLog', () => {
  it('replays records in order with their fd, and ignores a torn tail', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'log-'));
    const file = path.join(dir, 'x.log');
    const log = new OutputLog(file);
    log.append(1, Buffer.from('out'));
    log.append(2, Buffer.from('err'));
    log.close();
    fs.appendFileSync(file, Buffer.from([1, 9, 0, 0, 0, 65]));
    expect(OutputLog.read(file).map((r) => [r.fd, r.data.toString()])).toEqual([
      [1, 'out'],
      [2, 'err'],
    ]);
    fs.rmSync(dir, { recursive: true });
  });

  it('makes no file for a program that printed nothing, and writes nothing after close', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'log-'));
    const file = path.join(dir, 'x.log');
    const log = new OutputLog(file);
    expect(fs.existsSync(file)).toBe(false);
    expect(OutputLog.read(file)).toEqual([]);
    log.close();
    log.append(1, Buffer.from('late'));
    expect(fs.existsSync(file)).toBe(false);
    fs.rmSync(dir, { recursive: true });
  });

  it('keeps serving when the log cannot be opened (the replay is lost, nothing throws)', () => {
    const log = new OutputLog(path.join(os.tmpdir(), 'no-such-dir-for-ai-sandbox', 'x.log'));
    const write = process.stderr.write;
    let said = '';
    process.stderr.write = ((s: string) => ((said += s), true)) as typeof process.stderr.write;
    try {
      expect(() => log.append(1, Buffer.from('a'))).not.toThrow();
      log.append(1, Buffer.from('b'));
    } finally {
      process.stderr.write = write;
    }
    expect(said.match(/cannot keep the output log/g)).toHaveLength(1);
  });
});
