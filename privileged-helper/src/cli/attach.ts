/**
 * Connects a helper stream to this terminal: stdout/stderr frames are written out (and acknowledged
 * only once the terminal took them, so a slow terminal slows the sandbox instead of growing memory);
 * resolves with the exit report, or null when the stream ended without one.
 */
import type { HelperClient } from '../protocol/client.js';
import type { ExitReport } from '../protocol/schema.js';

function writeOut(out: NodeJS.WriteStream, data: Buffer): Promise<void> | void {
  if (out.write(data)) return;
  return new Promise((resolve) => out.once('drain', () => resolve()));
}

export function attachOutput(client: HelperClient, stream: string): Promise<ExitReport | null> {
  return new Promise((resolve) => {
    let report: ExitReport | null = null;
    client.onStream(stream, (f) => {
      if (f.kind === 'stdout' || f.kind === 'stderr') {
        return writeOut(f.kind === 'stdout' ? process.stdout : process.stderr, Buffer.from(f.data ?? '', 'base64'));
      }
      const ev = f.event;
      if (ev?.type === 'exit') report = ev.report;
      else if (ev?.type === 'dropped') process.stderr.write(`ai-sandbox: ${ev.frames} output chunks (${ev.bytes} bytes) were dropped: the reader fell behind\n`);
      else if (ev?.type === 'end') resolve(report);
    });
  });
}

/** Forward this process's stdin (raw when a TTY) to a sandbox or exec session. */
export function forwardStdin(client: HelperClient, target: { sandbox: string } | { exec: string }, raw: boolean): () => void {
  const stdin = process.stdin;
  if (raw && stdin.isTTY) stdin.setRawMode(true);
  const onData = (chunk: Buffer) => void client.call('io.write', { target, data: chunk.toString('base64') }).catch(() => undefined);
  const onEnd = () => void client.call('io.write', { target, eof: true }).catch(() => undefined);
  stdin.on('data', onData);
  stdin.on('end', onEnd);
  const onResize = () => {
    if (process.stdout.rows && process.stdout.columns) void client.call('io.resize', { target, rows: process.stdout.rows, cols: process.stdout.columns }).catch(() => undefined);
  };
  if (raw) process.stdout.on('resize', onResize);
  return () => {
    stdin.off('data', onData);
    stdin.off('end', onEnd);
    process.stdout.off('resize', onResize);
    if (raw && stdin.isTTY) stdin.setRawMode(false);
    stdin.pause();
    stdin.unref?.();
  };
}

export function terminalSize(): { rows: number; cols: number } {
  return { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 };
}
