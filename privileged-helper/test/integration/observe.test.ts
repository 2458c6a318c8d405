/** Resource samples and anomaly events from real sandboxes (rules named in each event). */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Anomaly, ResourceSample } from '../../src/observe/rules.js';
import type { HelperClient } from '../../src/protocol/client.js';
import { useHelper } from './fixture.js';
import { TestHelper } from './harness.js';

const BUILD = fileURLToPath(new URL('../../native/build', import.meta.url));
const hasTracer = fs.existsSync(path.join(BUILD, 'ai-sandbox-tracer')) && fs.existsSync('/sys/kernel/btf/vmlinux');

async function watchUntil(c: HelperClient, sandbox: string, done: (a: Anomaly[], s: ResourceSample[]) => boolean, ms = 15_000) {
  const { stream } = await c.call('observe.watch', { sandbox });
  const anomalies: Anomaly[] = [];
  const samples: ResourceSample[] = [];
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out: ${JSON.stringify(anomalies)} ${JSON.stringify(samples.slice(-3))}`)), ms);
    c.onStream(stream, (f) => {
      if (f.event?.type === 'anomaly') anomalies.push(f.event.anomaly);
      if (f.event?.type === 'resources') samples.push(f.event.sample);
      if (done(anomalies, samples)) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  await c.call('stream.cancel', { stream });
  return { anomalies, samples };
}

describe('resource and anomaly events', () => {
  let helper: TestHelper;
  let c: HelperClient;
  useHelper((h, cl) => {
    helper = h;
    c = cl;
  });

  it('samples a running sandbox and raises memory-near-limit', async () => {
    const code = "b = b'x' * (85 * 1024 * 1024); import time; time.sleep(8)";
    await c.call('sandbox.create', { spec: { name: 'mem', command: ['/usr/bin/python3', '-S', '-c', code], limits: { memoryBytes: 100 * 1024 * 1024 }, anomalies: { memoryNearLimit: 0.8 } } });
    const { anomalies, samples } = await watchUntil(c, 'mem', (a) => a.some((x) => x.rule === 'memory-near-limit'));
    const a = anomalies.find((x) => x.rule === 'memory-near-limit')!;
    expect(a.sandbox).toBe('mem');
    expect(a.details.used as number).toBeGreaterThanOrEqual(0.8);
    expect(samples.length).toBeGreaterThan(0);
    expect(samples.at(-1)).toMatchObject({ sandbox: 'mem', memoryLimitBytes: 100 * 1024 * 1024 });
    await c.call('sandbox.stop', { name: 'mem', graceMs: 0 });
  });

  it.skipIf(!hasTracer)('raises unexpected-exec and denied-syscall from a traced sandbox', async () => {
    const script = '/opt/t/tracer-test-loop exec /bin/true; /opt/t/tracer-test-loop unshare; exit 0';
    await c.call('sandbox.create', {
      spec: { name: 'odd', command: ['/bin/sh', '-c', script], mounts: [{ source: BUILD, target: '/opt/t', readOnly: true }], trace: true, anomalies: { allowedExec: ['/bin/sh', '/opt/t/'] } },
    });
    await c.call('sandbox.wait', { name: 'odd' });
    const { anomalies } = await c.call('observe.anomalies', { sandbox: 'odd' });
    const execs = anomalies.filter((a) => a.rule === 'unexpected-exec');
    expect(execs.map((a) => a.details.path)).toEqual(['/bin/true']);
    const denied = anomalies.filter((a) => a.rule === 'denied-syscall').map((a) => a.details.syscall);
    expect(denied).toContain('unshare');
    const r = await helper.cli(['observe', 'odd']);
    expect(r.stdout).toMatch(/ANOMALY unexpected-exec: exec of \/bin\/true/);
  });
});
