/**
 * Wall-clock time as HH:MM:SS in local time. Not toLocaleTimeString: its first call loads ICU's date
 * formatting data, a 70 ms main-thread stall measured in Chromium here, and it fell on the first run's
 * history row, right when a step's output starts to flood in.
 */
export function clockTime(at: string | number | Date): string {
  const d = at instanceof Date ? at : new Date(at);
  if (Number.isNaN(d.getTime())) return '–';
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A duration for a step or run: milliseconds below a second, else seconds with one decimal. */
export function fmtMs(ms: number | null): string {
  if (ms === null) return '';
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}
