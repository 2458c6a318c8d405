import { describe, expect, it } from 'vitest';
import type { StreamFrame } from '../protocol/schema.js';
import { ConnectionStream, HIGH_WATER } from './stream.js';

describe('ConnectionStream flow control', () => {
  it('drops past the high-water mark, counts it, and reports it when acknowledged', () => {
    const sent: StreamFrame[] = [];
    const s = new ConnectionStream('s1', (f) => sent.push(f), () => {});
    const chunk = Buffer.alloc(1024 * 1024, 120);
    for (let i = 0; i < 10; i++) s.output(1, chunk);
    const outputs = sent.filter((f) => f.kind === 'stdout');
    expect(outputs).toHaveLength(HIGH_WATER / chunk.length);
    expect(s.stats.droppedFrames).toBe(10 - outputs.length);
    s.ack(outputs.at(-1)!.seq);
    expect(sent.at(-1)?.event).toEqual({ type: 'dropped', frames: 2, bytes: 2 * chunk.length });
    s.output(2, Buffer.from('after'));
    expect(sent.at(-1)?.kind).toBe('stderr');
  });

  it('never drops events and ends once', () => {
    const sent: StreamFrame[] = [];
    let ended = 0;
    const s = new ConnectionStream('s2', (f) => sent.push(f), () => ended++);
    for (let i = 0; i < 9; i++) s.output(1, Buffer.alloc(1024 * 1024));
    s.event({ type: 'exit', report: { exitCode: 0, signal: null, reason: 'exited', cpuMs: 0, memoryPeakBytes: 0, startMs: 0, wallMs: 0 } });
    s.end();
    s.end();
    expect(sent.map((f) => f.event?.type).filter(Boolean)).toEqual(['exit', 'dropped', 'end']);
    expect(ended).toBe(1);
  });

  it('windows trace batches like output: drops are reported, writable() waits for acks', async () => {
    const sent: StreamFrame[] = [];
    const s = new ConnectionStream('s2', (f) => sent.push(f), () => {});
    const bytes = 1024 * 1024;
    let ok = 0;
    for (let i = 0; i < 10; i++) if (s.trace({ sandbox: 'x', count: 1, records: '' }, bytes)) ok++;
    expect(ok).toBe(HIGH_WATER / bytes);
    let ready = false;
    const w = s.writable().then(() => (ready = true));
    await Promise.resolve();
    expect(ready).toBe(false);
    s.ack(sent.at(-1)!.seq);
    await w;
    expect(ready).toBe(true);
    expect(sent.some((f) => f.event?.type === 'dropped')).toBe(true);
  });
});
