/**
 * A step's output as the app keeps it: the newest bytes up to a bound, and counts of what was let go.
 * It lives outside the store's immutable state on purpose: a flood of 10,000 lines a second must cost a
 * push per frame, not a copy of the whole buffer per frame. Panes subscribe to it directly.
 */
export const OUTPUT_BYTES_KEPT = 512 * 1024;

export class OutputRing {
  private chunks: string[] = [];
  private head = 0;
  bytes = 0;
  /** lines this app let go of to stay bounded (the pane shows the tail) */
  droppedLocal = 0;
  /** frames and bytes the helper dropped because the app fell behind (its flow control) */
  droppedFrames = 0;
  droppedBytes = 0;
  totalLines = 0;
  private readonly listeners = new Set<(chunk: string | null) => void>();

  constructor(private readonly limit = OUTPUT_BYTES_KEPT) {}

  push(text: string): void {
    this.chunks.push(text);
    this.bytes += text.length;
    this.totalLines += countLines(text);
    while (this.bytes > this.limit && this.chunks.length - this.head > 1) {
      const gone = this.chunks[this.head]!;
      this.chunks[this.head++] = '';
      this.bytes -= gone.length;
      this.droppedLocal += countLines(gone);
    }
    if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
    for (const l of this.listeners) l(text);
  }

  noteDropped(frames: number, bytes: number): void {
    this.droppedFrames = frames;
    this.droppedBytes = bytes;
    for (const l of this.listeners) l(null);
  }

  /** everything kept, oldest first */
  text(): string {
    return this.chunks.slice(this.head).join('');
  }

  /** called with each new chunk (null: only the counters changed) */
  subscribe(fn: (chunk: string | null) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}

export function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}
