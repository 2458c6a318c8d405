/**
 * Sizes (256M, 1.5G) and durations (500ms, 30s, 5m) as people write them, shared by the command line and
 * workflow files. A bad value is an InputError naming the field and saying what to write.
 */
export class InputError extends Error {}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

export function parseSize(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?$/i.exec(v.trim());
  if (!m) throw new InputError(`${flag}: "${v}" is not a size: write a number with an optional unit, e.g. 256M or 1G`);
  return Math.round(Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new InputError(`${flag}: "${v}" is not a duration: write e.g. 500ms, 30s, 5m or 1h`);
  const ms = Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? 's']!);
  if (ms <= 0) throw new InputError(`${flag}: the duration must be more than 0`);
  return ms;
}

