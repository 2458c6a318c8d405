/**
 * An interactive shell in a running sandbox: a pty on the app side running `ai-sandbox exec -it`
 * (terminal.open); keystrokes go out as terminal.write, output is written to xterm and acknowledged once
 * xterm has taken it (so a flood pauses the shell, not the page).
 */
import { useEffect, useRef, useState } from 'react';
import { api } from '../../store/actions';
import { fromBase64 } from '../../api/client';
import { makeTerminal } from './xterm';

export function SandboxTerminal({ sandbox }: { sandbox: string }) {
  const host = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<string | null>(null);
  const [ended, setEnded] = useState(false);
  useEffect(() => {
    if (!host.current) return;
    const term = makeTerminal(host.current, { readOnly: false });
    let terminal: string | null = null;
    let stop: (() => void) | null = null;
    let disposed = false;
    void api()
      .call('terminal.open', { sandbox, rows: term.rows, cols: term.cols })
      .then((r) => {
        if (disposed) {
          void api().call('terminal.close', { terminal: r.terminal });
          return;
        }
        terminal = r.terminal;
        stop = api().subscribe(r.stream, (f) => {
          if (f.kind === 'stdout' || f.kind === 'stderr') return new Promise<void>((resolve) => term.write(fromBase64(f.data ?? ''), resolve));
          if (f.event?.type === 'exit') setEnded(true);
          return undefined;
        });
        term.focus();
      })
      .catch((e: Error) => setError(e.message));
    const input = term.onData((data) => terminal && void api().call('terminal.write', { terminal, data }).catch((e: Error) => setError(e.message)));
    const resize = term.onResize(({ rows, cols }) => terminal && void api().call('terminal.resize', { terminal, rows, cols }).catch(() => undefined));
    return () => {
      disposed = true;
      input.dispose();
      resize.dispose();
      stop?.();
      if (terminal) void api().call('terminal.close', { terminal }).catch(() => undefined);
      term.dispose();
    };
  }, [sandbox]);
  return (
    <div className="pane" data-testid="sandbox-terminal">
      <div className="pane-head">
        <b>Terminal in {sandbox}</b>
        {ended && <span>the shell ended</span>}
        {error && <span className="error">{error}</span>}
      </div>
      <div className="term" ref={host} />
    </div>
  );
}
