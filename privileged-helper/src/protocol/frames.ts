/**
 * Length-prefixed JSON frames: a u32 big-endian byte length, then that many bytes of UTF-8 JSON.
 * The decoder never throws on bad input: a frame that is not JSON becomes a `{ error }` item so the server
 * can answer it and carry on; only a length above the limit is fatal for the connection, since the
 * stream cannot be re-synchronised after it.
 */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

export type DecodedFrame = { value: unknown } | { error: string };

export function encodeFrame(value: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(value), 'utf8');
  if (body.length > MAX_FRAME_BYTES) throw new Error(`frame of ${body.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

export class FrameTooLargeError extends Error {
  constructor(readonly length: number) {
    super(`frame length ${length} exceeds the limit of ${MAX_FRAME_BYTES} bytes`);
  }
}

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** bytes the frame at the front needs in all (0: unknown yet) */
  private need = 0;

  /** Feed bytes; returns every complete frame. Throws FrameTooLargeError for an impossible length. */
  push(chunk: Buffer): DecodedFrame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    // a large frame arrives in many chunks: join them once it is complete, not at every chunk
    if (this.buffered < this.need) return [];
    this.need = 0;
    const out: DecodedFrame[] = [];
    let buf = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks, this.buffered);
    let offset = 0;
    while (buf.length - offset >= 4) {
      const len = buf.readUInt32BE(offset);
      if (len > MAX_FRAME_BYTES) throw new FrameTooLargeError(len);
      if (buf.length - offset - 4 < len) {
        this.need = 4 + len;
        break;
      }
      const text = buf.toString('utf8', offset + 4, offset + 4 + len);
      offset += 4 + len;
      try {
        out.push({ value: JSON.parse(text) as unknown });
      } catch (err) {
        out.push({ error: `frame is not valid JSON: ${(err as Error).message}` });
      }
    }
    buf = offset === 0 ? buf : buf.subarray(offset);
    this.chunks = buf.length > 0 ? [buf] : [];
    this.buffered = buf.length;
    return out;
  }
}
