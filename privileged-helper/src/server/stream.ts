/**
 * One output stream on a connection, with acknowledgement-based flow control: at most HIGH_WATER bytes
 * may be unacknowledged; past that, output frames are dropped and counted (never silently: a `dropped`
 * event with the running totals goes out when the window reopens below LOW_WATER, and with the end).
 * Events (exit, dropped, end) are never dropped. Memory per stream is bounded by the window.
 */
import type { StreamEvent, StreamFrame, TraceBatch } from '../protocol/schema.js';
import type { OutputSink } from '../sandbox/sandbox.js';

export const HIGH_WATER = 8 * 1024 * 1024;
export const LOW_WATER = 1024 * 1024;

export class ConnectionStream implements OutputSink {
  private seq = 0;
  private unacked = 0;
  private readonly inflight: Array<[seq: number, bytes: number]> = [];
  private droppedFrames = 0;
  private droppedBytes = 0;
  private reportedDrops = 0;
  private ended = false;
  private readonly writableWaiters: Array<() => void> = [];

  constructor(
    readonly id: string,
    private readonly send: (frame: StreamFrame) => void,
    private readonly onEnd: (stream: ConnectionStream) => void,
  ) {}

  output(fd: 1 | 2, data: Buffer): void {
    if (this.ended) return;
    if (this.unacked >= HIGH_WATER) {
      this.droppedFrames++;
      this.droppedBytes += data.length;
      return;
    }
    const seq = this.seq++;
    this.inflight.push([seq, data.length]);
    this.unacked += data.length;
    this.send({ type: 'stream', stream: this.id, seq, kind: fd === 2 ? 'stderr' : 'stdout', data: data.toString('base64') });
  }

  /**
   * A batch of trace events, under the same window as output: false when it was dropped (the caller
   * counts the events it held and reports them in its trace-counters events).
   */
  trace(batch: TraceBatch, bytes: number): boolean {
    if (this.ended) return false;
    if (this.unacked >= HIGH_WATER) {
      this.droppedFrames++;
      this.droppedBytes += bytes;
      return false;
    }
    const seq = this.seq++;
    this.inflight.push([seq, bytes]);
    this.unacked += bytes;
    this.send({ type: 'stream', stream: this.id, seq, kind: 'trace', trace: batch });
    return true;
  }

  /** Resolves when the window has room (or the stream is gone): for producers that must not drop. */
  writable(): Promise<void> {
    if (this.ended || this.unacked < HIGH_WATER / 2) return Promise.resolve();
    return new Promise((r) => this.writableWaiters.push(r));
  }

  get done(): boolean {
    return this.ended;
  }

  event(event: StreamEvent): void {
    if (this.ended) return;
    this.send({ type: 'stream', stream: this.id, seq: this.seq++, kind: 'event', event });
  }

  ack(seq: number): void {
    while (this.inflight.length > 0 && this.inflight[0]![0] <= seq) this.unacked -= this.inflight.shift()![1];
    if (this.droppedFrames > this.reportedDrops && this.unacked <= LOW_WATER) this.reportDrops();
    if (this.unacked <= LOW_WATER) for (const w of this.writableWaiters.splice(0)) w();
  }

  end(): void {
    if (this.ended) return;
    if (this.droppedFrames > this.reportedDrops) this.reportDrops();
    this.event({ type: 'end' });
    this.ended = true;
    for (const w of this.writableWaiters.splice(0)) w();
    this.onEnd(this);
  }

  /** The connection went away: stop without sending. */
  close(): void {
    this.ended = true;
    for (const w of this.writableWaiters.splice(0)) w();
  }

  get stats(): { unacked: number; droppedFrames: number; droppedBytes: number } {
    return { unacked: this.unacked, droppedFrames: this.droppedFrames, droppedBytes: this.droppedBytes };
  }

  private reportDrops(): void {
    this.reportedDrops = this.droppedFrames;
    this.event({ type: 'dropped', frames: this.droppedFrames, bytes: this.droppedBytes });
  }
}
