/**
 * Small statistics and printing helpers shared by the benchmarks: percentiles of a sample, ratios, and a
 * plain-text table. Benchmarks print figures and ratios against a peer measured in the same run; they
 * never assert on time.
 */

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Percentile by linear interpolation between closest ranks (the same as numpy's default). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (rank - lo);
}

export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const sum = s.reduce((acc, v) => acc + v, 0);
  return {
    n: s.length,
    min: s.length ? s[0]! : Number.NaN,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s.length ? s[s.length - 1]! : Number.NaN,
    mean: s.length ? sum / s.length : Number.NaN,
  };
}

/** Median of a few readings (used to damp noise in memory samples). */
export function median(values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/** Milliseconds since an arbitrary origin, from the monotonic high-resolution clock. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Rounded for JSON: keeps three decimals (microseconds when the unit is ms). */
export function round3(v: number): number {
  return Number.isFinite(v) ? Math.round(v * 1000) / 1000 : v;
}

export function roundSummary(s: Summary): Summary {
  return {
    n: s.n,
    min: round3(s.min),
    p50: round3(s.p50),
    p90: round3(s.p90),
    p99: round3(s.p99),
    max: round3(s.max),
    mean: round3(s.mean),
  };
}

export function fmt(v: number | null | undefined, digits = 2): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  return v.toFixed(digits);
}

/** "3.4× faster than X" / "1.2× slower than X" for `ours` vs `peer` (smaller is better). */
export function ratioText(ours: number, peer: number, peerName: string): string {
  if (!Number.isFinite(ours) || !Number.isFinite(peer) || ours <= 0 || peer <= 0) return `no comparison with ${peerName}`;
  return ours <= peer ? `${(peer / ours).toFixed(1)}× faster than ${peerName}` : `${(ours / peer).toFixed(1)}× slower than ${peerName}`;
}

export type Align = 'left' | 'right';

export interface Table {
  title: string;
  columns: Array<{ header: string; align?: Align }>;
  rows: string[][];
  notes?: string[];
}

export function renderTable(t: Table): string {
  const widths = t.columns.map((c, i) => Math.max(c.header.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const cell = (text: string, i: number): string => {
    const w = widths[i] ?? 0;
    return (t.columns[i]?.align ?? 'right') === 'left' ? text.padEnd(w) : text.padStart(w);
  };
  const line = (cells: string[]): string => cells.map((c, i) => cell(c, i)).join('  ').trimEnd();
  const out = [t.title, line(t.columns.map((c) => c.header)), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of t.rows) out.push(line(r));
  for (const n of t.notes ?? []) out.push(`  ${n}`);
  return out.join('\n');
}

export interface TargetCheck {
  what: string;
  target: string;
  actual: string;
  met: boolean | null;
}

export function renderTargets(targets: readonly TargetCheck[]): string {
  return renderTable({
    title: 'Targets (printed, not asserted)',
    columns: [{ header: 'figure', align: 'left' }, { header: 'target', align: 'left' }, { header: 'measured', align: 'left' }, { header: '', align: 'left' }],
    rows: targets.map((t) => [t.what, t.target, t.actual, t.met === null ? 'n/a' : t.met ? 'met' : 'MISSED']),
  });
}
