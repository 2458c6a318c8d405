/**
 * Live traces end to end: a real helper, the real tracer (eBPF tp_btf), real sandboxes. The workload is
 * native/build/tracer-test-loop, bound read-only into the sandboxes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HelperClient } from '../../src/protocol/client.js';
import type { StreamEvent } from '../../src/protocol/schema.js';
import type { TraceEvent } from '../../src/trace/records.js';
import { traceEventFormatProblems } from '../../src/trace/test-records.js';
import { TestHelper } from './harness.js';

const BUILD = fileURLToPath(new URL('../../native/build', import.meta.url));
const LOOP = '/opt/t/tracer-test-loop';
const KNOWN = '/usr/lib/os-release';
const hasTracer = fs.existsSync(path.join(BUILD, 'ai-sandbox-tracer')) && fs.existsSync('/sys/kernel/btf/vmlinux');
type Counters = Extract<StreamEvent, { type: 'trace-counters' }>['counters'];

async function collect(c: HelperClient, sandbox: string, opts: { follow?: boolean; format?: 'events' | 'records'; syscalls?: string[] } = {}) {
  const { stream } = await c.call('trace.subscribe', { sandbox, follow: opts.follow ?? false, format: opts.format ?? 'events', ...(opts.syscalls && { syscalls: opts.syscalls }) });
  return new Promise<{ events: TraceEvent[]; count: number; counters: Counters | null }>((resolve) => {
    const events: TraceEvent[] = [];
    let count = 0;
    let counters: Counters | null = null;
    c.onStream(stream, (f) => {
      if (f.kind === 'trace' && f.trace) {
        count += f.trace.count;
        if (f.trace.events) events.push(...f.trace.events);
      } else if (f.event?.type === 'trace-counters') counters = f.event.counters;
      else if (f.event?.type === 'end') resolve({ events, count, counters });
    });
  });
}

function linkFds(pid: number): number {
  let n = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      if (fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').includes('link_type:')) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

describe.skipIf(!hasTracer)('live syscall traces', () => {
  let helper: TestHelper;
  let c: HelperClient;
  const mounts = [{ source: BUILD, target: '/opt/t', readOnly: true }];

  beforeAll(async () => {
    helper = await TestHelper.start();
    c = await helper.client();
  });
  afterAll(async () => {
    c?.close();
    const pid = (await helper.client().then((x) => x.call('trace.status', {}).finally(() => x.close())).catch(() => null))?.tracerPid;
    await helper?.destroy();
    // the tracer went with the helper, and with it every BPF link
    if (pid) expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    fs.rmSync(helper.env.AI_SANDBOX_STATE_ROOT!, { recursive: true, force: true });
  });

  it('shows exactly the open, connect and exec a sandbox made, decoded; an untraced sandbox and the host add nothing', async () => {
    const script = `${LOOP} open ${KNOWN}; ${LOOP} connect 9; ${LOOP} exec /bin/true`;
    await c.call('sandbox.create', { spec: { name: 'traced', command: ['/bin/sh', '-c', script], mounts, trace: true } });
    await c.call('sandbox.create', { spec: { name: 'untraced', command: [LOOP, 'open', KNOWN], mounts } });
    fs.closeSync(fs.openSync(KNOWN, 'r')); // the host too
    await c.call('sandbox.wait', { name: 'traced' });
    await c.call('sandbox.wait', { name: 'untraced' });
    const { events, counters } = await collect(c, 'traced');
    const opens = events.filter((e) => e.path === KNOWN);
    expect(opens).toHaveLength(1);
    expect(opens[0]).toMatchObject({ syscall: 'openat', fd: -100, flags: 'O_RDONLY|O_CLOEXEC' });
    expect(opens[0]!.ret).toBeGreaterThanOrEqual(0);
    const connects = events.filter((e) => e.syscall === 'connect');
    expect(connects).toHaveLength(1);
    expect(connects[0]).toMatchObject({ addr: { family: 'inet', address: '127.0.0.1', port: 9 }, ret: -111, errno: 'ECONNREFUSED' });
    const execs = events.filter((e) => e.syscall === 'execve' && e.path === '/bin/true');
    expect(execs).toHaveLength(1);
    expect(execs[0]!.ret).toBe(0);
    expect(counters).toMatchObject({ kernelDropped: 0, rateLimited: 0, streamDropped: 0 });
    expect(counters!.delivered).toBe(events.length);
    expect(counters!.emitted).toBe(events.length);
    // nothing of the untraced sandbox was recorded, and no event came from outside the traced one's pids
    const { traces } = await c.call('trace.list', {});
    expect(traces.map((t) => t.sandbox)).toEqual(['traced']);
    const info = await c.call('sandbox.inspect', { name: 'traced' });
    expect(info.exit?.exitCode).toBe(0);
    // the CLI shows the same, strace-like
    const r = await helper.cli(['trace', 'traced', '--syscalls', 'connect']);
    expect(r.stdout.trim().split('\n')).toEqual([expect.stringMatching(/\[traced \d+\] connect\(\d+, 127\.0\.0\.1:9\) = -1 ECONNREFUSED <[\d.]+>$/)]);
    expect(r.stderr).toMatch(/1 events shown; recorded \d+; dropped: 0 in the kernel/);
  });

  it('accounts for 1,000,000 getpid calls: delivered + dropped = the loop count', async () => {
    const n = 1_000_000;
    await c.call('sandbox.create', { spec: { name: 'million', command: [LOOP, 'getpid', String(n)], mounts, trace: { syscalls: ['getpid'] } } });
    const got = await collect(c, 'million', { follow: true, format: 'records' });
    const c1 = got.counters!;
    expect(c1.emitted + c1.kernelDropped + c1.rateLimited).toBe(n);
    expect(got.count + c1.streamDropped).toBe(c1.emitted);
    expect(got.count).toBe(c1.delivered);
    const stored = (await c.call('trace.list', {})).traces.find((t) => t.sandbox === 'million')!;
    expect(stored.records + stored.counters!.storeDropped).toBe(c1.emitted);
  });

  it('exports a Chrome trace that follows the Trace Event Format', async () => {
    const file = path.join(os.tmpdir(), `ai-sandbox-trace-${process.pid}.json`);
    try {
      const r = await helper.cli(['trace', 'export', 'traced', '--perfetto', file]);
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { traceEvents: Array<{ ph: string; name: string; args?: Record<string, unknown> }> };
      expect(traceEventFormatProblems(doc)).toEqual([]);
      expect(doc.traceEvents.some((e) => e.ph === 'X' && e.name === 'connect' && e.args?.addr === '127.0.0.1:9')).toBe(true);
      expect(doc.traceEvents.some((e) => e.ph === 'M' && e.name === 'process_name')).toBe(true);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });

  it('attaches only while a traced sandbox runs', async () => {
    await c.call('sandbox.create', { spec: { name: 'sleeper', command: ['/bin/sleep', '30'], trace: { syscalls: ['exec'] } } });
    const during = await c.call('trace.status', {});
    expect(during).toMatchObject({ supported: true, attached: true, traced: ['sleeper'] });
    expect(linkFds(during.tracerPid!)).toBe(2);
    await c.call('sandbox.stop', { name: 'sleeper', graceMs: 0 });
    const after = await c.call('trace.status', {});
    expect(after).toMatchObject({ attached: false, traced: [] });
    expect(linkFds(after.tracerPid!)).toBe(0);
  });
});
