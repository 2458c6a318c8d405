/**
 * The helper's side of native/net/net.c: one long-lived root process that applies nftables batches
 * (libnftables, one transaction each) and makes and unmakes network slots (rtnetlink), so neither costs
 * a process start, and nothing blocks the helper's event loop. Requests are answered in order.
 *
 * Threat model: the commands are built from addresses we allocated, validated port numbers and our
 * own interface names, never from strings a client sent.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import fs from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { AppError } from '../errors/app-error.js';
import type { SlotAddresses } from './addressing.js';

export function defaultNetBinary(): string {
  return fileURLToPath(new URL('../../native/build/ai-sandbox-net', import.meta.url));
}

/** What the network layer needs of nftables: small, so unit tests can fake it. */
export interface Nft {
  run(commands: string): Promise<string>;
  json(commands: string): Promise<unknown>;
  close(): void;
}

/** Making and unmaking one network slot (see native/net/net.c). */
export interface SlotOps {
  /** throws ALREADY_EXISTS when the interface name is taken (another instance holds the slot) */
  create(a: SlotAddresses, nsPath: string): Promise<void>;
  destroy(ifname: string, nsPath: string): Promise<void>;
}

export const NetOp = { NFT: 0, NFT_JSON: 1, SLOT_NEW: 2, SLOT_DEL: 3 } as const;

/** One request frame: u32 length, u8 op, payload. */
export function encodeNetRequest(op: number, payload: string): Buffer {
  const body = Buffer.from(payload, 'utf8');
  const head = Buffer.alloc(5);
  head.writeUInt32LE(body.length, 0);
  head.writeUInt8(op, 4);
  return Buffer.concat([head, body]);
}

/** The complete reply frames at the start of `buf` (u32 status, u32 length, text), and what is left. */
export function decodeNetReplies(buf: Buffer): { replies: Array<{ status: number; text: string }>; rest: Buffer } {
  const replies: Array<{ status: number; text: string }> = [];
  let off = 0;
  while (off + 8 <= buf.length) {
    const len = buf.readUInt32LE(off + 4);
    if (off + 8 + len > buf.length) break;
    replies.push({ status: buf.readUInt32LE(off), text: buf.subarray(off + 8, off + 8 + len).toString('utf8') });
    off += 8 + len;
  }
  return { replies, rest: buf.subarray(off) };
}

interface Pending {
  resolve(out: string): void;
  reject(err: AppError): void;
  op: number;
  what: string;
}

const errnoNames = new Map(Object.entries(osConstants.errno).map(([k, v]) => [v, k]));

export class NativeNet implements Nft, SlotOps {
  private readonly queue: Pending[] = [];
  private buf: Buffer = Buffer.alloc(0);
  private dead: AppError | null = null;

  private constructor(private readonly proc: ChildProcessByStdio<Writable, Readable, null>) {
    proc.stdout.on('data', (chunk: Buffer) => this.onData(chunk));
    proc.stdin.on('error', () => {});
    proc.on('exit', (code, signal) => {
      this.dead = new AppError('INTERNAL', `ai-sandbox-net exited (${signal ?? `code ${code}`})`);
      for (const p of this.queue.splice(0)) p.reject(this.dead);
    });
  }

  static start(binary = defaultNetBinary()): NativeNet {
    if (!fs.existsSync(binary)) {
      throw new AppError('KERNEL_FEATURE_MISSING', `${binary} is not built (it needs libnftables-dev): run \`npm run setup\``);
    }
    // Its own session, like the launcher's: a Ctrl-C at the helper's terminal must not kill it before
    // the helper's orderly stop has asked it to remove the network slots. It ends on EOF on stdin.
    return new NativeNet(spawn(binary, [], { stdio: ['pipe', 'pipe', 'inherit'], detached: true }));
  }

  run(commands: string): Promise<string> {
    return this.request(NetOp.NFT, commands, commands);
  }

  async json(commands: string): Promise<unknown> {
    return JSON.parse(await this.request(NetOp.NFT_JSON, commands, commands)) as unknown;
  }

  async create(a: SlotAddresses, nsPath: string): Promise<void> {
    await this.request(NetOp.SLOT_NEW, `${a.ifname}\0${a.address}\0${a.gateway}\0${nsPath}\0`, `network slot ${a.ifname}`);
  }

  async destroy(ifname: string, nsPath: string): Promise<void> {
    await this.request(NetOp.SLOT_DEL, `${ifname}\0${nsPath}\0`, `network slot ${ifname}`);
  }

  private request(op: number, payload: string, what: string): Promise<string> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.queue.push({ resolve, reject, op, what });
      this.proc.stdin.write(encodeNetRequest(op, payload));
    });
  }

  private onData(chunk: Buffer): void {
    const { replies, rest } = decodeNetReplies(Buffer.concat([this.buf, chunk]));
    this.buf = rest;
    for (const { status, text } of replies) {
      const p = this.queue.shift();
      if (!p) continue;
      if (status === 0) p.resolve(text);
      else if (p.op === NetOp.NFT || p.op === NetOp.NFT_JSON) p.reject(new AppError('INTERNAL', `nftables refused a batch: ${text.trim().split('\n')[0] ?? ''}`, { details: { commands: p.what, error: text } }));
      else {
        const errnoName = errnoNames.get(status) ?? `errno ${status}`;
        p.reject(new AppError(errnoName === 'EEXIST' ? 'ALREADY_EXISTS' : 'INTERNAL', `${p.what}: ${text || errnoName}`, { details: { errnoName } }));
      }
    }
  }

  close(): void {
    this.proc.stdin.end();
  }
}
