import { describe, expect, it } from 'vitest';
import { decodeCounters, TracerFrameDecoder } from './tracer.js';

function frame(type: number, id: number, body: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUInt32LE(body.length + 5, 0);
  h.writeUInt8(type, 4);
  h.writeUInt32LE(id, 5);
  return Buffer.concat([h, body]);
}

describe('tracer client', () => {
  it('decodes frames split at any point, including 1 MiB EVENTS frames in pipe-sized chunks', () => {
    const big = Buffer.alloc(1 << 20, 7);
    const all = Buffer.concat([frame(101, 1, Buffer.alloc(24)), frame(102, 0, big), frame(101, 2, Buffer.alloc(24))]);
    for (const step of [1, 3, 4096, 65536, all.length]) {
      const dec = new TracerFrameDecoder();
      const got: Array<{ type: number; id: number; len: number }> = [];
      for (let off = 0; off < all.length; off += step) for (const f of dec.push(all.subarray(off, off + step))) got.push({ type: f.type, id: f.id, len: f.body.length });
      expect(got).toEqual([
        { type: 101, id: 1, len: 24 },
        { type: 102, id: 0, len: 1 << 20 },
        { type: 101, id: 2, len: 24 },
      ]);
    }
  });

  it('decodes COUNTERS with the aggregation by syscall', () => {
    const b = Buffer.alloc(8 + 40 + 16);
    b.writeUInt32LE(1, 0);
    b.writeBigUInt64LE(77n, 8);
    b.writeBigUInt64LE(10n, 16);
    b.writeBigUInt64LE(2n, 24);
    b.writeBigUInt64LE(5n, 32);
    b.writeUInt32LE(1, 40);
    b.writeUInt32LE(39, 48);
    b.writeBigUInt64LE(5n, 56);
    const c = decodeCounters(b).get(77n)!;
    expect(c).toMatchObject({ emitted: 10, ringbufDropped: 2, rateLimited: 5 });
    expect([...c.aggregated]).toEqual([[39, 5]]);
  });
});
