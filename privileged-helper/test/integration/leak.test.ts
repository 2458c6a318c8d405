/**
 * Nothing outlives a sandbox: 300 sandboxes that end every way (exit, kill, OOM, timeout) leave no mount,
 * cgroup, process or tmpfs; neither does a helper killed with -9 in the middle, once a new one starts; and
 * a Ctrl-C at the helper's terminal stops it in order, leaving nothing at all.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HelperClient } from '../../src/protocol/client.js';
import type { ExitReport } from '../../src/protocol/schema.js';
import { TestHelper } from './harness.js';

const PY = '/usr/bin/python3';

function runToEnd(client: HelperClient, command: string[], extra: { memoryBytes?: number; timeoutMs?: number } = {}): Promise<ExitReport | null> {
  return client
    .call('sandbox.create', {
      spec: { command, limits: extra.memoryBytes ? { memoryBytes: extra.memoryBytes } : {}, ...(extra.timeoutMs ? { timeoutMs: extra.timeoutMs } : {}) },
      attach: true,
      autoRemove: true,
    })
    .then(
      (res) =>
        new Promise<ExitReport | null>((resolve) => {
          let report: ExitReport | null = null;
          client.onStream(res.stream!, (f) => {
            if (f.event?.type === 'exit') report = f.event.report;
            if (f.event?.type === 'end') resolve(report);
          });
        }),
    );
}

describe('no leaks', () => {
  let helper: TestHelper;
  beforeAll(async () => {
    helper = await TestHelper.start();
  });
  afterAll(async () => helper?.destroy());

  it('300 sandboxes ending every way leave nothing behind', async () => {
    const client = await helper.client();
    const reasons = new Map<string, number>();
    const kinds = 4;
    for (let batch = 0; batch < 300 / 10; batch++) {
      const jobs = Array.from({ length: 10 }, (_, j) => {
        const i = batch * 10 + j;
        switch (i % kinds) {
          case 0:
            return runToEnd(client, ['true']);
          case 1:
            return runToEnd(client, ['sh', '-c', 'kill -KILL $$']);
          case 2:
            return runToEnd(client, [PY, '-S', '-c', 'b = bytearray(64 << 20)'], { memoryBytes: 16 << 20 });
          default:
            return runToEnd(client, ['sleep', '10'], { timeoutMs: 50 });
        }
      });
      for (const r of await Promise.all(jobs)) reasons.set(r?.reason ?? 'none', (reasons.get(r?.reason ?? 'none') ?? 0) + 1);
    }
    client.close();
    expect(Object.fromEntries(reasons)).toEqual({ exited: 75, signaled: 75, 'oom-killed': 75, 'timed-out': 75 });
    const census = await helper.settledCensus();
    expect(census.processes).toEqual([]);
    expect(census.cgroups).toEqual([]);
    expect(census.mounts.filter((m) => m.includes('/sb/'))).toEqual([]);
    expect(census.warm).toBeLessThanOrEqual(4);
  }, 300_000);

  it('a sandbox removed the moment its exit is reported leaves no cgroup or mount (teardown runs after the report)', async () => {
    const client = await helper.client();
    for (let i = 0; i < 10; i++) {
      const res = await client.call('sandbox.create', { spec: { command: ['true'] }, attach: true, autoRemove: false });
      const exited = new Promise<ExitReport | null>((resolve) => {
        let report: ExitReport | null = null;
        client.onStream(res.stream!, (f) => {
          if (f.event?.type === 'exit') report = f.event.report;
          if (f.event?.type === 'end') resolve(report);
        });
      });
      const { cgroup2Path } = await client.call('sandbox.inspect', { name: res.name });
      expect((await exited)?.reason).toBe('exited');
      await client.call('sandbox.remove', { name: res.name });
      // the remove answers only once the init is reaped and its cgroup and tmpfs are gone
      expect(cgroup2Path).toBeTruthy();
      expect(fs.existsSync(cgroup2Path!)).toBe(false);
      const hostName = path.basename(cgroup2Path!).replace(/^sb-/, '');
      expect(helper.census().mounts.filter((m) => m.endsWith(`/sb/${hostName}`))).toEqual([]);
    }
    client.close();
  }, 60_000);

  it('a helper killed with -9 mid-run leaves nothing once a new helper starts', async () => {
    const client = await helper.client();
    for (let i = 0; i < 10; i++) {
      await client.call('sandbox.create', { spec: { name: `doomed-${i}`, command: ['sleep', '1000'] }, attach: false, autoRemove: false });
    }
    expect(helper.census().processes.length).toBeGreaterThanOrEqual(20);
    await helper.kill9();
    await helper.startProcess();
    expect(helper.stderr).toMatch(/cleaned up after daemon/);
    const census = await helper.settledCensus();
    expect(census.processes).toEqual([]);
    expect(census.cgroups).toEqual([]);
    expect(census.mounts.filter((m) => m.includes('/sb/'))).toEqual([]);
    const fresh = await helper.client();
    expect((await fresh.call('sandbox.list', {})).sandboxes).toEqual([]);
    fresh.close();
  }, 120_000);

  it("a Ctrl-C at the helper's terminal (SIGINT to its process group) stops it in order and leaves nothing", async () => {
    const own = new TestHelper();
    try {
      await own.startProcess({ ownGroup: true });
      // the network pool has made its slots (namespaces bind-mounted under the instance's net/)
      for (const deadline = Date.now() + 10_000; !own.census().mounts.some((m) => m.includes('/net/')); ) {
        if (Date.now() > deadline) throw new Error(`the network pool made no slot: ${own.stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const client = await own.client();
      await client.call('sandbox.create', { spec: { name: 'plain', command: ['sleep', '1000'] }, attach: false, autoRemove: false });
      await client.call('sandbox.create', { spec: { name: 'networked', command: ['sleep', '1000'], network: { allowPorts: [{ port: 443 }] } }, attach: false, autoRemove: false });
      client.close();
      // the terminal's SIGINT reaches every process of the group: before the fix the network process died
      // with it, the helper's stop failed (EBUSY on a still-mounted namespace) and the helper never exited
      expect(await own.interruptGroup()).toEqual({ code: 0, signal: null });
      expect(own.stderr).not.toMatch(/EBUSY|failed|error/i);
      const census = own.census();
      expect(census.processes).toEqual([]);
      expect(census.cgroups).toEqual([]);
      expect(census.mounts).toEqual([]);
      const net = await own.netCensus();
      expect(net.veths).toEqual([]);
      expect(net.table).toBe(false);
    } finally {
      await own.destroy();
    }
  }, 60_000);
});
