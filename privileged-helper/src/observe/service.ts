/**
 * Resource and anomaly events: every second, each running sandbox's cgroup (CPU, memory, pids,
 * throttling) is sampled and published (the app's charts); rules (observe/rules.ts) watch the samples,
 * the syscall records of traced sandboxes and denied approvals, and raise events that name their rule.
 *
 * Threat model: reads only the helper's own cgroups and what the tracer and supervisor report; clients
 * choose which sandbox to watch (validated names). Nothing here changes a sandbox.
 */
import type { AuditEvent } from '../network/audit-event.js';
import type { ConnectionStream } from '../server/stream.js';
import type { SandboxManager } from '../sandbox/manager.js';
import { DEFAULTS } from '../sandbox/policy.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import { RECORD_HEADER } from '../trace/records.js';
import type { SandboxObserver } from '../trace/service.js';
import { RuleState, type Anomaly, type ResourceSample } from './rules.js';

const KEEP = 500;

interface Watcher {
  stream: ConnectionStream;
  sandbox: string | undefined;
  resources: boolean;
}

interface State {
  rules: RuleState;
  lastCpuNs: number | null;
  lastAtMs: number;
}

export class ObserveService {
  private readonly states = new Map<string, State>();
  private readonly watchers = new Set<Watcher>();
  private readonly recent: Anomaly[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly manager: SandboxManager,
    private readonly intervalMs = 1000,
  ) {}

  readonly observer: SandboxObserver = {
    stopped: async (sb) => {
      this.states.delete(sb.name);
    },
  };

  start(): void {
    this.timer ??= setInterval(() => this.sampleAll(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private state(sb: Sandbox): State {
    let s = this.states.get(sb.name);
    if (!s) {
      s = { rules: new RuleState(sb.name, sb.spec.anomalies ?? {}), lastCpuNs: null, lastAtMs: Date.now() };
      this.states.set(sb.name, s);
    }
    return s;
  }

  sampleAll(): void {
    for (const info of this.manager.list()) {
      if (info.status !== 'running') continue;
      let sb: Sandbox;
      try {
        sb = this.manager.get(info.name);
      } catch {
        continue;
      }
      let stats;
      try {
        stats = sb.cgroup?.stats();
      } catch {
        continue; // it ended meanwhile
      }
      if (!stats) continue;
      const st = this.state(sb);
      const now = Date.now();
      const cpus = st.lastCpuNs === null ? 0 : (stats.cpuUsageNs - st.lastCpuNs) / 1e6 / Math.max(1, now - st.lastAtMs);
      st.lastCpuNs = stats.cpuUsageNs;
      st.lastAtMs = now;
      const sample: ResourceSample = {
        sandbox: sb.name,
        at: new Date(now).toISOString(),
        cpuUsageNs: stats.cpuUsageNs,
        cpus,
        memoryCurrentBytes: stats.memoryCurrentBytes,
        memoryLimitBytes: sb.spec.limits.memoryBytes ?? DEFAULTS.memoryBytes,
        pidsCurrent: stats.pidsCurrent,
        throttledPeriods: stats.throttledPeriods,
      };
      for (const w of this.watchers) if (w.resources && (w.sandbox === undefined || w.sandbox === sb.name)) this.send(w, { type: 'resources', sample });
      this.raise(st.rules.onSample(sample));
    }
  }

  /** A traced sandbox's records (TraceService listener). */
  onRecords(sandbox: string, buf: Buffer): void {
    let sb: Sandbox;
    try {
      sb = this.manager.get(sandbox);
    } catch {
      return;
    }
    const pathOf = (off: number): string | undefined => {
      const plen = buf.readUInt16LE(off + 92);
      if (plen === 0) return undefined;
      const p = off + RECORD_HEADER + ((buf[off + 94]! + 7) & ~7);
      const end = buf.indexOf(0, p);
      return buf.toString('utf8', p, end < 0 || end > p + plen ? p + plen : end);
    };
    this.raise(this.state(sb).rules.onRecords(buf, pathOf, Date.now()));
  }

  /** A decision of a sandbox's auditing proxy (blocked ones raise `blocked-domain`). */
  onAudit(e: AuditEvent): void {
    if (e.decision !== 'deny' || !this.manager.has(e.sandbox)) return;
    const a = this.state(this.manager.get(e.sandbox)).rules.onAudit(e);
    if (a) this.raise([a]);
  }

  /** An approval was denied (by a person or the timeout). */
  onApprovalDenied(sandbox: string, syscall: string, by: string): void {
    let sb: Sandbox;
    try {
      sb = this.manager.get(sandbox);
    } catch {
      return;
    }
    const st = this.state(sb);
    if (st.rules.rules.deniedSyscalls === false) return;
    this.raise([st.rules.onApprovalDenied(syscall, by)]);
  }

  private raise(list: Anomaly[]): void {
    for (const a of list) {
      this.recent.push(a);
      if (this.recent.length > KEEP) this.recent.shift();
      for (const w of this.watchers) if (w.sandbox === undefined || w.sandbox === a.sandbox) this.send(w, { type: 'anomaly', anomaly: a });
    }
  }

  private send(w: Watcher, ev: Parameters<ConnectionStream['event']>[0]): void {
    if (w.stream.done) this.watchers.delete(w);
    else w.stream.event(ev);
  }

  anomalies(sandbox?: string): Anomaly[] {
    return this.recent.filter((a) => sandbox === undefined || a.sandbox === sandbox);
  }

  watch(stream: ConnectionStream, sandbox: string | undefined, resources: boolean): void {
    const w: Watcher = { stream, sandbox, resources };
    for (const a of this.anomalies(sandbox)) stream.event({ type: 'anomaly', anomaly: a });
    this.watchers.add(w);
  }

  unwatch(stream: ConnectionStream): void {
    for (const w of this.watchers) if (w.stream === stream) this.watchers.delete(w);
  }
}
