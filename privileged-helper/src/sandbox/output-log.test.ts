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
});
