/**
 * Encoding of the launcher's binary protocol (docs/launcher-protocol.md): frames of
 * `u32 LE length | u8 type | u32 LE id | body`, bodies as TLV lists of `u8 tag | u32 LE len | bytes`.
 */
export const Req = { SPAWN: 1, STDIN: 2, KILL: 3, RESIZE: 4, EXEC: 5, CLEANUP: 6, UMOUNT: 7, MARK: 8, PREPARE: 9, RESTORE: 10, RELEASE: 11, DUMP: 12 } as const;
export const Ev = { SPAWNED: 101, SPAWN_FAILED: 102, OUTPUT: 103, EXIT: 104, ACK: 105, DUMPED: 106, STATUS: 107 } as const;
export const Tag = {
  ARG: 1,
  ENV: 2,
  LOWER: 3,
  SANDBOX_DIR: 4,
  TMPFS_BYTES: 5,
  HOSTNAME: 6,
  WORKDIR: 7,
  UID: 8,
  GID: 9,
  MOUNT: 10,
  CGROUP2: 11,
  CGROUP_PROCS: 12,
  FLAGS: 13,
  ROWS: 14,
  COLS: 15,
  NETNS: 16,
  TARGET: 20,
  PATH: 30,
  KIND: 31,
  PID: 40,
  RECV_NS: 41,
  EXEC_NS: 42,
  ERRNO: 43,
  STAGE: 44,
  MESSAGE: 45,
  STATUS: 46,
  INIT_STATUS: 47,
  EXIT_NS: 48,
  PIPE_STDIN: 49,
  PIPE_STDOUT: 50,
  PIPE_STDERR: 51,
  PIPE_STATUS: 52,
  IMAGES_DIR: 53,
  UPPER_ARCHIVE: 54,
  CRIU: 55,
  INHERIT: 56,
  EXTERNAL: 57,
  LOG: 58,
  NET_KEY: 59,
  NOTIFY_SOCKET: 60,
  NOTIFY_NRS: 61,
  CRIU_NS: 62,
  TAR_NS: 63,
} as const;
export const Flag = { ALLOW_LISTEN: 1n, TTY: 2n, NO_LANDLOCK: 4n, HOLD: 8n } as const;
export const MarkKind = { WHITEOUT: 1n, OPAQUE: 2n } as const;

export type TlvValue = string | bigint | Buffer;
export type TlvField = [tag: number, value: TlvValue];

export function encodeTlv(fields: readonly TlvField[]): Buffer {
  const parts: Buffer[] = [];
  for (const [tag, value] of fields) {
    let bytes: Buffer;
    if (typeof value === 'bigint') {
      bytes = Buffer.alloc(8);
      bytes.writeBigUInt64LE(value);
    } else {
      bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    }
    const head = Buffer.alloc(5);
    head.writeUInt8(tag, 0);
    head.writeUInt32LE(bytes.length, 1);
    parts.push(head, bytes);
  }
  return Buffer.concat(parts);
}

export function encodeFrame(type: number, id: number, body: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUInt32LE(5 + body.length, 0);
  head.writeUInt8(type, 4);
  head.writeUInt32LE(id, 5);
  return Buffer.concat([head, body]);
}

export function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/** Decoded TLV body: every value of a tag in order. */
export class TlvBody {
  private readonly map = new Map<number, Buffer[]>();

  constructor(body: Buffer) {
    let off = 0;
    while (off + 5 <= body.length) {
      const tag = body.readUInt8(off);
      const len = body.readUInt32LE(off + 1);
      const value = body.subarray(off + 5, off + 5 + len);
      off += 5 + len;
      const list = this.map.get(tag);
      if (list) list.push(value);
      else this.map.set(tag, [value]);
    }
  }

  num(tag: number): bigint | undefined {
    const v = this.map.get(tag)?.[0];
    return v && v.length === 8 ? v.readBigUInt64LE() : undefined;
  }

  str(tag: number): string | undefined {
    return this.map.get(tag)?.[0]?.toString('utf8');
  }
}

export interface LauncherFrame {
  type: number;
  id: number;
  body: Buffer;
}

export class LauncherFrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): LauncherFrame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: LauncherFrame[] = [];
    let off = 0;
    while (this.buf.length - off >= 4) {
      const len = this.buf.readUInt32LE(off);
      if (len < 5) throw new Error(`launcher sent a frame of impossible length ${len}`);
      if (this.buf.length - off - 4 < len) break;
      out.push({
        type: this.buf.readUInt8(off + 4),
        id: this.buf.readUInt32LE(off + 5),
        body: this.buf.subarray(off + 9, off + 4 + len),
      });
      off += 4 + len;
    }
    this.buf = this.buf.subarray(off);
    return out;
  }
}
