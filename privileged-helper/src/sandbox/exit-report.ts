/**
 * How a sandbox's end becomes an exit report: the command's wait status (or the init's, when the init
 * was killed before it could report), whether the helper's timer fired, and the cgroup's OOM count.
 */
import { constants as osConstants } from 'node:os';
import type { ExitStats } from '../cgroup/types.js';
import { decodeWaitStatus } from '../launcher/launcher.js';
import type { ExitReason, ExitReport } from '../protocol/schema.js';

const SIGNALS = new Map<number, string>(Object.entries(osConstants.signals).map(([k, v]) => [v, k] as [number, string]));
export function signalName(n: number): string {
  return SIGNALS.get(n) ?? `SIG${n}`;
}

export function nsToMs(ns: bigint): number {
  return Math.round(Number(ns) / 1e3) / 1e3;
}

export interface ExitFacts {
  status: number;
  initStatus: number;
  timedOut: boolean;
  stats: ExitStats | null;
  requestNs: bigint;
  execNs: bigint;
  exitNs: bigint;
}

export function exitReport(f: ExitFacts): ExitReport {
  const st = decodeWaitStatus(f.status);
  const init = decodeWaitStatus(f.initStatus);
  const signal = st.signal ?? (st.exitCode === null ? init.signal : null);
  let reason: ExitReason = signal !== null ? 'signaled' : 'exited';
  if (f.timedOut) reason = 'timed-out';
  // A kill of any process in the sandbox counts: a shell whose child was OOM-killed exits 137 itself.
  else if (f.stats && f.stats.oomKills > 0 && (signal === osConstants.signals.SIGKILL || st.exitCode !== 0)) reason = 'oom-killed';
  return {
    exitCode: signal !== null ? 128 + signal : (st.exitCode ?? 0),
    signal: signal !== null ? signalName(signal) : null,
    reason,
    cpuMs: f.stats ? f.stats.cpuUsageNs / 1e6 : 0,
    memoryPeakBytes: f.stats?.memoryPeakBytes ?? 0,
    startMs: nsToMs(f.execNs - f.requestNs),
    wallMs: nsToMs(f.exitNs - f.requestNs),
  };
}
