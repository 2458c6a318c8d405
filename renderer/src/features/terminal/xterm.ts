/** xterm, themed from the page's CSS variables; loaded lazily with the view that needs it. */
import { Terminal, type ITheme } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';

export function themeFromCss(el: Element): ITheme {
  const css = getComputedStyle(el);
  return { background: css.getPropertyValue('--term-bg').trim() || '#000', foreground: css.getPropertyValue('--term-fg').trim() || '#fff', cursor: css.getPropertyValue('--accent').trim() };
}

export function makeTerminal(host: HTMLElement, opts: { readOnly: boolean }): Terminal {
  const term = new Terminal({
    convertEol: opts.readOnly,
    disableStdin: opts.readOnly,
    scrollback: 5000,
    fontSize: 12,
    fontFamily: 'ui-monospace, monospace',
    theme: themeFromCss(host),
    cursorBlink: !opts.readOnly,
  });
  term.open(host);
  fit(term, host);
  return term;
}

/** Size the terminal to its box (the fit addon's arithmetic, without the addon). */
export function fit(term: Terminal, host: HTMLElement): void {
  const cellW = 7.3;
  const cellH = 15;
  const cols = Math.max(20, Math.floor((host.clientWidth - 12) / cellW));
  const rows = Math.max(4, Math.floor((host.clientHeight - 8) / cellH));
  if (cols !== term.cols || rows !== term.rows) term.resize(cols, rows);
}
