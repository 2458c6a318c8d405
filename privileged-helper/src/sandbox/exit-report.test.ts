import { describe, expect, it } from 'vitest';
import { exitReport, type ExitFacts } from './exit-report.js';

const base: ExitFacts = {
  status: 0,
  initStatus: 0,
  timedOut: false,
  stats: { cpuUsageNs: 5e6, memoryPeakBytes: 1 << 20, oomKills: 0 },
  requestNs: 1_000_000n,
  execNs: 3_500_000n,
  exitNs: 11_000_000n,
};

describe('exit report', () => {
  it('reports a normal exit with its code and timings', () => {
    expect(exitReport({ ...base, status: 3 << 8 })).toEqual({ exitCode: 3, signal: null, reason: 'exited', cpuMs: 5, memoryPeakBytes: 1 << 20, startMs: 2.5, wallMs: 10 });
  });

  it('tells a signal, an OOM kill and a timeout apart', () => {
    expect(exitReport({ ...base, status: 15 })).toMatchObject({ exitCode: 143, signal: 'SIGTERM', reason: 'signaled' });
    expect(exitReport({ ...base, status: 9, stats: { ...base.stats!, oomKills: 1 } })).toMatchObject({ exitCode: 137, reason: 'oom-killed' });
    expect(exitReport({ ...base, status: 9 })).toMatchObject({ reason: 'signaled' });
    // sh -c 'python3 …' whose python was OOM-killed: sh exits 137 itself
    expect(exitReport({ ...base, status: 137 << 8, stats: { ...base.stats!, oomKills: 1 } })).toMatchObject({ exitCode: 137, reason: 'oom-killed' });
    expect(exitReport({ ...base, status: 0, stats: { ...base.stats!, oomKills: 1 } })).toMatchObject({ reason: 'exited' });
    expect(exitReport({ ...base, status: 9, timedOut: true, stats: { ...base.stats!, oomKills: 1 } })).toMatchObject({ reason: 'timed-out' });
  });

  it('falls back to the init status when the init died before reporting', () => {
    expect(exitReport({ ...base, status: 9, initStatus: 9 })).toMatchObject({ exitCode: 137, signal: 'SIGKILL' });
  });
});
