/** The CLI as a user meets it: exit statuses, reports, bad input, and the detached-sandbox commands. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, sleep, TestHelper } from './harness.js';

describe('ai-sandbox CLI', () => {
  let helper: TestHelper;
  beforeAll(async () => {
    helper = await TestHelper.start();
  });
  afterAll(async () => helper?.destroy());

  it('runs a command attached and passes stdin, stdout, stderr and the exit status through', async () => {
    const r = await helper.cli(['run', '--', 'sh', '-c', 'read x; echo "got $x"; echo err >&2; exit 3'], { input: 'hello\n' });
    expect(r.stdout).toBe('got hello\n');
    expect(r.stderr).toBe('err\n');
    expect(r.code).toBe(3);
  });

  it('exits 128+N when the program is killed by signal N, and reports it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'report-'));
    const file = path.join(dir, 'r.json');
    const r = await helper.cli(['run', '--report', file, '--', 'sh', '-c', 'kill -TERM $$']);
    expect(r.code).toBe(143);
    const report = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(report).toMatchObject({ exitCode: 143, signal: 'SIGTERM', reason: 'signaled' });
    for (const k of ['cpuMs', 'memoryPeakBytes', 'startMs', 'wallMs']) expect(typeof report[k]).toBe('number');
    expect(report.startMs).toBeGreaterThan(0);
    expect(report.wallMs).toBeGreaterThanOrEqual(report.startMs);
    fs.rmSync(dir, { recursive: true });
  });

  it('gives one clear line and exit 2 for bad input', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['run', '--bogus', '--', 'true'], /unknown option --bogus/],
      [['run', '--memory', 'lots', '--', 'true'], /--memory: "lots" is not a size/],
      [['run'], /missing command/],
      [['run', '--rootfs', '/no/such/dir', '--', 'true'], /rootfs \/no\/such\/dir does not exist/],
      [['frobnicate'], /unknown command "frobnicate"/],
    ];
    for (const [args, re] of cases) {
      const r = await helper.cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(re);
    }
  });

  it('reports a command that does not exist as failed-to-start with exit 127', async () => {
    const r = await helper.cli(['run', '--', 'no-such-program-xyz']);
    expect(r.code).toBe(127);
    expect(r.stderr).toMatch(/no-such-program-xyz: command not found in the sandbox/);
  });

  it('starts, lists, follows, execs into, stops and removes a detached sandbox', async () => {
    const start = await helper.cli(['start', '--name', 'bg1', '--', 'sh', '-c', 'echo started; while true; do sleep 0.1; done']);
    expect(start.stdout).toBe('bg1\n');
    const ps = JSON.parse((await helper.cli(['ps', '--json'])).stdout);
    expect(ps.find((s: { name: string }) => s.name === 'bg1')).toMatchObject({ status: 'running' });
    await sleep(200);
    const logs = await helper.cli(['logs', 'bg1']);
    expect(logs.stdout).toBe('started\n');
    const ex = await helper.cli(['exec', 'bg1', '--', 'sh', '-c', 'hostname; echo $$; exit 4']);
    expect(ex.stdout.split('\n')[0]).toBe('bg1');
    expect(ex.code).toBe(4);
    const exi = await helper.cli(['exec', '-i', 'bg1', '--', 'cat'], { input: 'piped\n' });
    expect(exi.stdout).toBe('piped\n');
    const rmRunning = await helper.cli(['rm', 'bg1']);
    expect(rmRunning.code).toBe(1);
    expect(rmRunning.stderr).toMatch(/cannot remove sandbox "bg1" in state running/);
    const stop = await helper.cli(['stop', 'bg1', '--time', '2s']);
    expect(stop.stdout).toMatch(/bg1: signaled/);
    expect((await helper.cli(['rm', 'bg1'])).code).toBe(0);
    expect((await helper.cli(['ps'])).stdout).not.toContain('bg1');
    expect(helper.census().cgroups).toEqual([]);
  });

  it('runs embedded when no helper is listening', async () => {
    const lone = new TestHelper();
    try {
      const r = await runCli(['run', '--', 'sh', '-c', 'echo embedded; exit 5'], { env: lone.env });
      expect(r.stdout).toBe('embedded\n');
      expect(r.code).toBe(5);
      expect(lone.census()).toEqual({ mounts: [], cgroups: [], processes: [], warm: 0 });
    } finally {
      await lone.destroy();
    }
  });

  it('doctor reports every feature and passes on this machine', async () => {
    const r = await runCli(['doctor']);
    for (const name of ['namespaces', 'overlayfs', 'seccomp', 'cgroups', 'landlock', 'criu']) expect(r.stdout).toContain(name);
    expect(r.code).toBe(0);
  });
});
