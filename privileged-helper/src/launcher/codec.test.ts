import { describe, expect, it } from 'vitest';
import { encodeFrame, encodeTlv, LauncherFrameDecoder, Tag, TlvBody } from './codec.js';

describe('launcher codec', () => {
  it('encodes TLV fields the way the launcher reads them', () => {
    const body = encodeTlv([
      [Tag.ARG, 'echo'],
      [Tag.UID, 65534n],
    ]);
    expect([...body.subarray(0, 9)]).toEqual([1, 4, 0, 0, 0, 0x65, 0x63, 0x68, 0x6f]);
    expect(body.readUInt8(9)).toBe(Tag.UID);
    expect(body.readUInt32LE(10)).toBe(8);
    expect(body.readBigUInt64LE(14)).toBe(65534n);
  });

  it('decodes frames split across chunks and reads TLV values back', () => {
    const frame = encodeFrame(101, 7, encodeTlv([[Tag.PID, 1234n], [Tag.MESSAGE, 'hi']]));
    const dec = new LauncherFrameDecoder();
    expect(dec.push(frame.subarray(0, 3))).toEqual([]);
    const [f] = dec.push(frame.subarray(3));
    expect(f?.type).toBe(101);
    expect(f?.id).toBe(7);
    const tlv = new TlvBody(f!.body);
    expect(tlv.num(Tag.PID)).toBe(1234n);
    expect(tlv.str(Tag.MESSAGE)).toBe('hi');
    expect(tlv.num(Tag.ERRNO)).toBeUndefined();
  });
});
