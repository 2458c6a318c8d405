/**
 * Root-only: the cgroup driver this host gets from detectCgroupDriver, against the real kernel. On our CI
 * hosts that is the hybrid driver (v1 memory/cpu/pids + controller-less cgroup2): there is no pure cgroup2
 * host here, so the v2 driver is covered only by its unit tests with the fake filesystem. The tests are
 * written against the driver interface and would exercise v2 on a unified host unchanged.
 *
 * Everything lives under a parent named `ai-sandbox-test-<pid>` in each hierarchy, and the hooks delete that
 * parent (killing what is left in it) even when a test fails; no other cgroup on the machine is touched.
 * The limit tests are bounded: a broken limit fails the test, it cannot take the machine down.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { detectCgroupDriver, parseMounts } from '../../src/cgroup/detect.js';
import type { CgroupDriver, SandboxCgroup } from '../../src/cgroup/types.js';

const PARENT = `ai-sandbox-test-${process.pid}`;
const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const isRoot = process.getuid?.() === 0;

/** every directory named PARENT at the top of a cgroup mount: the whole of what these tests may create */
function testParents(): string[] {
  return parseMounts(fs.readFileSync('/proc/self/mounts', 'utf8'))
    .filter((m) => m.type === 'cgroup' || m.type === 'cgroup2')
    .map((m) => `${m.path}/${PARENT}`)
    .filter((dir) => fs.existsSync(dir));
}

function removeTree(dir: string): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeTree(`${dir}/${entry.name}`);
  }
  for (let attempt = 0; ; attempt++) {
    if (fs.existsSync(`${dir}/cgroup.kill`)) fs.writeFileSync(`${dir}/cgroup.kill`, '1');
    for (const pid of fs.readFileSync(`${dir}/cgroup.procs`, 'utf8').split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    try {
      fs.rmdirSync(dir);
      return;
    } catch (err) {
      if (attempt > 200) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

function cleanAll(): void {
  for (const dir of testParents()) removeTree(dir);
}

function join(cg: SandboxCgroup, pid: number): void {
  for (const file of [...cg.v1ProcsFiles, `${cg.cgroup2Path}/cgroup.procs`]) fs.writeFileSync(file, String(pid));
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/** a child that waits for one line on stdin before it runs `script`, so it can be moved first */
function spawnWaiting(script: string): ChildProcess {
  return spawn('/bin/sh', ['-c', `read line; ${script}`], { stdio: ['pipe', 'pipe', 'inherit'] });
}

function read(path: string): string {
  return fs.readFileSync(path, 'utf8').trim();
}

const children: ChildProcess[] = [];

describe.skipIf(!isRoot)('cgroup driver on this host (root)', () => {
  let driver: CgroupDriver;

  beforeAll(() => {
    cleanAll();
    driver = detectCgroupDriver({ parent: PARENT });
    driver.init();
  });

  afterEach(async () => {
    for (const child of children.splice(0)) {
      child.kill('SIGKILL');
      await exited(child);
    }
    for (const { name, pool } of driver.list()) await driver.open(name, pool)?.remove();
    for (const pool of driver.listPools()) await driver.removePool(pool);
  });

  afterAll(() => {
    cleanAll();
    expect(testParents()).toEqual([]);
  });

  it('writes the limits to the real files', () => {
    const cg = driver.create('limits', { memoryBytes: 256 << 20, cpus: 0.5, cpuWeight: 200, pidsMax: 64 });
    expect(fs.statSync(cg.cgroup2Path).isDirectory()).toBe(true);
    if (driver.mode === 'hybrid') {
      const [memory, cpu, pids] = cg.v1ProcsFiles.map((f) => f.slice(0, f.lastIndexOf('/')));
      expect(read(`${memory}/memory.limit_in_bytes`)).toBe(String(256 << 20));
      if (fs.existsSync(`${memory}/memory.memsw.limit_in_bytes`)) {
        expect(read(`${memory}/memory.memsw.limit_in_bytes`)).toBe(String(256 << 20));
      }
      expect(read(`${cpu}/cpu.cfs_quota_us`)).toBe('50000');
      expect(read(`${cpu}/cpu.cfs_period_us`)).toBe('100000');
      expect(read(`${cpu}/cpu.shares`)).toBe('2048');
      expect(read(`${pids}/pids.max`)).toBe('64');
    } else {
      expect(read(`${cg.cgroup2Path}/memory.max`)).toBe(String(256 << 20));
      expect(read(`${cg.cgroup2Path}/cpu.max`)).toBe('50000 100000');
      expect(read(`${cg.cgroup2Path}/cpu.weight`)).toBe('200');
      expect(read(`${cg.cgroup2Path}/pids.max`)).toBe('64');
    }
    // raising and lowering again must keep the kernel's memsw >= limit rule on every write
    cg.setLimits({ memoryBytes: 1 << 30 });
    cg.setLimits({ memoryBytes: 128 << 20 });
    cg.setLimits({});
    expect(driver.list()).toEqual([{ name: 'limits', pool: undefined }]);
  });

  it('counts a moved process in its stats, then kill() empties it and remove() deletes every directory', async () => {
    const cg = driver.create('stats', { memoryBytes: 256 << 20, pidsMax: 16 });
    // some CPU and a fresh exec after the move, so CPU time and memory are charged to the sandbox
    const child = spawnWaiting('i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 30');
    children.push(child);
    join(cg, child.pid as number);
    child.stdin?.write('go\n');
    await new Promise((r) => setTimeout(r, 300));

    expect(cg.pids()).toEqual([child.pid]);
    const stats = cg.stats();
    expect(stats.pidsCurrent).toBeGreaterThanOrEqual(1);
    expect(stats.memoryCurrentBytes).toBeGreaterThan(0);
    expect(stats.cpuUsageNs).toBeGreaterThan(0);
    expect(stats.oomKills).toBe(0);

    await cg.kill();
    expect(await exited(child)).toEqual({ code: null, signal: 'SIGKILL' });
    expect(cg.pids()).toEqual([]);

    await cg.remove();
    const dirs = [cg.cgroup2Path, ...cg.v1ProcsFiles.map((f) => f.slice(0, f.lastIndexOf('/')))];
    for (const dir of dirs) expect(fs.existsSync(dir)).toBe(false);
    expect(driver.open('stats')).toBeUndefined();
    await cg.remove();
  });

  it('OOM-kills a process that allocates 512 MB in a 256 MB cgroup and counts the kill', async () => {
    const cg = driver.create('oom', { memoryBytes: 256 << 20, pidsMax: 16 });
    const child = spawn(PYTHON, ['-S', '-c', "import sys; sys.stdin.readline(); b = b'x' * (512 << 20); print(len(b))"], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.push(child);
    join(cg, child.pid as number);
    child.stdin?.write('go\n');

    expect(await exited(child)).toEqual({ code: null, signal: 'SIGKILL' });
    const stats = cg.stats();
    expect(stats.oomKills).toBeGreaterThanOrEqual(1);
    expect(stats.memoryPeakBytes).toBeGreaterThan(200 << 20);
    expect(stats.memoryPeakBytes).toBeLessThanOrEqual(256 << 20);
  });

  it('holds pids.max against a bounded burst of forks', async () => {
    const cg = driver.create('pids', { pidsMax: 8 });
    // 20 forks at most, each child exits by itself within a second: harmless if the limit were broken
    const script = [
      'import os, sys, time',
      'sys.stdin.readline()',
      'ok = 0',
      'for _ in range(20):',
      '    try:',
      '        if os.fork() == 0:',
      '            time.sleep(1); os._exit(0)',
      '        ok += 1',
      '    except OSError:',
      '        pass',
      'print(ok, flush=True)',
    ].join('\n');
    const child = spawn(PYTHON, ['-S', '-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(child);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    join(cg, child.pid as number);
    child.stdin?.write('go\n');
    expect(await exited(child)).toEqual({ code: 0, signal: null });
    // the parent itself holds one of the 8
    expect(Number(out.trim())).toBe(7);
    await cg.remove();
  });

  it('nests sandboxes in pools in every hierarchy and caps a sandbox quota at the pool quota', async () => {
    driver.ensurePool('p1', { cpus: 1, memoryBytes: 512 << 20, pidsMax: 32 });
    const cg = driver.create('inner', { cpus: 2 }, 'p1');
    expect(cg.cgroup2Path.endsWith(`/${PARENT}/pool-p1/sb-inner`)).toBe(true);
    for (const file of cg.v1ProcsFiles) expect(file).toContain(`/${PARENT}/pool-p1/sb-inner/`);
    if (driver.mode === 'hybrid') {
      const cpu = cg.v1ProcsFiles[1]?.replace('/cgroup.procs', '');
      expect(read(`${cpu}/cpu.cfs_quota_us`)).toBe('100000');
      expect(() => driver.ensurePool('p1', { cpus: 0.5 })).toThrow(/below the quota of a sandbox/);
    }
    expect(driver.list()).toEqual([{ name: 'inner', pool: 'p1' }]);
    expect(driver.listPools()).toEqual(['p1']);

    const child = spawnWaiting('exec sleep 30');
    children.push(child);
    join(cg, child.pid as number);
    await driver.removePool('p1');
    expect(await exited(child)).toEqual({ code: null, signal: 'SIGKILL' });
    expect(driver.listPools()).toEqual([]);
    expect(driver.list()).toEqual([]);
  });

  it('destroy() kills what is left and removes the parent from every hierarchy', async () => {
    driver.ensurePool('p2', { pidsMax: 8 });
    const inPool = driver.create('a', {}, 'p2');
    const top = driver.create('b', {});
    for (const cg of [inPool, top]) {
      const child = spawnWaiting('exec sleep 30');
      children.push(child);
      join(cg, child.pid as number);
    }
    await driver.destroy();
    expect(testParents()).toEqual([]);
    for (const child of children) expect((await exited(child)).signal).toBe('SIGKILL');
    await driver.destroy();
    driver.init();
  });
});
