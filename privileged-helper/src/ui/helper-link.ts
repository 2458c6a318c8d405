/**
 * One app-side link to the helper daemon, used by the web bridge and the Electron main process: it says
 * hello, keeps a visible status (connecting, connected, unavailable — with the command that starts a
 * helper), reconnects every few seconds after the helper goes away, and forwards stream frames with the
 * helper's flow control intact: a frame is acknowledged to the helper only once the app acknowledged it.
 */
import fs from 'node:fs';
import { AppError } from '../errors/app-error.js';
import { HelperClient } from '../protocol/client.js';
import type { OperationName, ParamsInput, Results, StreamFrame } from '../protocol/schema.js';
import type { HelperStatus } from './contract.js';

const RECONNECT_MS = 2000;

/** How a user starts the helper here: pkexec (a graphical sudo) where it is installed. */
export function startCommand(): string {
  const hasPkexec = ['/usr/bin/pkexec', '/bin/pkexec'].some((p) => fs.existsSync(p));
  return `${hasPkexec ? 'pkexec' : 'sudo'} ai-sandbox helper`;
}

export class HelperLink {
  private client: HelperClient | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly statusListeners = new Set<(s: HelperStatus) => void>();
  status: HelperStatus;

  constructor(
    private readonly socketPath: string,
    private readonly clientName: string,
  ) {
    this.status = { state: 'connecting', message: `connecting to the helper at ${socketPath}`, startCommand: startCommand(), helperVersion: null };
  }

  onStatus(fn: (s: HelperStatus) => void): () => void {
    this.statusListeners.add(fn);
    return () => this.statusListeners.delete(fn);
  }

  /** Connect now; on failure keep trying in the background. Resolves once the first attempt settled. */
  async start(): Promise<void> {
    await this.tryConnect();
  }

  private setStatus(s: Partial<HelperStatus>): void {
    this.status = { ...this.status, ...s };
    for (const fn of this.statusListeners) fn(this.status);
  }

  private async tryConnect(): Promise<void> {
    if (this.closed || this.client) return;
    try {
      const c = await HelperClient.connect(this.socketPath, this.clientName);
      if (this.closed) {
        c.close();
        return;
      }
      this.client = c;
      c.onClose(() => {
        this.client = null;
        this.setStatus({ state: 'unavailable', message: `the helper at ${this.socketPath} went away; reconnecting`, helperVersion: null });
        this.schedule();
      });
      this.setStatus({ state: 'connected', message: `connected to helper ${c.helloResult?.helperVersion ?? ''} (${c.helloResult?.instance ?? ''})`, helperVersion: c.helloResult?.helperVersion ?? null });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const message =
        code === 'EACCES'
          ? `cannot open ${this.socketPath}: join the ai-sandbox group (sudo usermod -aG ai-sandbox $USER, then log in again)`
          : err instanceof AppError
            ? err.message
            : `no helper is running at ${this.socketPath}: start one with \`${startCommand()}\``;
      this.setStatus({ state: 'unavailable', message, helperVersion: null });
      this.schedule();
    }
  }

  private schedule(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.tryConnect();
    }, RECONNECT_MS);
    this.timer.unref?.();
  }

  call<O extends OperationName>(op: O, params: ParamsInput<O>): Promise<Results[O]> {
    if (!this.client) return Promise.reject(new AppError('HELPER_UNAVAILABLE', this.status.message));
    return this.client.call(op, params);
  }

  /** Forward a stream; the helper sees an ack for a frame once `deliver`'s promise settles. */
  onStream(stream: string, deliver: (f: StreamFrame) => Promise<void> | void): void {
    this.client?.onStream(stream, deliver);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.client?.close();
    this.client = null;
  }
}
