import { describe, expect, it } from 'vitest';
import { AppError } from '../errors/app-error.js';
import { detectCgroupDriver, parseMounts } from './detect.js';
import { FakeCgroupFs } from './fake-fs.js';

/** this CI host's /proc/self/mounts (trimmed): hybrid, cgroup2 without controllers at unified */
const HYBRID_MOUNTS = `proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
`;

const V2_MOUNTS = `sysfs /sys sysfs rw 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot 0 0
`;

function fakeWith(dirs: Record<string, Record<string, string>>): FakeCgroupFs {
  const fake = new FakeCgroupFs();
  for (const [dir, files] of Object.entries(dirs)) fake.addDir(dir, files);
  return fake;
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

describe('detectCgroupDriver', () => {
  it('picks v2 on a unified host with cpu, memory and pids', () => {
    const fake = fakeWith({ '/sys/fs/cgroup': { 'cgroup.controllers': 'cpuset cpu io memory pids\n' } });
    expect(detectCgroupDriver({ mounts: V2_MOUNTS, fs: fake }).mode).toBe('v2');
  });

  it('picks hybrid on this host layout, even though cgroup2 has no controllers there', () => {
    const fake = fakeWith({ '/sys/fs/cgroup/unified': { 'cgroup.controllers': '' } });
    expect(detectCgroupDriver({ mounts: HYBRID_MOUNTS, fs: fake }).mode).toBe('hybrid');
  });

  it('finds co-mounted v1 controllers and passes the parent name on', () => {
    const mounts = `cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,pids 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0
`;
    const files = { 'cgroup.procs': '' };
    const fake = new FakeCgroupFs({
      controlFiles: (dir) => ({
        ...files,
        ...(dir.includes('/memory/') ? { 'memory.limit_in_bytes': '-1' } : {}),
        ...(dir.includes('/cpu,cpuacct/') ? { 'cpu.cfs_quota_us': '-1', 'cpu.cfs_period_us': '100000', 'cpu.shares': '1024' } : {}),
        ...(dir.includes('/pids/') ? { 'pids.max': 'max' } : {}),
      }),
    });
    for (const d of ['/sys/fs/cgroup/cpu,cpuacct', '/sys/fs/cgroup/memory', '/sys/fs/cgroup/pids', '/sys/fs/cgroup/unified']) {
      fake.addDir(d);
    }
    const driver = detectCgroupDriver({ mounts, fs: fake, parent: 'ai-sandbox-test-1' });
    driver.init();
    const cg = driver.create('a', {});
    expect(cg.cgroup2Path).toBe('/sys/fs/cgroup/unified/ai-sandbox-test-1/sb-a');
    expect(cg.v1ProcsFiles).toContain('/sys/fs/cgroup/cpu,cpuacct/ai-sandbox-test-1/sb-a/cgroup.procs');
  });

  it('explains what is missing when neither layout is usable', () => {
    const fake = fakeWith({ '/sys/fs/cgroup': { 'cgroup.controllers': 'cpu io\n' } });
    const err = catchAppError(() => detectCgroupDriver({ mounts: V2_MOUNTS, fs: fake }));
    expect(err.code).toBe('CGROUP_UNAVAILABLE');
    expect(err.message).toContain('cgroup2 at /sys/fs/cgroup lacks memory, pids');
    expect(err.message).toContain('cgroup v1 hierarchies for memory, cpu, pids are not mounted');
  });

  it('needs a cgroup2 mount for the hybrid layout', () => {
    const v1Only = HYBRID_MOUNTS.split('\n').filter((l) => !l.startsWith('cgroup2')).join('\n');
    const err = catchAppError(() => detectCgroupDriver({ mounts: v1Only, fs: new FakeCgroupFs() }));
    expect(err.code).toBe('CGROUP_UNAVAILABLE');
    expect(err.message).toContain('no cgroup2 filesystem is mounted');
  });

  it('decodes octal escapes in mount paths', () => {
    expect(parseMounts('cgroup2 /mnt/my\\040cg cgroup2 rw 0 0\n')).toEqual([
      { path: '/mnt/my cg', type: 'cgroup2', options: ['rw'] },
    ]);
  });
});
