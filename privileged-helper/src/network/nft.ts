/**
 * The helper's side of native/net/nft.c: one long-lived process applying nftables batches through
 * libnftables, requests answered in order. A batch is one transaction (all or nothing).
 *
 * Threat model: the commands are built by rules.ts from addresses we allocated and validated port
 * numbers, never from strings a client sent.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import fs from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { AppError } from '../errors/app-error.js';

export function defaultNftBinary(): string {
  return fileURLToPath(new URL('../../native/build/ai-sandbox-nft', import.meta.url));
}

/** What the network layer needs of nftables: small, so unit tests can fake it. */
export interface Nft {
  run(commands: string): Promise<string>;
  json(commands: string): Promise<unknown>;
  close(): void;
}

interface Pending {
  resolve(out: string): void;
  reject(err: AppError): void;
  commands: string;
}

export class NftProcess implements Nft {
  private readonly queue: Pending[] = [];
  private buf = Buffer.alloc(0);
  private dead: AppError | null = null;

  private constructor(private readonly proc: ChildProcessByStdio<Writable, Readable, null>) {
    proc.stdout.on('data', (chunk: Buffer) => this.onData(chunk));
    proc.stdin.on('error', () => {});
    proc.on('exit', (code, signal) => {
      this.dead = new AppError('INTERNAL', `ai-sandbox-nft exited (${signal ?? `code ${code}`})`);
      for (const p of this.queue.splice(0)) p.reject(this.dead);
    });
  }

  static start(binary = defaultNftBinary()): NftProcess {
    if (!fs.existsSync(binary)) {
      throw new AppError('KERNEL_FEATURE_MISSING', `${binary} is not built (it needs libnftables-dev): run \`npm run setup\``);
    }
    return new NftProcess(spawn(binary, [], { stdio: ['pipe', 'pipe', 'inherit'] }));
  }

  run(commands: string): Promise<string> {
    return this.request(commands, 0);
  }

  async json(commands: string): Promise<unknown> {
    return JSON.parse(await this.request(commands, 1)) as unknown;
  }

  private request(commands: string, flags: number): Promise<string> {
    if (this.dead) return Promise.reject(this.dead);
    const body = Buffer.from(commands, 'utf8');
    const head = Buffer.alloc(5);
    head.writeUInt32LE(body.length, 0);
    head.writeUInt8(flags, 4);
    return new Promise((resolve, reject) => {
      this.queue.push({ resolve, reject, commands });
      this.proc.stdin.write(Buffer.concat([head, body]));
    });
  }

  private onData(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 8) {
      const status = this.buf.readUInt32LE(0);
      const len = this.buf.readUInt32LE(4);
      if (this.buf.length < 8 + len) return;
      const text = this.buf.subarray(8, 8 + len).toString('utf8');
      this.buf = this.buf.subarray(8 + len);
      const p = this.queue.shift();
      if (!p) continue;
      if (status === 0) p.resolve(text);
      else p.reject(new AppError('INTERNAL', `nftables refused a batch: ${text.trim().split('\n')[0] ?? ''}`, { details: { commands: p.commands, error: text } }));
    }
  }

  close(): void {
    this.proc.stdin.end();
  }
}
