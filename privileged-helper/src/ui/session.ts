/**
 * One app session over any message carrier (a WebSocket in web mode, Electron IPC in the desktop app):
 * every incoming message is checked against the shared contract (contract.ts) before anything is done;
 * helper methods go to the helper, local ones run here; stream frames go back to the app and are
 * acknowledged to the helper only when the app acknowledges them, so the helper's flow control (drops
 * counted past its window) reaches all the way to the screen and nothing in between grows.
 */
import { AppError } from '../errors/app-error.js';
import type { OperationName, StreamFrame } from '../protocol/schema.js';
import { checkCall, uiClientMessageSchema, type HelperMethod, type LocalMethod, type UiServerMessage, localMethods } from './contract.js';
import type { HelperLink } from './helper-link.js';
import { runLocal, type LocalContext } from './local-ops.js';
import { nodePtySpawn, Terminals, type SpawnPty } from './terminals.js';

export class UiSession {
  /** per stream, frames sent and not yet acknowledged by the app, in order */
  private readonly waiting = new Map<string, Array<[seq: number, release: () => void]>>();
  private readonly offStatus: () => void;
  private closed = false;
  private readonly terminals: Terminals;

  constructor(
    private readonly link: HelperLink,
    private readonly local: Omit<LocalContext, 'helperStatus'>,
    private readonly send: (msg: UiServerMessage) => void,
    spawnPty: () => Promise<SpawnPty> = nodePtySpawn,
  ) {
    this.terminals = new Terminals(spawnPty, (f) => !this.closed && this.send(f));
    this.offStatus = link.onStatus((status) => this.send({ type: 'status', status }));
    this.send({ type: 'status', status: link.status });
  }

  /** Handle one message from the app (already JSON-parsed, not yet trusted). */
  async handle(raw: unknown): Promise<void> {
    const parsed = uiClientMessageSchema.safeParse(raw);
    if (!parsed.success) {
      const id = typeof (raw as { id?: unknown })?.id === 'number' ? (raw as { id: number }).id : -1;
      this.send({ type: 'result', id, ok: false, error: { code: 'BAD_REQUEST', message: `not a valid message: ${parsed.error.issues[0]?.message ?? 'unknown shape'}`, retryable: false } });
      return;
    }
    const msg = parsed.data;
    if (msg.type === 'ack') {
      if (this.terminals.owns(msg.stream)) {
        this.terminals.ack(msg.stream, msg.seq);
        return;
      }
      // frames are acknowledged in order: an ack for seq N releases every earlier frame too
      const q = this.waiting.get(msg.stream);
      while (q && q.length > 0 && q[0]![0] <= msg.seq) q.shift()![1]();
      return;
    }
    const checked = checkCall(msg.method, msg.params);
    if (!checked.ok) {
      this.send({ type: 'result', id: msg.id, ok: false, error: checked.error });
      return;
    }
    try {
      let result: unknown;
      if (checked.method.startsWith('terminal.')) {
        result = await this.terminal(checked.method, checked.params as Parameters<UiSession['terminal']>[1]);
      } else if (Object.prototype.hasOwnProperty.call(localMethods, checked.method)) {
        result = await runLocal({ ...this.local, helperStatus: () => this.link.status }, checked.method as LocalMethod, checked.params);
      } else {
        result = await this.link.call(checked.method as HelperMethod & OperationName, checked.params as never);
        const stream = (result as { stream?: unknown } | null)?.stream;
        if (typeof stream === 'string') this.link.onStream(stream, (f) => this.forward(f));
      }
      this.send({ type: 'result', id: msg.id, ok: true, result });
    } catch (err) {
      const e = AppError.from(err);
      this.send({ type: 'result', id: msg.id, ok: false, error: { code: e.code, message: e.message, retryable: e.retryable } });
    }
  }

  private async terminal(method: string, p: { sandbox: string; terminal: string; rows: number; cols: number; data: string }): Promise<unknown> {
    switch (method) {
      case 'terminal.open':
        return this.terminals.open(p.sandbox, p.rows, p.cols);
      case 'terminal.write':
        this.terminals.write(p.terminal, p.data);
        return {};
      case 'terminal.resize':
        this.terminals.resize(p.terminal, p.rows, p.cols);
        return {};
      default:
        this.terminals.close(p.terminal);
        return {};
    }
  }

  private forward(f: StreamFrame): Promise<void> | void {
    if (this.closed) return;
    this.send(f);
    if (f.kind === 'event' && f.event?.type === 'end') {
      for (const [, release] of this.waiting.get(f.stream) ?? []) release();
      this.waiting.delete(f.stream);
    }
    if (f.kind === 'event') return;
    let q = this.waiting.get(f.stream);
    if (!q) this.waiting.set(f.stream, (q = []));
    const queue = q;
    return new Promise<void>((resolve) => queue.push([f.seq, resolve]));
  }

  close(): void {
    this.closed = true;
    this.terminals.closeAll();
    this.offStatus();
    for (const q of this.waiting.values()) for (const [, release] of q) release();
    this.waiting.clear();
  }
}
