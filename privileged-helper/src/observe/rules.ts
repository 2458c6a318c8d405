/**
 * Anomaly rules: pure functions over resource samples and syscall records, so they are unit-tested
 * without a kernel. Every event names the rule that raised it.
 */
import { recordNr, recordSize, recordView, RECORD_HEADER } from '../trace/records.js';
import { syscallName, syscallNumber } from '../trace/syscalls.js';
import type { AnomalyRules } from '../protocol/schema.js';
import type { AuditEvent } from '../network/audit-event.js';

import type { Anomaly, ResourceSample } from './types.js';

export type { Anomaly, ResourceSample, RuleName } from './types.js';

const OPENS = new Set(['open', 'openat', 'openat2', 'creat'].map((n) => syscallNumber(n)!));
const EXECS = new Set(['execve', 'execveat'].map((n) => syscallNumber(n)!));
const EPERM = 1;
const EACCES = 13;
const ENOSYS = 38;

export const RULE_DEFAULTS = { memoryNearLimit: 0.9, cpuThrottled: true, deniedSyscalls: true, blockedDomains: true, failedOpens: { count: 50, windowMs: 1000 } } as const;

/** Per-sandbox rule state across samples and record batches. */
export class RuleState {
  private memoryArmed = true;
  private lastThrottled: number | null = null;
  private readonly deniedSeen = new Set<number>();
  private failedOpens: number[] = [];

  constructor(
    readonly sandbox: string,
    readonly rules: AnomalyRules,
  ) {}

  onSample(s: ResourceSample): Anomaly[] {
    const out: Anomaly[] = [];
    const at = s.at;
    const frac = this.rules.memoryNearLimit ?? RULE_DEFAULTS.memoryNearLimit;
    if (frac > 0 && s.memoryLimitBytes > 0) {
      const used = s.memoryCurrentBytes / s.memoryLimitBytes;
      if (used >= frac && this.memoryArmed) {
        this.memoryArmed = false; // once per crossing: re-armed below (frac - 0.1)
        out.push({ sandbox: this.sandbox, rule: 'memory-near-limit', at, message: `memory at ${(used * 100).toFixed(0)}% of its limit (${s.memoryCurrentBytes} of ${s.memoryLimitBytes} bytes)`, details: { used, memoryCurrentBytes: s.memoryCurrentBytes, memoryLimitBytes: s.memoryLimitBytes } });
      } else if (used < frac - 0.1) this.memoryArmed = true;
    }
    if (this.rules.cpuThrottled ?? RULE_DEFAULTS.cpuThrottled) {
      if (this.lastThrottled !== null && s.throttledPeriods > this.lastThrottled) {
        const n = s.throttledPeriods - this.lastThrottled;
        out.push({ sandbox: this.sandbox, rule: 'cpu-throttled', at, message: `CPU quota exhausted in ${n} period(s) since the last sample`, details: { periods: n } });
      }
      this.lastThrottled = s.throttledPeriods;
    }
    return out;
  }

  /** `paths`: the path of each record that has one (execs are judged by path) */
  onRecords(buf: Buffer, pathOf: (off: number) => string | undefined, nowMs: number): Anomaly[] {
    const out: Anomaly[] = [];
    const at = new Date(nowMs).toISOString();
    const dv = recordView(buf);
    const denied = this.rules.deniedSyscalls ?? RULE_DEFAULTS.deniedSyscalls;
    const fo = this.rules.failedOpens ?? RULE_DEFAULTS.failedOpens;
    const execAllow = this.rules.allowedExec;
    for (let off = 0; off + RECORD_HEADER <= buf.length; off += recordSize(dv, off)) {
      const nr = recordNr(dv, off);
      const ret = dv.getInt32(off + 24, true);
      if (denied && (ret === -EPERM || ret === -ENOSYS) && !this.deniedSeen.has(nr)) {
        // once per syscall: a program that keeps retrying would flood the timeline
        this.deniedSeen.add(nr);
        out.push({ sandbox: this.sandbox, rule: 'denied-syscall', at, message: `${syscallName(nr)} was refused (${ret === -EPERM ? 'EPERM' : 'ENOSYS'}): the sandbox policy does not allow it`, details: { syscall: syscallName(nr), errno: ret === -EPERM ? 'EPERM' : 'ENOSYS' } });
      }
      if (execAllow && EXECS.has(nr)) {
        const p = pathOf(off);
        // an empty path is an exec by fd (AT_EMPTY_PATH): the sandbox's own init re-exec does that
        if (p !== undefined && p !== '' && !execAllow.some((a) => p === a || (a.endsWith('/') && p.startsWith(a)))) {
          out.push({ sandbox: this.sandbox, rule: 'unexpected-exec', at, message: `exec of ${p}, which is not in allowedExec`, details: { path: p, ret } });
        }
      }
      if (fo.count > 0 && OPENS.has(nr) && ret < 0 && (ret === -2 || ret === -EACCES || ret === -EPERM)) {
        this.failedOpens.push(nowMs);
        this.failedOpens = this.failedOpens.filter((t) => t > nowMs - fo.windowMs);
        if (this.failedOpens.length >= fo.count) {
          out.push({ sandbox: this.sandbox, rule: 'failed-open-burst', at, message: `${this.failedOpens.length} failed opens within ${fo.windowMs} ms`, details: { count: this.failedOpens.length, windowMs: fo.windowMs } });
          this.failedOpens = [];
        }
      }
    }
    return out;
  }

  /** the auditing proxy refused a request (null when the rule is off) */
  onAudit(e: AuditEvent): Anomaly | null {
    if (e.decision !== 'deny' || !(this.rules.blockedDomains ?? RULE_DEFAULTS.blockedDomains)) return null;
    return {
      sandbox: this.sandbox,
      rule: 'blocked-domain',
      at: e.time,
      message: `${e.method} ${e.host}:${e.port} was blocked by the proxy (${e.rule})`,
      details: { host: e.host, port: e.port, via: e.via, proxyRule: e.rule },
    };
  }

  /** a person (or the timeout) denied an approval: a denied syscall too */
  onApprovalDenied(syscall: string, by: string): Anomaly {
    return { sandbox: this.sandbox, rule: 'denied-syscall', at: new Date().toISOString(), message: `${syscall} was denied by approval (${by})`, details: { syscall, by } };
  }
}
