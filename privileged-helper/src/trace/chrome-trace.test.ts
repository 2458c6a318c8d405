import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { chromeTrace } from './chrome-trace.js';
import { readChunks, readIndex, TraceWriter } from './store.js';
import { makeRecord, sockaddrIn, traceEventFormatProblems } from './test-records.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function storedTrace(): Promise<string> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'trace-test-'));
  dirs.push(root);
  const dir = path.join(root, 'sb1');
  const w = new TraceWriter(dir, { sandbox: 'sb1', run: null, cgid: '7', startedAt: new Date().toISOString(), endedAt: null, wallOffsetNs: '1000000000000000000', syscalls: null, rate: 0, counters: null });
  w.append(makeRecord({ tsNs: 1_000_000n, nr: 257, args: [-100n, 0n, 0n], ret: 3n, path: '/etc/hostname' }));
  w.flush();
  w.append(Buffer.concat([makeRecord({ tsNs: 2_000_000n, nr: 42, ret: -111n, addr: sockaddrIn([127, 0, 0, 1], 1) }), makeRecord({ tsNs: 3_000_000n, nr: 231, flags: 1, durNs: 0n })]));
  await w.close({ emitted: 3, kernelDropped: 0, rateLimited: 5, aggregated: { getpid: 5 }, storeDropped: 0 });
  return dir;
}

describe('trace store and Chrome trace export', () => {
  it('keeps records in independent gzip members with a time index', async () => {
    const dir = await storedTrace();
    const index = readIndex(dir);
    expect(index).toHaveLength(2);
    expect(index[1]).toMatchObject({ firstNs: 2_000_000, lastNs: 3_000_000, count: 2 });
    expect([...readChunks(dir, { fromNs: 2_500_000 })]).toHaveLength(1);
    // the whole file is one valid gzip stream too (zcat works)
    const all = (await import('node:zlib')).gunzipSync(fs.readFileSync(path.join(dir, 'records.gz')));
    expect(all.length).toBe([...readChunks(dir)].reduce((a, b) => a + b.length, 0));
  });

  it('exports valid Trace Event Format JSON with one slice per syscall', async () => {
    const dir = await storedTrace();
    const doc = JSON.parse([...chromeTrace([dir])].join('')) as { traceEvents: Array<Record<string, unknown>> };
    expect(traceEventFormatProblems(doc)).toEqual([]);
    const names = doc.traceEvents.map((e) => `${e.ph}:${e.name}`);
    expect(names).toEqual(['M:process_name', 'X:openat', 'X:connect', 'i:exit_group', 'C:trace drops']);
    expect(doc.traceEvents[1]!.args).toMatchObject({ path: '/etc/hostname', ret: 3 });
    expect(doc.traceEvents[2]!.args).toMatchObject({ addr: '127.0.0.1:1', errno: 'ECONNREFUSED' });
    expect(doc.traceEvents[4]!.args).toMatchObject({ rateLimited: 5 });
  });

  it('the validator catches what viewers reject', () => {
    expect(traceEventFormatProblems({ traceEvents: [{ name: 'x', ph: 'X', ts: 1, pid: 1, tid: 1 }] })).toEqual(['event 0: a complete event needs dur >= 0']);
    expect(traceEventFormatProblems([])).toEqual(['the top level is not an object']);
  });
});
