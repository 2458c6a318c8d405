/** What resource and anomaly events carry: the shape on the socket and in the app (no node imports). */
export type RuleName = 'memory-near-limit' | 'cpu-throttled' | 'denied-syscall' | 'unexpected-exec' | 'failed-open-burst' | 'blocked-domain';

export interface Anomaly {
  sandbox: string;
  rule: RuleName;
  at: string;
  message: string;
  details: Record<string, unknown>;
}

export interface ResourceSample {
  sandbox: string;
  at: string;
  cpuUsageNs: number;
  /** CPU use since the previous sample, in CPUs (1 = one core busy) */
  cpus: number;
  memoryCurrentBytes: number;
  memoryLimitBytes: number;
  pidsCurrent: number;
  throttledPeriods: number;
}
