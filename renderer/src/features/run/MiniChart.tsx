/** A tiny live line chart (SVG, no library): the last minute of one number. */
export function MiniChart({ label, values, max, format }: { label: string; values: number[]; max: number; format(v: number): string }) {
  const w = 140;
  const h = 36;
  const top = Math.max(max, ...values, 1e-9);
  const pts = values.map((v, i) => `${(i / Math.max(1, values.length - 1)) * w},${h - (v / top) * (h - 2) - 1}`).join(' ');
  return (
    <div className="chart">
      {label}: {values.length ? format(values.at(-1)!) : '–'}
      <svg width={w} height={h} aria-label={label}>
        <polyline points={pts} fill="none" stroke="var(--accent)" strokeWidth="1.5" />
      </svg>
    </div>
  );
}
