/** Warm slots: default sandboxes start from a prepared slot, which is refilled; pooled ones start cold. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, TestHelper } from './harness.js';

describe('warm slots', () => {
  let helper: TestHelper;
  beforeAll(async () => {
    helper = await TestHelper.start();
  });
  afterAll(async () => helper?.destroy());

  it('keeps four slots ready, starts sandboxes from them, and refills', async () => {
    for (let i = 0; i < 50 && helper.census().warm < 4; i++) await sleep(20);
    expect(helper.census().warm).toBe(4);
    const client = await helper.client();
    for (let i = 0; i < 6; i++) await client.call('sandbox.create', { spec: { name: `w${i}`, command: ['sleep', '100'] }, attach: false, autoRemove: false });
    const infos = (await client.call('sandbox.list', {})).sandboxes;
    const fromSlots = infos.filter((s) => /\/sb-w\d+$/.test(s.cgroup2Path ?? ''));
    expect(fromSlots.length).toBeGreaterThanOrEqual(4);
    for (const s of infos) expect(s.status).toBe('running');
    for (let i = 0; i < 50 && helper.census().warm < 4; i++) await sleep(20);
    expect(helper.census().warm).toBe(4);
    for (let i = 0; i < 6; i++) await client.call('sandbox.remove', { name: `w${i}`, force: true });
    expect(helper.census().processes).toEqual([]);
    client.close();
  });

  it('applies the requested limits to a slot taken with defaults', async () => {
    const r = await helper.cli(['run', '--memory', '64M', '--', '/usr/bin/python3', '-c', 'b = bytearray(128 << 20)']);
    expect(r.code).toBe(137);
    expect(r.stderr).toMatch(/out of memory/);
  });
});
