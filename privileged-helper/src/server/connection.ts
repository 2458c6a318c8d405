/**
 * One client connection: decodes frames, validates every message against the contract, dispatches, and
 * owns the connection's output streams.
 *
 * Threat model: the peer is any member of the `ai-sandbox` group. Everything it sends is untrusted: a
 * frame that is not JSON, not an envelope, an unknown operation, params that fail the strict schema, or
 * a request before `hello` each get a typed error and the connection stays usable; only an impossible
 * frame length closes it (the byte stream cannot be re-synchronised).
 */
import type { Socket } from 'node:net';
import { z } from 'zod';
import { AppError } from '../errors/app-error.js';
import { encodeFrame, FrameDecoder, FrameTooLargeError } from '../protocol/frames.js';
import { clientMessageSchema, isOperationName, type Params, type ResponseFrame, type StreamFrame } from '../protocol/schema.js';
import { hello } from '../rpc/hello.js';
import { dispatch, parseParams } from '../rpc/dispatch.js';
import type { RpcContext, Services } from '../rpc/context.js';
import { ConnectionStream } from './stream.js';

let nextStream = 1;

export function formatZodError(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : 'request'}: ${i.message}`)
    .join('; ');
}

export class Connection {
  private readonly decoder = new FrameDecoder();
  private readonly streams = new Map<string, ConnectionStream>();
  private readonly closeHooks: Array<() => void> = [];
  private greeted = false;
  private receivedNs = 0n;
  private closed = false;

  constructor(
    private readonly socket: Socket,
    private readonly services: Services,
    private readonly helper: RpcContext['helper'],
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => this.onClose());
  }

  private onData(chunk: Buffer): void {
    this.receivedNs = process.hrtime.bigint();
    let frames;
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      if (err instanceof FrameTooLargeError) {
        this.respond(null, new AppError('BAD_REQUEST', `${err.message}; closing the connection`));
        this.socket.end();
        return;
      }
      throw err;
    }
    for (const f of frames) {
      if ('error' in f) this.respond(null, new AppError('BAD_REQUEST', f.error));
      else this.onMessage(f.value);
    }
  }

  private onMessage(raw: unknown): void {
    const parsed = clientMessageSchema.safeParse(raw);
    if (!parsed.success) {
      const id = typeof (raw as { id?: unknown } | null)?.id === 'number' ? (raw as { id: number }).id : null;
      this.respond(id, new AppError('BAD_REQUEST', `malformed message: ${formatZodError(parsed.error)}`));
      return;
    }
    const msg = parsed.data;
    if (msg.type === 'ack') {
      this.streams.get(msg.stream)?.ack(msg.seq);
      return;
    }
    const { id, op } = msg;
    if (!isOperationName(op)) {
      this.respond(id, new AppError('UNKNOWN_OPERATION', `unknown operation "${op.slice(0, 100)}"`));
      return;
    }
    if (!this.greeted && op !== 'hello') {
      this.respond(id, new AppError('UNSUPPORTED_PROTOCOL', 'send hello first, with the protocol versions you speak'));
      return;
    }
    const params = parseParams(op, msg.params);
    if (!params.success) {
      this.respond(id, new AppError('BAD_REQUEST', `invalid ${op} request: ${formatZodError(params.error)}`));
      return;
    }
    const ctx: RpcContext = {
      ...this.services,
      receivedNs: this.receivedNs,
      helper: this.helper,
      conn: { openStream: () => this.openStream(), onClose: (fn) => this.closeHooks.push(fn) },
    };
    if (op === 'hello') {
      // Synchronous, so requests pipelined right behind a successful hello are already accepted.
      try {
        const result = hello(ctx, params.data as Params<'hello'>);
        this.greeted = true;
        this.respond(id, null, result);
      } catch (err) {
        this.respond(id, AppError.from(err));
      }
      return;
    }
    dispatch(ctx, op, params.data, (s) => this.cancelStream(s)).then(
      (result) => this.respond(id, null, result),
      (err: unknown) => this.respond(id, AppError.from(err)),
    );
  }

  private openStream(): ConnectionStream {
    const s = new ConnectionStream(`s${nextStream++}`, (f) => this.send(f), (st) => this.streams.delete(st.id));
    this.streams.set(s.id, s);
    return s;
  }

  private cancelStream(id: string): void {
    const s = this.streams.get(id);
    if (!s) return;
    this.services.manager.unsubscribe(s);
    s.end();
  }

  private respond(id: number | null, err: AppError | null, result?: unknown): void {
    const frame: ResponseFrame = err ? { type: 'response', id, ok: false, error: err.toShape() } : { type: 'response', id, ok: true, result: result ?? {} };
    this.send(frame);
  }

  private send(frame: ResponseFrame | StreamFrame): void {
    if (this.closed) return;
    this.socket.write(encodeFrame(frame));
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.streams.values()) {
      this.services.manager.unsubscribe(s);
      s.close();
    }
    this.streams.clear();
    for (const fn of this.closeHooks.splice(0)) fn();
  }
}
