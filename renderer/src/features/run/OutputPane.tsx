/**
 * The selected step's output in an xterm pane. New output is gathered and written once per animation
 * frame, never per frame received, so a flood costs the page one write per frame; when more arrives
 * between two frames than the pane can show, only the tail is written and the rest is counted.
 */
import { useEffect, useRef, useState } from 'react';
import type { Terminal } from '@xterm/xterm';
import { useStore } from '../../store';
import { countLines, type OutputRing } from './output-ring';
import { fit, makeTerminal } from '../terminal/xterm';

// a pane shows ~5 KiB; more per frame only scrolls by unseen at the cost of parsing it
const MAX_WRITE_PER_FRAME = 16 * 1024;

export function OutputPane({ step }: { step: string | null }) {
  const host = useRef<HTMLDivElement>(null);
  const term = useRef<Terminal | null>(null);
  const ring = useStore((s) => (step ? s.outputs[step] : undefined)) as OutputRing | undefined;
  const theme = useStore((s) => s.theme);
  const [counts, setCounts] = useState({ lines: 0, droppedFrames: 0, droppedBytes: 0, droppedLocal: 0, skipped: 0 });

  useEffect(() => {
    if (!host.current) return;
    const t = makeTerminal(host.current, { readOnly: true });
    term.current = t;
    const onResize = () => host.current && fit(t, host.current);
    window.addEventListener('resize', onResize);
    return () => {
      window.removeEventListener('resize', onResize);
      t.dispose();
      term.current = null;
    };
  }, [theme]);

  useEffect(() => {
    const t = term.current;
    if (!t) return;
    t.reset();
    if (!ring) {
      setCounts({ lines: 0, droppedFrames: 0, droppedBytes: 0, droppedLocal: 0, skipped: 0 });
      return;
    }
    let pending: string[] = [];
    let pendingBytes = 0;
    let skipped = 0;
    let raf = 0;
    const initial = ring.text();
    t.write(initial.length > MAX_WRITE_PER_FRAME ? initial.slice(-MAX_WRITE_PER_FRAME) : initial);
    const flush = () => {
      raf = 0;
      let text = pending.join('');
      pending = [];
      pendingBytes = 0;
      if (text.length > MAX_WRITE_PER_FRAME) {
        // cut at a line start when there is one in the tail, else just keep the tail
        const nl = text.indexOf('\n', text.length - MAX_WRITE_PER_FRAME);
        const cut = nl >= 0 ? nl + 1 : text.length - MAX_WRITE_PER_FRAME;
        skipped += countLines(text.slice(0, cut));
        text = text.slice(cut);
      }
      if (text) t.write(text);
      setCounts({ lines: ring.totalLines, droppedFrames: ring.droppedFrames, droppedBytes: ring.droppedBytes, droppedLocal: ring.droppedLocal, skipped });
    };
    const off = ring.subscribe((chunk) => {
      if (chunk) {
        pending.push(chunk);
        pendingBytes += chunk.length;
        // bound what waits for the next frame too
        while (pendingBytes > 4 * MAX_WRITE_PER_FRAME && pending.length > 1) {
          const gone = pending.shift()!;
          pendingBytes -= gone.length;
          skipped += countLines(gone);
        }
      }
      if (!raf) raf = requestAnimationFrame(flush);
    });
    flush();
    return () => {
      off();
      if (raf) cancelAnimationFrame(raf);
    };
  }, [ring, theme]);

  return (
    <div className="pane" data-testid="output-pane">
      <div className="pane-head">
        <b>{step ? `Output of ${step}` : 'Output'}</b>
        <span data-testid="output-lines">{counts.lines} lines</span>
        {(counts.droppedFrames > 0 || counts.skipped > 0) && (
          <span className="dropped" data-testid="output-dropped">
            {counts.droppedFrames > 0 ? `${counts.droppedFrames} chunks (${counts.droppedBytes} bytes) dropped by flow control` : ''}
            {counts.skipped > 0 ? ` · ${counts.skipped} lines scrolled past unseen` : ''}
          </span>
        )}
        {!step && <span>select a step to see what it prints</span>}
      </div>
      <div className="term" ref={host} data-testid="output-term" />
    </div>
  );
}
