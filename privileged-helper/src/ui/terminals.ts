/**
 * Interactive terminals into sandboxes for the app: a real pseudo-terminal (node-pty) running
 * `ai-sandbox exec -it SANDBOX -- /bin/sh`, exactly what the user would type in their own terminal, on
 * the app side (the bridge or Electron main, with the user's rights, never in the helper). Output goes to
 * the app as stream frames with the same acknowledgement scheme as the helper's streams: past a window of
 * unacknowledged bytes the pty is paused (the shell blocks on its writes), so a flood in a terminal slows
 * the shell instead of growing memory.
 *
 * Threat model: the caller is the app's own session (already checked against the contract); the sandbox
 * name is validated by the contract's name schema and passed as one argv element, never through a shell.
 */
import { fileURLToPath } from 'node:url';
import { AppError } from '../errors/app-error.js';
import type { StreamFrame } from '../protocol/schema.js';

const CLI = fileURLToPath(new URL('../../bin/ai-sandbox.js', import.meta.url));
export const PTY_HIGH_WATER = 256 * 1024;
export const PTY_LOW_WATER = 32 * 1024;

/** The part of node-pty we use (a fake in unit tests). */
export interface Pty {
  onData(fn: (data: string) => void): { dispose(): void };
  onExit(fn: (e: { exitCode: number; signal?: number }) => void): { dispose(): void };
  write(data: string): void;
  resize(cols: number, rows: number): void;
  pause(): void;
  resume(): void;
  kill(signal?: string): void;
}
export type SpawnPty = (file: string, args: string[], opts: { cols: number; rows: number; env: Record<string, string> }) => Pty;

export async function nodePtySpawn(): Promise<SpawnPty> {
  let mod: typeof import('node-pty');
  try {
    mod = await import('node-pty');
  } catch (e) {
    throw new AppError('UNSUPPORTED', `terminals need node-pty, which did not load here: ${(e as Error).message}`);
  }
  return (file, args, opts) => mod.spawn(file, args, { name: 'xterm-256color', cols: opts.cols, rows: opts.rows, cwd: '/', env: opts.env });
}

interface Term {
  pty: Pty;
  seq: number;
  unacked: Array<[seq: number, bytes: number]>;
  unackedBytes: number;
  paused: boolean;
  ended: boolean;
}

export class Terminals {
  private next = 1;
  private readonly terms = new Map<string, Term>();

  constructor(
    private readonly spawn: () => Promise<SpawnPty>,
    private readonly send: (f: StreamFrame) => void,
    private readonly env: Record<string, string> = process.env as Record<string, string>,
  ) {}

  async open(sandbox: string, rows: number, cols: number): Promise<{ terminal: string; stream: string }> {
    const spawn = await this.spawn();
    const id = `pty${this.next++}`;
    const pty = spawn(process.execPath, [CLI, 'exec', '-it', sandbox, '--', '/bin/sh', '-i'], { cols, rows, env: { ...this.env, TERM: 'xterm-256color' } });
    const t: Term = { pty, seq: 0, unacked: [], unackedBytes: 0, paused: false, ended: false };
    this.terms.set(id, t);
    pty.onData((data) => {
      const bytes = Buffer.from(data, 'utf8');
      const seq = t.seq++;
      t.unacked.push([seq, bytes.length]);
      t.unackedBytes += bytes.length;
      this.send({ type: 'stream', stream: id, seq, kind: 'stdout', data: bytes.toString('base64') });
      if (!t.paused && t.unackedBytes > PTY_HIGH_WATER) {
        t.paused = true;
        pty.pause();
      }
    });
    pty.onExit(({ exitCode, signal }) => {
      t.ended = true;
      this.send({ type: 'stream', stream: id, seq: t.seq++, kind: 'event', event: { type: 'exit', report: { exitCode, signal: signal ? String(signal) : null, reason: signal ? 'signaled' : 'exited', cpuMs: 0, memoryPeakBytes: 0, startMs: 0, wallMs: 0 } } });
      this.send({ type: 'stream', stream: id, seq: t.seq++, kind: 'event', event: { type: 'end' } });
      this.terms.delete(id);
    });
    return { terminal: id, stream: id };
  }

  owns(stream: string): boolean {
    return this.terms.has(stream);
  }

  ack(stream: string, seq: number): void {
    const t = this.terms.get(stream);
    if (!t) return;
    while (t.unacked.length && t.unacked[0]![0] <= seq) t.unackedBytes -= t.unacked.shift()![1];
    if (t.paused && t.unackedBytes <= PTY_LOW_WATER) {
      t.paused = false;
      t.pty.resume();
    }
  }

  private get(id: string): Term {
    const t = this.terms.get(id);
    if (!t) throw new AppError('NOT_FOUND', `no terminal ${id} (it ended)`);
    return t;
  }

  write(id: string, data: string): void {
    this.get(id).pty.write(data);
  }

  resize(id: string, rows: number, cols: number): void {
    this.get(id).pty.resize(cols, rows);
  }

  close(id: string): void {
    const t = this.terms.get(id);
    if (t && !t.ended) t.pty.kill('SIGHUP');
  }

  closeAll(): void {
    for (const id of [...this.terms.keys()]) this.close(id);
  }
}
