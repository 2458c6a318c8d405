/**
 * Approvals end to end: a real helper, the launcher's notify filter, the native supervisor. The workload
 * (native/build/tracer-test-loop connect PORT) prints what its connect returned.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { HelperClient } from '../../src/protocol/client.js';
import type { ApprovalInfo } from '../../src/protocol/schema.js';
import { useHelper } from './fixture.js';
import { TestHelper } from './harness.js';

const BUILD = fileURLToPath(new URL('../../native/build', import.meta.url));
const LOOP = '/opt/t/tracer-test-loop';
const mounts = [{ source: BUILD, target: '/opt/t', readOnly: true }];
const built = fs.existsSync(path.join(BUILD, 'ai-sandbox-unotify')) && fs.existsSync(path.join(BUILD, 'tracer-test-loop'));

async function output(c: HelperClient, name: string): Promise<string> {
  const { stream } = await c.call('sandbox.logs', { name, follow: false });
  let out = '';
  await new Promise<void>((resolve) =>
    c.onStream(stream, (f) => {
      if (f.kind === 'stdout') out += Buffer.from(f.data ?? '', 'base64').toString();
      if (f.event?.type === 'end') resolve();
    }),
  );
  return out;
}

async function waitingFor(c: HelperClient, sandbox: string): Promise<ApprovalInfo> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const a = (await c.call('approvals.list', {})).approvals.find((x) => x.sandbox === sandbox && x.status === 'pending');
    if (a) return a;
    if (Date.now() > deadline) throw new Error(`no approval request from ${sandbox}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(!built)('approvals (seccomp user notification)', () => {
  let helper: TestHelper;
  let c: HelperClient;
  useHelper((h, cl) => {
    helper = h;
    c = cl;
  });

  it('an ask on connect blocks until approved; a deny returns EPERM to the program', async () => {
    const spec = (name: string, timeoutMs = 20_000) => ({ name, command: [LOOP, 'connect', '9'], mounts, approvals: { ask: ['connect'], timeoutMs } });
    await c.call('sandbox.create', { spec: spec('ask-yes') });
    const req = await waitingFor(c, 'ask-yes');
    expect(req).toMatchObject({ syscall: 'connect', addr: { family: 'inet', address: '127.0.0.1', port: 9 } });
    await new Promise((r) => setTimeout(r, 300));
    expect((await c.call('sandbox.inspect', { name: 'ask-yes' })).status).toBe('running'); // still waiting
    const decided = await c.call('approvals.decide', { id: req.id, allow: true });
    expect(decided).toMatchObject({ status: 'allowed', by: 'user' });
    await c.call('sandbox.wait', { name: 'ask-yes' });
    expect(await output(c, 'ask-yes')).toBe('connect: ECONNREFUSED\n'); // it really connected (nobody listens)

    await c.call('sandbox.create', { spec: spec('ask-no') });
    const req2 = await waitingFor(c, 'ask-no');
    const r = await helper.cli(['deny', req2.id]);
    expect(r.code, r.stderr).toBe(0);
    await c.call('sandbox.wait', { name: 'ask-no' });
    expect(await output(c, 'ask-no')).toBe('connect: EPERM\n');

    await c.call('sandbox.create', { spec: spec('ask-late', 300) });
    await c.call('sandbox.wait', { name: 'ask-late' });
    expect(await output(c, 'ask-late')).toBe('connect: EPERM\n');
    const all = (await c.call('approvals.list', {})).approvals;
    expect(all.find((a) => a.sandbox === 'ask-late')).toMatchObject({ status: 'timed-out', by: 'timeout' });
    // sandboxes without approvals (warm slots, exec) are untouched by it
    await c.call('sandbox.create', { spec: { name: 'plain', command: [LOOP, 'connect', '9'], mounts } });
    await c.call('sandbox.wait', { name: 'plain' });
    expect(await output(c, 'plain')).toBe('connect: ECONNREFUSED\n');
  });

  it('refuses syscalls a sandbox needs before its program starts', async () => {
    await expect(c.call('sandbox.create', { spec: { command: ['/bin/true'], approvals: { ask: ['execve'] } } })).rejects.toThrow(/execve cannot be `ask`/);
  });
});
