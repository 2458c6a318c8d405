/**
 * An interactive shell in a running sandbox: `sandbox.exec` with a TTY; keystrokes go out as io.write,
 * output is written to xterm and acknowledged once xterm has taken it (so a flood slows the helper,
 * not the page).
 */
import { useEffect, useRef, useState } from 'react';
import { api } from '../../store/actions';
import { fromBase64, toBase64 } from '../../api/client';
import { makeTerminal } from './xterm';

export function SandboxTerminal({ sandbox }: { sandbox: string }) {
  const host = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<string | null>(null);
  const [ended, setEnded] = useState(false);
  useEffect(() => {
    if (!host.current) return;
    const term = makeTerminal(host.current, { readOnly: false });
    let exec: string | null = null;
    let stop: (() => void) | null = null;
    let disposed = false;
    void api()
      .call('sandbox.exec', { name: sandbox, command: ['/bin/sh', '-i'], tty: { rows: term.rows, cols: term.cols }, stdin: true, env: { TERM: 'xterm-256color', PS1: `${sandbox}$ ` } })
      .then((r) => {
        if (disposed) return;
        exec = r.exec;
        stop = api().subscribe(r.stream, (f) => {
          if (f.kind === 'stdout' || f.kind === 'stderr') return new Promise<void>((resolve) => term.write(fromBase64(f.data ?? ''), resolve));
          if (f.event?.type === 'exit') setEnded(true);
          return undefined;
        });
        term.focus();
      })
      .catch((e: Error) => setError(e.message));
    const input = term.onData((d) => exec && void api().call('io.write', { target: { exec }, data: toBase64(d) }).catch((e: Error) => setError(e.message)));
    const resize = term.onResize(({ rows, cols }) => exec && void api().call('io.resize', { target: { exec }, rows, cols }).catch(() => undefined));
    return () => {
      disposed = true;
      input.dispose();
      resize.dispose();
      stop?.();
      if (exec) void api().call('io.write', { target: { exec }, data: '', eof: true }).catch(() => undefined);
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
