import { describe, expect, it } from 'vitest';
import { AppError } from '../errors/app-error.js';
import { FakeCgroupFs, type FakeCgroupFsOptions } from './fake-fs.js';
import { V2CgroupDriver } from './v2.js';

const ROOT = '/cg';
const P = `${ROOT}/ai-sandbox`;

function v2ControlFiles(): Record<string, string> {
  return {
    'cgroup.procs': '',
    'cgroup.events': 'populated 0\nfrozen 0\n',
    'cgroup.kill': '',
    'cgroup.subtree_control': '',
    'memory.max': 'max',
    'memory.swap.max': 'max',
    'cpu.max': 'max 100000',
    'cpu.weight': '100',
    'pids.max': 'max',
    'cpu.stat': 'usage_usec 0\nnr_throttled 0\n',
    'memory.current': '0',
    'memory.peak': '0',
    'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n',
    'pids.current': '0',
  };
}

function setup(rootFiles: { controllers?: string; subtree?: string } = {}, onWrite?: FakeCgroupFsOptions['onWrite']) {
  const fake = new FakeCgroupFs({ controlFiles: v2ControlFiles, onWrite });
  fake.addDir(ROOT, {
    'cgroup.controllers': rootFiles.controllers ?? 'cpuset cpu io memory hugetlb pids rdma misc',
    'cgroup.subtree_control': rootFiles.subtree ?? 'cpu io memory pids',
  });
  const driver = new V2CgroupDriver({ root: ROOT, fs: fake, killTimeoutMs: 100 });
  return { fake, driver };
}

function catchAppError(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error('expected an AppError');
}

describe('V2CgroupDriver.init', () => {
  it('enables cpu, memory and pids in its own parent and never writes the root', () => {
    const { fake, driver } = setup();
    driver.init();
    expect(fake.dirs.has(P)).toBe(true);
    expect(fake.writes).toEqual([[`${P}/cgroup.subtree_control`, '+cpu +memory +pids']]);
  });

  it('fails with CGROUP_UNAVAILABLE, naming the controller, when the root does not delegate it', () => {
    const { fake, driver } = setup({ subtree: 'cpu pids' });
    const err = catchAppError(() => driver.init());
    expect(err.code).toBe('CGROUP_UNAVAILABLE');
    expect(err.message).toContain('memory not enabled in /cg/cgroup.subtree_control');
    expect(err.message).toContain('Delegate=yes');
    expect(fake.writes).toEqual([]);
    expect(fake.dirs.has(P)).toBe(false);
  });

  it('fails when the kernel does not offer a controller on cgroup2', () => {
    const { driver } = setup({ controllers: 'cpu memory', subtree: 'cpu memory' });
    const err = catchAppError(() => driver.init());
    expect(err.code).toBe('CGROUP_UNAVAILABLE');
    expect(err.message).toContain('does not offer pids');
  });
});

describe('V2CgroupDriver limits', () => {
  it('writes the exact values of every limit', () => {
    const { fake, driver } = setup();
    driver.init();
    fake.writes.length = 0;
    const cg = driver.create('a1', { memoryBytes: 256 << 20, cpus: 0.5, cpuWeight: 200, pidsMax: 64 });
    const d = `${P}/sb-a1`;
    expect(cg.cgroup2Path).toBe(d);
    expect(cg.v1ProcsFiles).toEqual([]);
    expect(fake.writes).toEqual([
      [`${d}/memory.max`, '268435456'],
      [`${d}/memory.swap.max`, '0'],
      [`${d}/cpu.max`, '50000 100000'],
      [`${d}/cpu.weight`, '200'],
      [`${d}/pids.max`, '64'],
    ]);
  });

  it('resets limits left undefined, so a reused cgroup ends up exactly as asked', () => {
    const { fake, driver } = setup();
    driver.init();
    const cg = driver.create('a1', { memoryBytes: 256 << 20, cpus: 2, pidsMax: 10 });
    cg.setLimits({});
    const d = `${P}/sb-a1`;
    expect(fake.read(`${d}/memory.max`)).toBe('max');
    expect(fake.read(`${d}/memory.swap.max`)).toBe('max');
    expect(fake.read(`${d}/cpu.max`)).toBe('max 100000');
    expect(fake.read(`${d}/cpu.weight`)).toBe('100');
    expect(fake.read(`${d}/pids.max`)).toBe('max');
  });

  it('skips memory.swap.max where swap accounting is off', () => {
    const fake = new FakeCgroupFs({
      controlFiles: () => {
        const { 'memory.swap.max': _omit, ...rest } = v2ControlFiles();
        return rest;
      },
    });
    fake.addDir(ROOT, { 'cgroup.controllers': 'cpu memory pids', 'cgroup.subtree_control': 'cpu memory pids' });
    const driver = new V2CgroupDriver({ root: ROOT, fs: fake });
    driver.init();
    driver.create('a', { memoryBytes: 1 << 30 });
    expect(fake.writesTo('memory.max')).toEqual([[`${P}/sb-a/memory.max`, '1073741824']]);
  });

  it('rejects out-of-range limits before touching the filesystem', () => {
    const { fake, driver } = setup();
    driver.init();
    fake.writes.length = 0;
    for (const limits of [{ cpuWeight: 0 }, { cpus: 0 }, { memoryBytes: 1.5 }, { pidsMax: -1 }]) {
      expect(catchAppError(() => driver.create('a', limits)).code).toBe('INVALID_ARGUMENT');
    }
    expect(fake.writes).toEqual([]);
    expect(fake.dirs.has(`${P}/sb-a`)).toBe(false);
  });
});

describe('V2CgroupDriver names and pools', () => {
  it.each(['../x', '..', 'a/b', 'A', '', '.x', '-x', 'x'.repeat(64)])('rejects the name %j', (name) => {
    const { fake, driver } = setup();
    driver.init();
    const dirsBefore = new Set(fake.dirs);
    expect(catchAppError(() => driver.create(name, {})).code).toBe('INVALID_ARGUMENT');
    expect(catchAppError(() => driver.ensurePool(name, {})).code).toBe('INVALID_ARGUMENT');
    expect(catchAppError(() => driver.open('ok', name)).code).toBe('INVALID_ARGUMENT');
    expect(fake.dirs).toEqual(dirsBefore);
  });

  it('nests sandboxes in a pool that delegates the controllers to them', () => {
    const { fake, driver } = setup();
    driver.init();
    driver.ensurePool('p1', { memoryBytes: 1 << 30, cpus: 1 });
    const cg = driver.create('a', { cpus: 0.25 }, 'p1');
    expect(cg.cgroup2Path).toBe(`${P}/pool-p1/sb-a`);
    expect(cg.pool).toBe('p1');
    expect(fake.read(`${P}/pool-p1/cgroup.subtree_control`)).toBe('+cpu +memory +pids');
    expect(fake.read(`${P}/pool-p1/memory.max`)).toBe('1073741824');
    expect(fake.read(`${P}/pool-p1/cpu.max`)).toBe('100000 100000');
    expect(fake.read(`${P}/pool-p1/sb-a/cpu.max`)).toBe('25000 100000');
  });

  it('refuses a sandbox in a pool that does not exist', () => {
    const { driver } = setup();
    driver.init();
    expect(catchAppError(() => driver.create('a', {}, 'nope')).code).toBe('NOT_FOUND');
  });

  it('lists sandboxes and pools for reconcile, ignoring directories that are not ours', () => {
    const { fake, driver } = setup();
    driver.init();
    driver.create('top', {});
    driver.ensurePool('p1', {});
    driver.create('inner', {}, 'p1');
    fake.mkdir(`${P}/someone-else`);
    fake.mkdir(`${P}/sb-BAD`);
    expect(driver.list()).toEqual([
      { name: 'top', pool: undefined },
      { name: 'inner', pool: 'p1' },
    ]);
    expect(driver.listPools()).toEqual(['p1']);
    expect(driver.open('inner', 'p1')?.cgroup2Path).toBe(`${P}/pool-p1/sb-inner`);
    expect(driver.open('missing')).toBeUndefined();
  });

  it('removePool removes its sandboxes first, then the pool', async () => {
    const { fake, driver } = setup();
    driver.init();
    driver.ensurePool('p1', {});
    driver.create('a', {}, 'p1');
    driver.create('b', {}, 'p1');
    await driver.removePool('p1');
    expect(fake.dirs.has(`${P}/pool-p1`)).toBe(false);
    expect(driver.list()).toEqual([]);
    await driver.removePool('p1');
  });

  it('destroy removes every sandbox, pool and the parent, and is idempotent', async () => {
    const { fake, driver } = setup();
    driver.init();
    driver.create('top', {});
    driver.ensurePool('p1', {});
    driver.create('inner', {}, 'p1');
    await driver.destroy();
    expect([...fake.dirs]).toEqual([ROOT]);
    await driver.destroy();
  });
});

describe('V2 sandbox cgroup', () => {
  it('reads stats from the cgroup2 files', () => {
    const { fake, driver } = setup();
    driver.init();
    const cg = driver.create('a', {});
    const d = `${P}/sb-a`;
    fake.files.set(`${d}/cpu.stat`, 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 9\nnr_throttled 3\n');
    fake.files.set(`${d}/memory.current`, '4096\n');
    fake.files.set(`${d}/memory.peak`, '8192\n');
    fake.files.set(`${d}/memory.events`, 'low 0\nhigh 0\nmax 5\noom 2\noom_kill 2\noom_group_kill 0\n');
    fake.files.set(`${d}/pids.current`, '7\n');
    fake.files.set(`${d}/cgroup.procs`, '10\n11\n');
    expect(cg.stats()).toEqual({
      cpuUsageNs: 1_500_000,
      throttledPeriods: 3,
      memoryCurrentBytes: 4096,
      memoryPeakBytes: 8192,
      oomKills: 2,
      pidsCurrent: 7,
    });
    expect(cg.pids()).toEqual([10, 11]);
    expect(cg.exitStats()).toEqual({ cpuUsageNs: 1_500_000, memoryPeakBytes: 8192, oomKills: 2 });
    cg.prepareExitStats();
    expect(fake.opened.size).toBe(3);
    fake.files.set(`${d}/memory.events`, 'oom_kill 3\n');
    expect(cg.exitStats()).toEqual({ cpuUsageNs: 1_500_000, memoryPeakBytes: 8192, oomKills: 3 });
  });

  it('writes nothing when the limits are what it last wrote', () => {
    const { fake, driver } = setup();
    driver.init();
    const cg = driver.create('a', { memoryBytes: 256 << 20, pidsMax: 64 });
    fake.writes.length = 0;
    cg.setLimits({ memoryBytes: 256 << 20, pidsMax: 64 });
    expect(fake.writes).toEqual([]);
    cg.setLimits({ memoryBytes: 256 << 20, pidsMax: 64, cpus: 0.5 });
    expect(fake.read(`${P}/sb-a/cpu.max`)).toBe('50000 100000');
  });

  it('kill writes cgroup.kill and waits until cgroup.events says empty', async () => {
    const { fake, driver } = setup({}, (path, _value, f) => {
      if (!path.endsWith('/cgroup.kill')) return;
      const dir = path.slice(0, -'/cgroup.kill'.length);
      setTimeout(() => {
        f.files.set(`${dir}/cgroup.procs`, '');
        f.files.set(`${dir}/cgroup.events`, 'populated 0\nfrozen 0\n');
      }, 20);
    });
    driver.init();
    const cg = driver.create('a', {});
    fake.files.set(`${P}/sb-a/cgroup.procs`, '42\n');
    fake.files.set(`${P}/sb-a/cgroup.events`, 'populated 1\nfrozen 0\n');
    await cg.kill();
    expect(fake.writesTo('cgroup.kill')).toEqual([[`${P}/sb-a/cgroup.kill`, '1']]);
    expect(cg.pids()).toEqual([]);
  });

  it('kill gives up after its bound with a retryable error', async () => {
    const { fake, driver } = setup();
    driver.init();
    const cg = driver.create('a', {});
    fake.files.set(`${P}/sb-a/cgroup.events`, 'populated 1\nfrozen 0\n');
    await expect(cg.kill()).rejects.toMatchObject({ code: 'INTERNAL', retryable: true });
  });

  it('remove kills a populated cgroup, deletes it, and is idempotent', async () => {
    const { fake, driver } = setup({}, (path, _value, f) => {
      if (path.endsWith('/cgroup.kill')) {
        const dir = path.slice(0, -'/cgroup.kill'.length);
        f.files.set(`${dir}/cgroup.procs`, '');
        f.files.set(`${dir}/cgroup.events`, 'populated 0\n');
      }
    });
    driver.init();
    const cg = driver.create('a', {});
    fake.files.set(`${P}/sb-a/cgroup.procs`, '42\n');
    fake.files.set(`${P}/sb-a/cgroup.events`, 'populated 1\n');
    await cg.remove();
    expect(fake.dirs.has(`${P}/sb-a`)).toBe(false);
    await cg.remove();
    await cg.kill();
  });
});
