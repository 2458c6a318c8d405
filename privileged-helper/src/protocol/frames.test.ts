import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder, FrameTooLargeError, MAX_FRAME_BYTES } from './frames.js';

describe('frames', () => {
  it('round-trips values split at every byte boundary', () => {
    const frames = Buffer.concat([encodeFrame({ a: 1 }), encodeFrame(['x', 'ü']), encodeFrame(null)]);
    for (let cut = 0; cut <= frames.length; cut++) {
      const dec = new FrameDecoder();
      const got = [...dec.push(frames.subarray(0, cut)), ...dec.push(frames.subarray(cut))];
      expect(got).toEqual([{ value: { a: 1 } }, { value: ['x', 'ü'] }, { value: null }]);
    }
  });

  it('reports a non-JSON frame as an error item and keeps decoding', () => {
    const bad = Buffer.from('{nope');
    const head = Buffer.alloc(4);
    head.writeUInt32BE(bad.length);
    const got = new FrameDecoder().push(Buffer.concat([head, bad, encodeFrame(7)]));
    expect(got[0]).toHaveProperty('error');
    expect(got[1]).toEqual({ value: 7 });
  });

  it('decodes a large frame that arrives in many small chunks, with frames before and after it', () => {
    const big = { data: 'x'.repeat(3 * 1024 * 1024) };
    const all = Buffer.concat([encodeFrame(1), encodeFrame(big), encodeFrame(2)]);
    const dec = new FrameDecoder();
    const got: unknown[] = [];
    for (let off = 0; off < all.length; off += 65536) got.push(...dec.push(all.subarray(off, off + 65536)));
    expect(got).toEqual([{ value: 1 }, { value: big }, { value: 2 }]);
  });

  it('refuses an impossible length', () => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(MAX_FRAME_BYTES + 1);
    expect(() => new FrameDecoder().push(head)).toThrow(FrameTooLargeError);
  });
});
