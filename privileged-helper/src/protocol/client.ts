/**
 * Client of the helper's socket protocol, shared by the CLI (and later the app's main process): hello
 * with version negotiation, typed calls, and stream delivery with acknowledgements so the helper can
 * apply flow control. Stream frames that arrive before their stream id is known are held until a
 * handler is registered (the helper may send output before the response that names the stream).
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { AppError, type ErrorShape } from '../errors/app-error.js';
import { encodeFrame, FrameDecoder } from './frames.js';
import { PROTOCOL_MIN, PROTOCOL_VERSION, type OperationName, type ParamsInput, type Results, type StreamFrame } from './schema.js';

type ServerMessage = ({ type: 'response' } & { id: number | null; ok: boolean; result?: unknown; error?: ErrorShape }) | StreamFrame;

export type StreamHandler = (frame: StreamFrame) => void | Promise<void>;

export class HelperClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: AppError): void }>();
  private readonly handlers = new Map<string, StreamHandler>();
  private readonly early = new Map<string, StreamFrame[]>();
  private closedError: AppError | null = null;
  private readonly closeListeners = new Set<() => void>();
  helloResult: Results['hello'] | null = null;

  private constructor(private readonly sock: Duplex) {
    const decoder = new FrameDecoder();
    sock.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) if ('value' in f) this.onMessage(f.value as ServerMessage);
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      this.closedError = new AppError('HELPER_UNAVAILABLE', 'the connection to the helper closed');
      for (const p of this.pending.values()) p.reject(this.closedError);
      this.pending.clear();
      for (const fn of this.closeListeners) fn();
    });
  }

  static async connect(socketPath: string, clientName = 'ai-sandbox-cli'): Promise<HelperClient> {
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(socketPath);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    return HelperClient.over(sock, clientName);
  }

  static async over(sock: Duplex, clientName = 'ai-sandbox-cli'): Promise<HelperClient> {
    const c = new HelperClient(sock);
    c.helloResult = await c.call('hello', { protocol: [PROTOCOL_MIN, PROTOCOL_VERSION], client: clientName });
    return c;
  }

  call<O extends OperationName>(op: O, params: ParamsInput<O>): Promise<Results[O]> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.sock.write(encodeFrame({ type: 'request', id, op, params }));
    });
  }

  /** Deliver a stream's frames to `handler`; each is acknowledged once the handler's promise settles. */
  onStream(stream: string, handler: StreamHandler): void {
    this.handlers.set(stream, handler);
    const held = this.early.get(stream) ?? [];
    this.early.delete(stream);
    for (const f of held) this.deliver(f);
  }

  /** Called once when the connection closes (either side). */
  onClose(fn: () => void): void {
    if (this.closedError) fn();
    else this.closeListeners.add(fn);
  }

  close(): void {
    this.sock.end();
  }

  private onMessage(msg: ServerMessage): void {
    if (msg.type === 'response') {
      const r = msg;
      const p = r.id === null ? undefined : this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id!);
      if (r.ok) p.resolve(r.result);
      else p.reject(new AppError(r.error!.code, r.error!.message, { details: r.error!.details ?? {}, retryable: r.error!.retryable }));
    } else if (msg.type === 'stream') {
      const f = msg;
      if (this.handlers.has(f.stream)) this.deliver(f);
      else {
        const list = this.early.get(f.stream) ?? [];
        list.push(f);
        this.early.set(f.stream, list);
      }
    }
  }

  private deliver(f: StreamFrame): void {
    const handler = this.handlers.get(f.stream)!;
    if (f.kind === 'event' && f.event?.type === 'end') this.handlers.delete(f.stream);
    const ack = () => {
      if (!this.closedError && f.kind !== 'event') this.sock.write(encodeFrame({ type: 'ack', stream: f.stream, seq: f.seq }));
    };
    const r = handler(f);
    if (r instanceof Promise) r.then(ack, ack);
    else ack();
  }
}
