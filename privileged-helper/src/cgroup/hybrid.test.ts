import { describe, expect, it } from 'vitest';
import { AppError } from '../errors/app-error.js';
import { errno, FakeCgroupFs } from './fake-fs.js';
import { HybridCgroupDriver, type HybridMounts } from './hybrid.js';

const MOUNTS: HybridMounts = { memory: '/cg/memory', cpu: '/cg/cpu', pids: '/cg/pids', unified: '/cg/unified' };
const UNLIMITED = '9223372036854771712';

function controlFiles(memsw: boolean) {
  return (dir: string): Record<string, string> => {
    const procs = { 'cgroup.procs': '' };
    if (dir.startsWith(MOUNTS.memory)) {
      return {
        ...procs,
        'memory.limit_in_bytes': UNLIMITED,
        ...(memsw ? { 'memory.memsw.limit_in_bytes': UNLIMITED } : {}),
        'memory.usage_in_bytes': '0',
        'memory.max_usage_in_bytes': '0',
        'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n',
      };
    }
    if (dir.startsWith(MOUNTS.cpu)) {
      return {
        ...procs,
        'cpu.cfs_period_us': '100000',
        'cpu.cfs_quota_us': '-1',
        'cpu.shares': '1024',
        'cpu.stat': 'nr_periods 0\nnr_throttled 0\nthrottled_time 0\n',
      };
    }
    if (dir.startsWith(MOUNTS.pids)) return { ...procs, 'pids.max': 'max', 'pids.current': '0' };
    return { ...procs, 'cgroup.kill': '', 'cgroup.events': 'populated 0\n', 'cpu.stat': 'usage_usec 0\n' };
  };
}

const bytes = (v: string): number => (v === '-1' ? Infinity : Number(v));

/** the kernel's rules this driver must respect: memsw >= limit at all times, child quota <= parent quota */
function kernelRules(path: string, value: string, fake: FakeCgroupFs): void {
  const dir = path.slice(0, path.lastIndexOf('/'));
  const memsw = fake.files.get(`${dir}/memory.memsw.limit_in_bytes`);
  if (path.endsWith('/memory.limit_in_bytes') && memsw !== undefined && bytes(value) > bytes(memsw)) {
    throw errno('EINVAL', path);
  }
  if (path.endsWith('/memory.memsw.limit_in_bytes')) {
    if (bytes(value) < bytes(fake.read(`${dir}/memory.limit_in_bytes`))) throw errno('EINVAL', path);
  }
  if (path.endsWith('/cpu.cfs_quota_us')) {
    const quota = (file: string | undefined): number => (file === undefined || Number(file) < 0 ? Infinity : Number(file));
    const parent = quota(fake.files.get(`${dir.slice(0, dir.lastIndexOf('/'))}/cpu.cfs_quota_us`));
    const children = fake.readdir(dir).map((c) => quota(fake.files.get(`${dir}/${c}/cpu.cfs_quota_us`)));
    const own = quota(value);
    if ((own !== Infinity && own > parent) || children.some((c) => c !== Infinity && c > own)) {
      throw errno('EINVAL', path);
    }
  }
}

function setup(opts: { memsw?: boolean } = {}) {
  const fake = new FakeCgroupFs({ controlFiles: controlFiles(opts.memsw ?? true), onWrite: kernelRules });
  for (const mount of Object.values(MOUNTS)) fake.addDir(mount);
  const signalled: number[] = [];
  // a SIGKILLed process leaves every hierarchy at once
  const signal = (pid: number): void => {
    signalled.push(pid);
    for (const [path, content] of fake.files) {
      if (path.endsWith('/cgroup.procs')) {
        fake.files.set(path, content.split('\n').filter((l) => l !== '' && Number(l) !== pid).join('\n'));
      }
    }
  };
  const driver = new HybridCgroupDriver({ mounts: MOUNTS, parent: 'ai-sandbox', fs: fake, signal, killTimeoutMs: 100 });
  driver.init();
  fake.writes.length = 0;
  return { fake, driver, signalled };
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

describe('HybridCgroupDriver.init', () => {
  it('creates the parent in every hierarchy', () => {
    const { fake } = setup();
    for (const mount of Object.values(MOUNTS)) expect(fake.dirs.has(`${mount}/ai-sandbox`)).toBe(true);
  });

  it('fails with CGROUP_UNAVAILABLE when a mount is not the controller it should be', () => {
    const fake = new FakeCgroupFs({ controlFiles: (dir) => (dir.startsWith(MOUNTS.pids) ? {} : controlFiles(true)(dir)) });
    for (const mount of Object.values(MOUNTS)) fake.addDir(mount);
    const err = catchAppError(() => new HybridCgroupDriver({ mounts: MOUNTS, fs: fake }).init());
    expect(err.code).toBe('CGROUP_UNAVAILABLE');
    expect(err.message).toContain('/cg/pids is not a cgroup v1 pids hierarchy');
  });

  it('fails with CGROUP_UNAVAILABLE when a hierarchy is not mounted at all', () => {
    const fake = new FakeCgroupFs({ controlFiles: controlFiles(true) });
    fake.addDir(MOUNTS.memory);
    const err = catchAppError(() => new HybridCgroupDriver({ mounts: MOUNTS, fs: fake }).init());
    expect(err.code).toBe('CGROUP_UNAVAILABLE');
    expect(err.message).toContain('cannot create /cg/cpu/ai-sandbox (ENOENT)');
  });
});

describe('HybridCgroupDriver limits', () => {
  it('writes the exact v1 values and exposes the cgroup2 dir and v1 procs files', () => {
    const { fake, driver } = setup();
    const cg = driver.create('a1', { memoryBytes: 256 << 20, cpus: 0.5, cpuWeight: 200, pidsMax: 64 });
    expect(cg.cgroup2Path).toBe('/cg/unified/ai-sandbox/sb-a1');
    expect(cg.v1ProcsFiles).toEqual([
      '/cg/memory/ai-sandbox/sb-a1/cgroup.procs',
      '/cg/cpu/ai-sandbox/sb-a1/cgroup.procs',
      '/cg/pids/ai-sandbox/sb-a1/cgroup.procs',
    ]);
    const m = '/cg/memory/ai-sandbox/sb-a1';
    const c = '/cg/cpu/ai-sandbox/sb-a1';
    expect(fake.writes).toEqual([
      [`${m}/memory.limit_in_bytes`, '268435456'],
      [`${m}/memory.memsw.limit_in_bytes`, '268435456'],
      [`${c}/cpu.cfs_period_us`, '100000'],
      [`${c}/cpu.cfs_quota_us`, '50000'],
      [`${c}/cpu.shares`, '2048'],
      ['/cg/pids/ai-sandbox/sb-a1/pids.max', '64'],
    ]);
  });

  it('orders memsw and the memory limit so memsw never drops below the limit', () => {
    const { fake, driver } = setup();
    const cg = driver.create('a', { memoryBytes: 256 << 20 });
    const mem = () => fake.writes.filter(([p]) => p.includes('/memory.')).map(([p, v]) => `${p.split('/').pop()}=${v}`);

    fake.writes.length = 0;
    cg.setLimits({ memoryBytes: 1 << 30 });
    expect(mem()).toEqual(['memory.memsw.limit_in_bytes=1073741824', 'memory.limit_in_bytes=1073741824']);

    fake.writes.length = 0;
    cg.setLimits({ memoryBytes: 128 << 20 });
    expect(mem()).toEqual(['memory.limit_in_bytes=134217728', 'memory.memsw.limit_in_bytes=134217728']);

    fake.writes.length = 0;
    cg.setLimits({});
    expect(mem()).toEqual(['memory.memsw.limit_in_bytes=-1', 'memory.limit_in_bytes=-1']);
  });

  it('writes nothing when the limits are what it last wrote (a warm slot taken with the defaults)', () => {
    const { fake, driver } = setup();
    const cg = driver.create('a', { memoryBytes: 256 << 20, pidsMax: 64 });
    fake.writes.length = 0;
    cg.setLimits({ memoryBytes: 256 << 20, pidsMax: 64 });
    expect(fake.writes).toEqual([]);
    cg.setLimits({ memoryBytes: 256 << 20, pidsMax: 65 });
    expect(fake.writes.map(([p]) => p.split('/').pop())).toContain('pids.max');
    fake.writes.length = 0;
    cg.setLimits({ memoryBytes: 256 << 20, pidsMax: 64 });
    expect(fake.read('/cg/pids/ai-sandbox/sb-a/pids.max')).toBe('64');
  });

  it('writes only memory.limit_in_bytes where swap accounting is off', () => {
    const { fake, driver } = setup({ memsw: false });
    driver.create('a', { memoryBytes: 256 << 20 });
    expect(fake.writes.filter(([p]) => p.includes('/memory.'))).toEqual([
      ['/cg/memory/ai-sandbox/sb-a/memory.limit_in_bytes', '268435456'],
    ]);
  });

  it('maps cpuWeight to cpu.shares and resets undefined limits', () => {
    const { fake, driver } = setup();
    const cg = driver.create('a', { cpuWeight: 1, cpus: 1, pidsMax: 5 });
    expect(fake.read('/cg/cpu/ai-sandbox/sb-a/cpu.shares')).toBe('10');
    cg.setLimits({ cpuWeight: 10000 });
    expect(fake.read('/cg/cpu/ai-sandbox/sb-a/cpu.shares')).toBe('102400');
    cg.setLimits({});
    expect(fake.read('/cg/cpu/ai-sandbox/sb-a/cpu.shares')).toBe('1024');
    expect(fake.read('/cg/cpu/ai-sandbox/sb-a/cpu.cfs_quota_us')).toBe('-1');
    expect(fake.read('/cg/pids/ai-sandbox/sb-a/pids.max')).toBe('max');
  });
});

describe('HybridCgroupDriver pools and names', () => {
  it('nests a pool in every hierarchy and caps a sandbox quota at the pool quota, as cgroup2 would', () => {
    const { fake, driver } = setup();
    driver.ensurePool('p1', { memoryBytes: 1 << 30, cpus: 1, pidsMax: 100 });
    const cg = driver.create('a', { cpus: 2 }, 'p1');
    for (const mount of Object.values(MOUNTS)) expect(fake.dirs.has(`${mount}/ai-sandbox/pool-p1/sb-a`)).toBe(true);
    expect(cg.cgroup2Path).toBe('/cg/unified/ai-sandbox/pool-p1/sb-a');
    expect(fake.read('/cg/memory/ai-sandbox/pool-p1/memory.limit_in_bytes')).toBe('1073741824');
    expect(fake.read('/cg/pids/ai-sandbox/pool-p1/pids.max')).toBe('100');
    expect(fake.read('/cg/cpu/ai-sandbox/pool-p1/sb-a/cpu.cfs_quota_us')).toBe('100000');
  });

  it('explains a pool quota lowered below a sandbox in it', () => {
    const { driver } = setup();
    driver.ensurePool('p1', { cpus: 2 });
    driver.create('a', { cpus: 2 }, 'p1');
    const err = catchAppError(() => driver.ensurePool('p1', { cpus: 1 }));
    expect(err.code).toBe('INVALID_ARGUMENT');
  });

  it.each(['../x', 'a/b', '..', 'A'])('rejects the name %j everywhere', (name) => {
    const { fake, driver } = setup();
    const dirsBefore = new Set(fake.dirs);
    expect(catchAppError(() => driver.create(name, {})).code).toBe('INVALID_ARGUMENT');
    expect(catchAppError(() => driver.create('ok', {}, name)).code).toBe('INVALID_ARGUMENT');
    expect(catchAppError(() => driver.ensurePool(name, {})).code).toBe('INVALID_ARGUMENT');
    expect(fake.dirs).toEqual(dirsBefore);
  });

  it('rejects an invalid parent name', () => {
    expect(() => new HybridCgroupDriver({ mounts: MOUNTS, parent: '../etc', fs: new FakeCgroupFs() })).toThrow(AppError);
  });

  it('lists a sandbox left in only one hierarchy by a crash, and can remove it', async () => {
    const { fake, driver } = setup();
    driver.ensurePool('p1', {});
    driver.create('a', {}, 'p1');
    fake.mkdir('/cg/pids/ai-sandbox/sb-half');
    expect(driver.list()).toEqual([
      { name: 'half', pool: undefined },
      { name: 'a', pool: 'p1' },
    ]);
    await driver.open('half')?.remove();
    expect(fake.dirs.has('/cg/pids/ai-sandbox/sb-half')).toBe(false);
    expect(driver.open('half')).toBeUndefined();
    await driver.removePool('p1');
    expect(driver.listPools()).toEqual([]);
    for (const mount of Object.values(MOUNTS)) expect(fake.readdir(`${mount}/ai-sandbox`)).toEqual([]);
  });

  it('destroy removes everything including the parent in every hierarchy', async () => {
    const { fake, driver } = setup();
    driver.create('top', {});
    driver.ensurePool('p1', {});
    driver.create('inner', {}, 'p1');
    fake.files.set('/cg/pids/ai-sandbox/pool-p1/sb-inner/cgroup.procs', '9\n');
    await driver.destroy();
    expect([...fake.dirs].sort()).toEqual(Object.values(MOUNTS).sort());
    await driver.destroy();
  });
});

describe('Hybrid sandbox cgroup', () => {
  it('reads stats from the v1 controllers and CPU time from cgroup2', () => {
    const { fake, driver } = setup();
    const cg = driver.create('a', {});
    fake.files.set('/cg/unified/ai-sandbox/sb-a/cpu.stat', 'usage_usec 2500\nuser_usec 2000\n');
    fake.files.set('/cg/cpu/ai-sandbox/sb-a/cpu.stat', 'nr_periods 10\nnr_throttled 4\nthrottled_time 99\n');
    fake.files.set('/cg/memory/ai-sandbox/sb-a/memory.usage_in_bytes', '1000\n');
    fake.files.set('/cg/memory/ai-sandbox/sb-a/memory.max_usage_in_bytes', '3000\n');
    fake.files.set('/cg/memory/ai-sandbox/sb-a/memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n');
    fake.files.set('/cg/pids/ai-sandbox/sb-a/pids.current', '2\n');
    expect(cg.stats()).toEqual({
      cpuUsageNs: 2_500_000,
      throttledPeriods: 4,
      memoryCurrentBytes: 1000,
      memoryPeakBytes: 3000,
      oomKills: 1,
      pidsCurrent: 2,
    });
  });

  it('reads only what an exit report needs for exitStats', () => {
    const { fake, driver } = setup();
    const cg = driver.create('a', {});
    fake.files.set('/cg/unified/ai-sandbox/sb-a/cpu.stat', 'usage_usec 2500\n');
    fake.files.set('/cg/memory/ai-sandbox/sb-a/memory.max_usage_in_bytes', '3000\n');
    fake.files.set('/cg/memory/ai-sandbox/sb-a/memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
    expect(cg.exitStats()).toEqual({ cpuUsageNs: 2_500_000, memoryPeakBytes: 3000, oomKills: 2 });
  });

  it('reads exitStats from files opened ahead, fresh at every read, and closes them on remove', async () => {
    const { fake, driver } = setup();
    const cg = driver.create('a', {});
    fake.files.set('/cg/unified/ai-sandbox/sb-a/cpu.stat', 'usage_usec 1\n');
    fake.files.set('/cg/memory/ai-sandbox/sb-a/memory.max_usage_in_bytes', '10\n');
    fake.files.set('/cg/memory/ai-sandbox/sb-a/memory.oom_control', 'oom_kill 0\n');
    cg.prepareExitStats();
    expect([...fake.opened].sort()).toEqual([
      '/cg/memory/ai-sandbox/sb-a/memory.max_usage_in_bytes',
      '/cg/memory/ai-sandbox/sb-a/memory.oom_control',
      '/cg/unified/ai-sandbox/sb-a/cpu.stat',
    ]);
    fake.files.set('/cg/unified/ai-sandbox/sb-a/cpu.stat', 'usage_usec 4000\n');
    fake.files.set('/cg/memory/ai-sandbox/sb-a/memory.oom_control', 'oom_kill 1\n');
    expect(cg.exitStats()).toEqual({ cpuUsageNs: 4_000_000, memoryPeakBytes: 10, oomKills: 1 });
    await cg.remove();
    expect(fake.opened.size).toBe(0);
    cg.prepareExitStats(); // too late (a start that raced its own removal): opens nothing
    expect(fake.opened.size).toBe(0);
  });

  it('kill writes cgroup.kill on cgroup2 and SIGKILLs every pid of the v1 cgroups', async () => {
    const { fake, driver, signalled } = setup();
    const cg = driver.create('a', {});
    fake.files.set('/cg/pids/ai-sandbox/sb-a/cgroup.procs', '7\n8\n');
    fake.files.set('/cg/memory/ai-sandbox/sb-a/cgroup.procs', '7\n8\n9\n');
    expect(cg.pids()).toEqual([7, 8, 9]);
    await cg.kill();
    expect(fake.writesTo('cgroup.kill')).toEqual([['/cg/unified/ai-sandbox/sb-a/cgroup.kill', '1']]);
    expect(signalled.sort()).toEqual([7, 8, 9]);
    expect(cg.pids()).toEqual([]);
  });

  it('kill gives up after its bound when a process does not leave', async () => {
    const fake = new FakeCgroupFs({ controlFiles: controlFiles(true) });
    for (const mount of Object.values(MOUNTS)) fake.addDir(mount);
    const driver = new HybridCgroupDriver({ mounts: MOUNTS, fs: fake, signal: () => {}, killTimeoutMs: 50 });
    driver.init();
    const cg = driver.create('a', {});
    fake.files.set('/cg/pids/ai-sandbox/sb-a/cgroup.procs', '7\n');
    await expect(cg.kill()).rejects.toMatchObject({ code: 'INTERNAL', retryable: true });
  });

  it('remove kills, removes every hierarchy, retries EBUSY and is idempotent', async () => {
    const { fake, driver } = setup();
    const cg = driver.create('a', {});
    fake.files.set('/cg/cpu/ai-sandbox/sb-a/cgroup.procs', '7\n');
    const realRmdir = fake.rmdir.bind(fake);
    let busy = 2;
    fake.rmdir = (path) => {
      if (path.startsWith(MOUNTS.memory) && busy-- > 0) throw errno('EBUSY', path);
      realRmdir(path);
    };
    await cg.remove();
    for (const mount of Object.values(MOUNTS)) expect(fake.dirs.has(`${mount}/ai-sandbox/sb-a`)).toBe(false);
    expect(busy).toBe(-1);
    await cg.remove();
  });
});
