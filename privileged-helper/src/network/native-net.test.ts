import { describe, expect, it } from 'vitest';
import { decodeNetReplies, encodeNetRequest, NetOp } from './native-net.js';

function reply(status: number, text: string): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(status, 0);
  head.writeUInt32LE(Buffer.byteLength(text), 4);
  return Buffer.concat([head, Buffer.from(text)]);
}

describe('ai-sandbox-net framing', () => {
  it('encodes a request as length, op, payload', () => {
    expect([...encodeNetRequest(NetOp.SLOT_DEL, 'a\0b\0')]).toEqual([4, 0, 0, 0, 3, 97, 0, 98, 0]);
  });
  it('decodes whole replies and keeps a partial one for the next chunk', () => {
    const two = Buffer.concat([reply(0, 'ok'), reply(17, 'File exists')]);
    const { replies, rest } = decodeNetReplies(two.subarray(0, two.length - 3));
    expect(replies).toEqual([{ status: 0, text: 'ok' }]);
    expect(decodeNetReplies(Buffer.concat([rest, two.subarray(two.length - 3)]))).toEqual({ replies: [{ status: 17, text: 'File exists' }], rest: Buffer.alloc(0) });
  });
});
