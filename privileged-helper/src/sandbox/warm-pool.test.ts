import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CgroupDriver, SandboxCgroup } from '../cgroup/types.js';
import type { Launcher } from '../launcher/launcher.js';
import { WarmPool } from './warm-pool.js';

function setup(size: number) {
  const prepared: number[] = [];
  const launcher = {
    prepare: async (id: number) => {
      prepared.push(id);
    },
    kill: () => {},
    cleanup: async () => {},
  } as unknown as Launcher;
  const cgroups = {
    createAsync: async (name: string) => ({ name, cgroup2Path: `/cg/${name}`, v1ProcsFiles: [], prepareExitStats: () => {}, remove: async () => {} }) as unknown as SandboxCgroup,
  } as unknown as CgroupDriver;
  let id = 0;
  const pool = new WarmPool(launcher, cgroups, '/run/x/sb', size, { limits: {}, tmpfsBytes: 1 << 20, lowerDirs: ['/'] }, () => ++id);
  return { pool, prepared };
}

describe('WarmPool refill timing', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('refills a pool left at half 10 ms after the take, never inside the start that took the slot', async () => {
    const { pool, prepared } = setup(4);
    pool.fill();
    await vi.advanceTimersByTimeAsync(0);
    expect(prepared).toHaveLength(4);
    expect(pool.take()).toBeDefined();
    expect(pool.take()).toBeDefined(); // 2 of 4 left: low
    await vi.advanceTimersByTimeAsync(9);
    expect(prepared).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(1);
    expect(prepared).toHaveLength(6);
  });

  it('does not push back a refill that is due when more starts come', async () => {
    const { pool, prepared } = setup(4);
    pool.fill();
    await vi.advanceTimersByTimeAsync(0);
    pool.take();
    pool.take(); // low: refill due in 10 ms
    await vi.advanceTimersByTimeAsync(6);
    pool.take();
    await vi.advanceTimersByTimeAsync(4);
    expect(prepared).toHaveLength(4 + 3);
  });

  it('tops up a pool above half only once starts pause for 50 ms', async () => {
    const { pool, prepared } = setup(4);
    pool.fill();
    await vi.advanceTimersByTimeAsync(0);
    pool.take(); // 3 of 4 left
    await vi.advanceTimersByTimeAsync(40);
    expect(prepared).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(10);
    expect(prepared).toHaveLength(5);
  });

  it('holds a due top-up off while a checkpoint or restore runs, and schedules it when the last one ends', async () => {
    const { pool, prepared } = setup(4);
    pool.fill();
    await vi.advanceTimersByTimeAsync(0);
    pool.take(); // 3 of 4: top-up due in 50 ms
    await vi.advanceTimersByTimeAsync(30);
    let endOuter!: () => void;
    let endInner!: () => void;
    const outer = pool.holdRefills(() => new Promise<void>((r) => (endOuter = r)));
    const inner = pool.holdRefills(() => new Promise<void>((r) => (endInner = r)));
    pool.take(); // 2 of 4 inside the hold: low, still no refill
    await vi.advanceTimersByTimeAsync(200);
    expect(prepared).toHaveLength(4);
    endInner();
    await inner;
    await vi.advanceTimersByTimeAsync(100);
    expect(prepared).toHaveLength(4); // the outer one still runs
    endOuter();
    await outer;
    await vi.advanceTimersByTimeAsync(9);
    expect(prepared).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(1); // low: 10 ms after the hold
    expect(prepared).toHaveLength(6);
  });

  it('a held operation that fails still lets the refill come after it', async () => {
    const { pool, prepared } = setup(2);
    pool.fill();
    await vi.advanceTimersByTimeAsync(0);
    const failing = pool.holdRefills(async () => {
      pool.take();
      throw new Error('restore failed');
    });
    await expect(failing).rejects.toThrow('restore failed');
    await vi.advanceTimersByTimeAsync(9);
    expect(prepared).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(prepared).toHaveLength(3);
  });

  it('an empty pool gives no slot, and the start goes cold', async () => {
    const { pool } = setup(0);
    pool.fill();
    await vi.advanceTimersByTimeAsync(0);
    expect(pool.take()).toBeUndefined();
  });
});
