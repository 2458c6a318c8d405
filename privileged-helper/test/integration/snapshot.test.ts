/**
 * Time travel with real CRIU: checkpoint, restore, fork, and what must hold across them (memory state,
 * the filesystem as of the checkpoint, sockets in the sandbox's netns), plus integrity and no leaks.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { HelperClient } from '../../src/protocol/client.js';
import { useHelper } from './fixture.js';
import { sleep, type TestHelper } from './harness.js';

const FIXTURES = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures');
const PY = '/usr/bin/python3';

function counts(text: string): number[] {
  return [...text.matchAll(/count=(\d+)/g)].map((m) => Number(m[1]));
}

async function logsOf(h: TestHelper, name: string): Promise<string> {
  return (await h.cli(['logs', name])).stdout;
}

async function waitFor(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('checkpoint, restore and fork', () => {
  let helper: TestHelper;
  let client: HelperClient;
  const snapshotsDir = () => path.join(helper.env.AI_SANDBOX_STATE_ROOT!, 'snapshots');

  useHelper((h, cl) => {
    helper = h;
    client = cl;
  });

  const startCounter = async (name: string) => {
    await client.call('sandbox.create', { spec: { name, command: [PY, '/fixtures/counter.py'], mounts: [{ source: FIXTURES, target: '/fixtures', readOnly: true }] }, attach: false, autoRemove: false });
    await waitFor(async () => counts(await logsOf(helper, name)).length >= 5, `${name} to count`);
  };

  it('continues a Python process with its memory after checkpoint → stop → restore', async () => {
    await startCounter('c1');
    const snap = await client.call('snapshot.checkpoint', { name: 'c1', leaveRunning: false, label: 'first' });
    expect(snap.id).toMatch(/^s-[0-9a-f]{10}$/);
    const stopped = await client.call('sandbox.inspect', { name: 'c1' });
    expect(stopped.status).toBe('stopped');
    expect(stopped.exit?.reason).toBe('checkpointed');
    const before = counts(await logsOf(helper, 'c1'));
    const last = before.at(-1)!;
    const digest = /digest=(\w+)/.exec(await logsOf(helper, 'c1'))![1];

    const restored = await client.call('snapshot.restore', { snapshot: snap.id, name: 'c1r' });
    expect(restored.name).toBe('c1r');
    await waitFor(async () => counts(await logsOf(helper, 'c1r')).length >= 3, 'the restored counter');
    const after = counts(await logsOf(helper, 'c1r'));
    expect(after[0]).toBe(last + 1);
    expect(after).toEqual(after.map((_, i) => last + 1 + i));
    expect(await logsOf(helper, 'c1r')).toContain(`digest=${digest}`);
    const list = (await client.call('snapshot.list', { sandbox: 'c1' })).snapshots;
    expect(list.map((s) => s.id)).toContain(snap.id);
    expect(list.find((s) => s.id === snap.id)).toMatchObject({ label: 'first', parent: null });
    // a checkpoint of the restored sandbox is a child of the snapshot it came from
    const child = await client.call('snapshot.checkpoint', { name: 'c1r', leaveRunning: true });
    expect(child.parent).toBe(snap.id);
    await client.call('sandbox.remove', { name: 'c1r', force: true });
    await client.call('sandbox.remove', { name: 'c1', force: false });
  });

  it('travels in time: files as of the checkpoint, the original left running', async () => {
    await startCounter('t1');
    const snap = await client.call('snapshot.checkpoint', { name: 't1', leaveRunning: true });
    expect((await client.call('sandbox.inspect', { name: 't1' })).status).toBe('running');
    const n0 = counts(await logsOf(helper, 't1')).length;
    await waitFor(async () => counts(await logsOf(helper, 't1')).length > n0 + 3, 'the original to keep counting');
    expect((await helper.cli(['exec', 't1', '--', 'sh', '-c', 'echo later > /tmp/after.txt'])).code).toBe(0);
    await client.call('snapshot.restore', { snapshot: snap.id, name: 't1r' });
    const ls = await helper.cli(['exec', 't1r', '--', 'ls', '/tmp']);
    expect(ls.stdout).toContain('before.txt');
    expect(ls.stdout).not.toContain('after.txt');
    expect((await helper.cli(['exec', 't1', '--', 'ls', '/tmp'])).stdout).toContain('after.txt');
    const diff = await client.call('snapshot.diff', { from: snap.id, to: (await client.call('snapshot.checkpoint', { name: 't1', leaveRunning: true })).id });
    expect(diff.files.map((f) => `${f.kind} ${f.path}`)).toContain('added /tmp/after.txt');
    for (const n of ['t1', 't1r']) await client.call('sandbox.remove', { name: n, force: true });
  });

  it('forks 5 independent copies at once', async () => {
    await startCounter('f');
    const snap = await client.call('snapshot.checkpoint', { name: 'f', leaveRunning: false });
    const { names } = await client.call('snapshot.fork', { snapshot: snap.id, count: 5, prefix: 'fk' });
    expect(names).toEqual(['fk-1', 'fk-2', 'fk-3', 'fk-4', 'fk-5']);
    const hosts = new Set<string>();
    for (const n of names) {
      hosts.add((await helper.cli(['exec', n, '--', 'hostname'])).stdout.trim());
      expect((await helper.cli(['exec', n, '--', 'sh', '-c', `echo ${n} > /tmp/mine`])).code).toBe(0);
    }
    expect(hosts.size).toBe(5);
    for (const n of names) expect((await helper.cli(['exec', n, '--', 'cat', '/tmp/mine'])).stdout.trim()).toBe(n);
    await waitFor(async () => (await Promise.all(names.map((n) => logsOf(helper, n)))).every((t) => counts(t).length >= 2), 'every fork to count');
    for (const n of [...names, 'f']) await client.call('sandbox.remove', { name: n, force: true });
  });

  it('restores a Node HTTP server that keeps serving in its netns, with its state', async () => {
    await client.call('sandbox.create', {
      spec: { name: 'web', command: ['node', '/fixtures/server.cjs'], allowListen: true, mounts: [{ source: FIXTURES, target: '/fixtures', readOnly: true }] },
      attach: false,
      autoRemove: false,
    });
    await waitFor(async () => (await logsOf(helper, 'web')).includes('listening'), 'the server');
    const get = "require('http').get('http://127.0.0.1:8080', (r) => r.pipe(process.stdout))";
    expect((await helper.cli(['exec', 'web', '--', 'node', '-e', get])).stdout).toBe('hits=1\n');
    const snap = await client.call('snapshot.checkpoint', { name: 'web', leaveRunning: false });
    await client.call('snapshot.restore', { snapshot: snap.id, name: 'web2' });
    expect((await helper.cli(['exec', 'web2', '--', 'node', '-e', get])).stdout).toBe('hits=2\n');
    for (const n of ['web', 'web2']) await client.call('sandbox.remove', { name: n, force: true });
  });

  it('refuses a corrupt snapshot with the file and the parent named, and leaves nothing', async () => {
    await startCounter('k');
    const parent = await client.call('snapshot.checkpoint', { name: 'k', leaveRunning: true });
    await client.call('snapshot.restore', { snapshot: parent.id, name: 'k2' });
    const child = await client.call('snapshot.checkpoint', { name: 'k2', leaveRunning: false });
    const img = path.join(snapshotsDir(), child.id, 'img');
    const pages = fs.readdirSync(img).find((f) => f.startsWith('pages-'))!;
    const buf = fs.readFileSync(path.join(img, pages));
    buf[100] = buf[100]! ^ 0xff;
    fs.writeFileSync(path.join(img, pages), buf);
    const r = await helper.cli(['restore', child.id, '--name', 'k3']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`snapshot ${child.id} is corrupt: img/${pages} does not match its checksum`);
    expect(r.stderr).toContain(`ai-sandbox restore ${parent.id}`);
    expect((await client.call('sandbox.list', {})).sandboxes.map((s) => s.name)).not.toContain('k3');
    for (const n of ['k', 'k2']) await client.call('sandbox.remove', { name: n, force: true });
  });

  it('leaves no mount, cgroup or process behind, and removes snapshots', async () => {
    const census = helper.census();
    expect(census.processes).toEqual([]);
    expect(census.cgroups).toEqual([]);
    expect(census.mounts.filter((m) => m.includes('/sb/'))).toEqual([]);
    const all = (await client.call('snapshot.list', {})).snapshots;
    expect(all.length).toBeGreaterThan(0);
    for (const s of all) await client.call('snapshot.remove', { snapshot: s.id });
    expect((await client.call('snapshot.list', {})).snapshots).toEqual([]);
  });
});
