/**
 * Everything a sandbox printed, in order, so `logs` can replay it: records of
 * `u8 fd | u32 LE length | bytes` appended with synchronous writes, which lets a reader take the file and
 * subscribe to what comes next in the same tick without missing or repeating a byte. The file is made
 * at the first output (a silent program, the common `true`, costs no file), so a missing file reads as
 * no output.
 */
import fs from 'node:fs';

export class OutputLog {
  private fd: number | null = null;
  private closed = false;

  constructor(readonly file: string) {}

  append(fd: 1 | 2, data: Buffer): void {
    if (this.closed) return;
    if (this.fd === null) {
      try {
        this.fd = fs.openSync(this.file, 'a', 0o600);
      } catch (err) {
        // live subscribers still get the output; only the replay for `logs` is lost
        process.stderr.write(`ai-sandbox helper: cannot keep the output log ${this.file}: ${(err as Error).message}\n`);
        this.closed = true;
        return;
      }
    }
    const head = Buffer.alloc(5);
    head.writeUInt8(fd, 0);
    head.writeUInt32LE(data.length, 1);
    fs.writeSync(this.fd, Buffer.concat([head, data]));
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    this.closed = true;
  }

  static read(file: string): Array<{ fd: 1 | 2; data: Buffer }> {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(file);
    } catch {
      return [];
    }
    const out: Array<{ fd: 1 | 2; data: Buffer }> = [];
    let off = 0;
    while (off + 5 <= buf.length) {
      const len = buf.readUInt32LE(off + 1);
      if (off + 5 + len > buf.length) break;
      out.push({ fd: buf.readUInt8(off) === 2 ? 2 : 1, data: buf.subarray(off + 5, off + 5 + len) });
      off += 5 + len;
    }
    return out;
  }
}
