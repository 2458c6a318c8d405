/**
 * The renderer's side of the app API: one typed `call`, stream subscriptions with acknowledgement, and
 * the helper status — over whichever carrier this page has: the Electron preload (`window.aiSandbox`)
 * or the web-mode WebSocket (the token comes from the page URL).
 */
import type { HelperStatus, Method, MethodParams, MethodResult, UiApi, UiServerMessage } from '../../../privileged-helper/src/ui/contract';
import type { StreamFrame } from '../../../privileged-helper/src/protocol/schema';

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Incoming = Exclude<UiServerMessage, { type: 'result' }>;

declare global {
  interface Window {
    aiSandbox?: UiApi;
  }
}

/** The WebSocket carrier: same messages as IPC, checked by the bridge against the same contract. */
export class WsApi implements UiApi {
  private ws: WebSocket | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly handlers = new Set<(m: Incoming) => void>();
  private readonly queue: string[] = [];
  private closedByUs = false;

  constructor(private readonly url: string) {
    this.open();
  }

  private open(): void {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      for (const m of this.queue.splice(0)) ws.send(m);
    };
    ws.onmessage = (ev) => {
      const msg = JSON.parse(String(ev.data)) as UiServerMessage;
      if (msg.type === 'result') {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        if (msg.ok) p.resolve(msg.result);
        else p.reject(new ApiError(msg.error.code, msg.error.message));
      } else for (const h of this.handlers) h(msg);
    };
    ws.onclose = () => {
      for (const p of this.pending.values()) p.reject(new ApiError('HELPER_UNAVAILABLE', 'the connection to ai-sandbox ui closed'));
      this.pending.clear();
      const status: HelperStatus = { state: 'unavailable', message: 'lost the connection to `ai-sandbox ui`; reconnecting', startCommand: 'ai-sandbox ui', helperVersion: null };
      for (const h of this.handlers) h({ type: 'status', status });
      if (!this.closedByUs) setTimeout(() => this.open(), 2000);
    };
  }

  private send(msg: unknown): void {
    const text = JSON.stringify(msg);
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(text);
    else this.queue.push(text);
  }

  call<M extends Method>(method: M, params: MethodParams<M>): Promise<MethodResult<M>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.send({ type: 'call', id, method, params });
    });
  }

  onMessage(handler: (m: Incoming) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  ack(stream: string, seq: number): void {
    this.send({ type: 'ack', stream, seq });
  }

  close(): void {
    this.closedByUs = true;
    this.ws?.close();
  }
}

export type FrameHandler = (frame: StreamFrame) => void | Promise<void>;

/**
 * Streams on top of the carrier: frames can arrive before the result naming their stream, so they are
 * held until a handler is registered. A frame is acknowledged once its handler's promise settles.
 */
export class AppClient {
  private readonly streams = new Map<string, FrameHandler>();
  private readonly early = new Map<string, StreamFrame[]>();
  private readonly statusListeners = new Set<(s: HelperStatus) => void>();
  status: HelperStatus = { state: 'connecting', message: 'connecting…', startCommand: '', helperVersion: null };

  constructor(readonly api: UiApi) {
    api.onMessage((m) => {
      if (m.type === 'status') {
        this.status = m.status;
        for (const l of this.statusListeners) l(m.status);
      } else if (m.type === 'stream') {
        if (this.streams.has(m.stream)) this.deliver(m);
        else {
          const l = this.early.get(m.stream) ?? [];
          l.push(m);
          this.early.set(m.stream, l);
        }
      }
    });
  }

  call<M extends Method>(method: M, params: MethodParams<M>): Promise<MethodResult<M>> {
    return this.api.call(method, params);
  }

  onStatus(fn: (s: HelperStatus) => void): () => void {
    this.statusListeners.add(fn);
    fn(this.status);
    return () => this.statusListeners.delete(fn);
  }

  subscribe(stream: string, handler: FrameHandler): () => void {
    this.streams.set(stream, handler);
    const held = this.early.get(stream) ?? [];
    this.early.delete(stream);
    for (const f of held) this.deliver(f);
    return () => {
      if (this.streams.get(stream) === handler) {
        this.streams.delete(stream);
        void this.api.call('stream.cancel', { stream }).catch(() => undefined);
      }
    };
  }

  private deliver(f: StreamFrame): void {
    const h = this.streams.get(f.stream)!;
    if (f.kind === 'event' && f.event?.type === 'end') this.streams.delete(f.stream);
    const ack = () => {
      if (f.kind !== 'event') this.api.ack(f.stream, f.seq);
    };
    const r = h(f);
    if (r instanceof Promise) r.then(ack, ack);
    else ack();
  }
}

export function connectApi(): AppClient {
  if (window.aiSandbox) return new AppClient(window.aiSandbox);
  const token = new URLSearchParams(location.search).get('token') ?? '';
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api?token=${encodeURIComponent(token)}`;
  return new AppClient(new WsApi(url));
}

/** base64 → bytes, without Node's Buffer. */
export function fromBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function toBase64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}
