import { describe, expect, it } from 'vitest';
import { makeRecord } from '../trace/test-records.js';
import { RuleState, type ResourceSample } from './rules.js';

const sample = (over: Partial<ResourceSample>): ResourceSample => ({ sandbox: 'sb', at: '2026-01-01T00:00:00.000Z', cpuUsageNs: 0, cpus: 0, memoryCurrentBytes: 0, memoryLimitBytes: 100, pidsCurrent: 1, throttledPeriods: 0, ...over });

describe('anomaly rules', () => {
  it('memory-near-limit fires once per crossing, cpu-throttled on new throttled periods', () => {
    const r = new RuleState('sb', {});
    expect(r.onSample(sample({ memoryCurrentBytes: 50 }))).toEqual([]);
    expect(r.onSample(sample({ memoryCurrentBytes: 95 })).map((a) => a.rule)).toEqual(['memory-near-limit']);
    expect(r.onSample(sample({ memoryCurrentBytes: 96 }))).toEqual([]);
    expect(r.onSample(sample({ memoryCurrentBytes: 10 }))).toEqual([]);
    expect(r.onSample(sample({ memoryCurrentBytes: 91, throttledPeriods: 3 })).map((a) => a.rule)).toEqual(['memory-near-limit', 'cpu-throttled']);
    expect(new RuleState('sb', { memoryNearLimit: 0, cpuThrottled: false }).onSample(sample({ memoryCurrentBytes: 100 }))).toEqual([]);
  });

  it('denied-syscall once per syscall, unexpected-exec by path, failed-open-burst over a window', () => {
    const r = new RuleState('sb', { allowedExec: ['/usr/bin/python3', '/opt/tools/'], failedOpens: { count: 3, windowMs: 1000 } });
    const recs = Buffer.concat([
      makeRecord({ tsNs: 1n, nr: 165, ret: -1n }), // mount: EPERM
      makeRecord({ tsNs: 2n, nr: 165, ret: -1n }),
      makeRecord({ tsNs: 3n, nr: 59, path: '/opt/tools/x' }),
      makeRecord({ tsNs: 4n, nr: 59, path: '/bin/sh' }),
      makeRecord({ tsNs: 5n, nr: 257, ret: -2n, path: '/a' }),
      makeRecord({ tsNs: 6n, nr: 257, ret: -13n, path: '/b' }),
      makeRecord({ tsNs: 7n, nr: 257, ret: -2n, path: '/c' }),
    ]);
    const paths = ['', '', '/opt/tools/x', '/bin/sh', '/a', '/b', '/c'];
    const offs: number[] = [];
    for (let off = 0; off < recs.length; ) {
      offs.push(off);
      off += 96 + ((recs.readUInt16LE(off + 92) + 7) & ~7);
    }
    const pathOf = (off: number) => paths[offs.indexOf(off)] || undefined;
    const out = r.onRecords(recs, pathOf, 1000);
    expect(out.map((a) => `${a.rule}:${String(a.details.syscall ?? a.details.path ?? a.details.count)}`)).toEqual(['denied-syscall:mount', 'unexpected-exec:/bin/sh', 'failed-open-burst:3']);
    expect(r.onApprovalDenied('connect', 'timeout').rule).toBe('denied-syscall');
  });

  it('raises blocked-domain for a request the proxy refused, naming the proxy rule; not for allowed ones or when off', () => {
    const e = { sandbox: 'a', time: '2026-01-01T00:00:00.000Z', via: 'proxy' as const, method: 'GET', host: 'evil.test', port: 80, path: '/', decision: 'deny' as const, rule: 'default deny', status: 403, bytesUp: 0, bytesDown: 0 };
    const a = new RuleState('a', {}).onAudit(e);
    expect(a).toMatchObject({ rule: 'blocked-domain', message: 'GET evil.test:80 was blocked by the proxy (default deny)', details: { host: 'evil.test', proxyRule: 'default deny' } });
    expect(new RuleState('a', {}).onAudit({ ...e, decision: 'allow', rule: 'allow ok.test' })).toBeNull();
    expect(new RuleState('a', { blockedDomains: false }).onAudit(e)).toBeNull();
  });
});
