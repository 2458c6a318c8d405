/**
 * Resource limits hold: memory (OOM ends as oom-killed), pids (a bounded fork burst is contained while
 * the host stays responsive), timeout (the whole tree dies), CPU quota (within ±5%).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestHelper } from './harness.js';

const PY = '/usr/bin/python3';

describe('resource limits', () => {
  let helper: TestHelper;
  let dir: string;
  beforeAll(async () => {
    helper = await TestHelper.start();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'limits-'));
  });
  afterAll(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    await helper?.destroy();
  });

  const report = (name: string) => JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8'));

  it('ends a 512 MB allocation under --memory 256M as oom-killed', async () => {
    const r = await helper.cli(['run', '--memory', '256M', '--report', `${dir}/oom.json`, '--', PY, '-c', 'b = bytearray(512 * 1024 * 1024); print("survived")']);
    expect(r.stdout).not.toContain('survived');
    expect(r.code).toBe(137);
    expect(report('oom.json')).toMatchObject({ reason: 'oom-killed', signal: 'SIGKILL', exitCode: 137 });
    expect(report('oom.json').memoryPeakBytes).toBeLessThanOrEqual(256 * 1024 * 1024);
    expect(r.stderr).toMatch(/out of memory/);
  });

  it('contains a fork burst under --pids 64 while the host stays responsive', async () => {
    // A bounded burst: 200 children that each sleep 2 s and exit; count how many the kernel allowed.
    const script = [
      'import os, time',
      'ok = 0',
      'for i in range(200):',
      '    try:',
      '        if os.fork() == 0:',
      '            time.sleep(2); os._exit(0)',
      '        ok += 1',
      '    except OSError:',
      '        pass',
      'print(ok)',
    ].join('\n');
    let maxLag = 0;
    let last = Date.now();
    const ticker = setInterval(() => {
      const now = Date.now();
      maxLag = Math.max(maxLag, now - last - 10);
      last = now;
    }, 10);
    const r = await helper.cli(['run', '--pids', '64', '--', PY, '-c', script]);
    clearInterval(ticker);
    expect(r.code).toBe(0);
    const forked = Number(r.stdout.trim());
    expect(forked).toBeGreaterThan(0);
    expect(forked).toBeLessThan(64); // the init and python itself count against the 64
    expect(maxLag).toBeLessThan(500);
  });

  it('--timeout kills the whole process tree', async () => {
    const r = await helper.cli(['run', '--timeout', '1s', '--report', `${dir}/timeout.json`, '--', 'sh', '-c', 'sleep 100 & sleep 100 & (sleep 100; echo never) & wait']);
    expect(r.code).toBe(137);
    expect(report('timeout.json')).toMatchObject({ reason: 'timed-out' });
    expect(report('timeout.json').wallMs).toBeLessThan(5000);
    expect(r.stdout).not.toContain('never');
    expect((await helper.settledCensus()).processes).toEqual([]);
  });

  it('holds a CPU quota of 0.5 within ±5%', async () => {
    // Measure inside: CPU seconds consumed over 3 s of wall time by a busy loop.
    const script = 'import time\nw=time.monotonic(); c=time.process_time()\nwhile time.monotonic()-w<3: pass\nprint((time.process_time()-c)/(time.monotonic()-w))';
    const r = await helper.cli(['run', '--cpus', '0.5', '--', PY, '-c', script]);
    expect(r.code).toBe(0);
    const share = Number(r.stdout.trim());
    expect(share).toBeGreaterThan(0.475);
    expect(share).toBeLessThan(0.525);
  });
});
