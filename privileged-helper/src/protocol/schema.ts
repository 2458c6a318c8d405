/**
 * The helper's socket contract: one closed union of operations, each with a strict params schema and a
 * result type. Clients ignore unknown fields in what they receive; the helper rejects unknown fields in
 * what it receives (`.strict()`). Only additive changes inside a protocol major version.
 */
import { z } from 'zod';
import type { CgroupStats } from '../cgroup/types.js';
import type { RunEvent, RunState } from '../workflow/run-state.js';
import type { AuditEvent } from '../network/audit-event.js';
import { DOMAIN_PATTERN_RE, HOSTNAME_RE } from '../network/domains.js';
import type { TraceEvent } from '../trace/meta.js';
import type { TraceCounters, TraceMeta } from '../trace/meta.js';

export const PROTOCOL_VERSION = 1;
export const PROTOCOL_MIN = 1;

/** Sandbox and pool names: safe as a cgroup, directory, and hostname component. */
export const NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
export const nameSchema = z
  .string()
  .regex(NAME_RE, 'a name is 1-63 characters: lowercase letters, digits, and _ . - (starting with a letter or digit)');

export const runIdSchema = z.string().regex(/^r-[0-9a-f]{8}$/, 'a run id looks like r-0123abcd (see `ai-sandbox workflow list`)');

export const SNAPSHOT_ID_RE = /^s-[0-9a-f]{10}$/;
export const snapshotIdSchema = z.string().regex(SNAPSHOT_ID_RE, 'a snapshot id looks like s-0123456789 (see `ai-sandbox snapshots`)');

const absPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.startsWith('/') && !p.includes('\0'), 'must be an absolute path');

export const limitsSchema = z
  .object({
    memoryBytes: z.number().int().min(4 * 1024 * 1024).max(2 ** 50).optional(),
    cpus: z.number().min(0.01).max(1024).optional(),
    cpuWeight: z.number().int().min(1).max(10000).optional(),
    pidsMax: z.number().int().min(1).max(4_194_304).optional(),
  })
  .strict();

export const mountSchema = z.object({ source: absPath, target: absPath, readOnly: z.boolean() }).strict();

export const ttySchema = z
  .object({ rows: z.number().int().min(1).max(1000), cols: z.number().int().min(1).max(1000) })
  .strict();

const envSchema = z
  .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment names are letters, digits and _'), z.string())
  .refine((env) => Object.values(env).every((v) => !v.includes('\0')), 'environment values cannot contain NUL');

const commandSchema = z
  .array(z.string().refine((a) => !a.includes('\0'), 'arguments cannot contain NUL'))
  .min(1, 'a command is required')
  .max(4096);

export const userSchema = z
  .object({ uid: z.number().int().min(0).max(2 ** 32 - 2), gid: z.number().int().min(0).max(2 ** 32 - 2) })
  .strict();

const portSchema = z.number().int().min(1).max(65535);
const ipv4Schema = z.string().regex(/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/, 'an IPv4 address like 192.0.2.10');
const domainPatternSchema = z
  .string()
  .max(253)
  .regex(DOMAIN_PATTERN_RE, 'a domain pattern is a lowercase name (example.com) or a wildcard (*.example.com)');

/**
 * Network policy. No rule: loopback only. `allowPorts`: a veth to the host with egress to the host side
 * (host.ai-sandbox.internal) and the outside on those ports. `allowDomains`: HTTP(S) through the
 * auditing proxy, for these names only (`denyDomains` win over them).
 */
export const networkSchema = z
  .object({
    allowPorts: z.array(z.object({ port: portSchema, proto: z.enum(['tcp', 'udp']).default('tcp') }).strict()).max(64).default([]),
    allowDomains: z.array(domainPatternSchema).max(256).default([]),
    denyDomains: z.array(domainPatternSchema).max(256).default([]),
    /** names pinned to addresses (like curl's --resolve); with a port, every connection to the name goes there */
    resolve: z
      .array(z.object({ name: z.string().max(253).regex(HOSTNAME_RE, 'a host name'), address: ipv4Schema, port: portSchema.optional() }).strict())
      .max(256)
      .default([]),
  })
  .strict();
export type NetworkPolicy = z.infer<typeof networkSchema>;
export type NetworkPolicyInput = z.input<typeof networkSchema>;
/** Syscall names or families (open, stat, exec, net, file, process): see trace/syscalls.ts. */
const syscallNamesSchema = z.array(z.string().regex(/^[a-z0-9_]{1,40}$/, 'a syscall name or family, e.g. openat, connect, open')).min(1).max(512);

/**
 * `trace: true` records every syscall of the sandbox; the object form narrows it in the kernel: only
 * these syscalls, and at most `rate` records a second one by one (the rest are counted per syscall).
 */
export const traceOptionsSchema = z.union([
  z.boolean(),
  z
    .object({
      syscalls: syscallNamesSchema.optional(),
      rate: z.number().int().min(0).max(100_000_000).optional(),
    })
    .strict(),
]);
export type TraceOptions = z.infer<typeof traceOptionsSchema>;

/**
 * Approvals (seccomp user notification): these syscalls wait for a person to allow or deny them
 * (`ai-sandbox approvals`, `approve ID`, `deny ID`); no answer within `timeoutMs` denies (EPERM).
 */
export const approvalsSchema = z
  .object({
    ask: z.array(z.string().regex(/^[a-z0-9_]{1,40}$/, 'a syscall name, e.g. connect')).min(1).max(64),
    timeoutMs: z.number().int().min(100).max(3_600_000).default(30_000),
  })
  .strict();
export type ApprovalsPolicy = z.infer<typeof approvalsSchema>;

/** Anomaly rules (see observe/rules.ts); absent fields take the defaults, resource rules apply to every sandbox. */
export const anomalyRulesSchema = z
  .object({
    /** memory-near-limit: raised when memory reaches this fraction of the limit (default 0.9; 0 = off) */
    memoryNearLimit: z.number().min(0).max(1).optional(),
    /** cpu-throttled: raised when the CPU quota ran out since the last sample (default on) */
    cpuThrottled: z.boolean().optional(),
    /** denied-syscall: a syscall refused by the policy (EPERM/ENOSYS, traced sandboxes) or by an approval (default on) */
    deniedSyscalls: z.boolean().optional(),
    /** unexpected-exec: an exec of a path outside these (a trailing / is a prefix); traced sandboxes; default off */
    allowedExec: z.array(absPath).max(256).optional(),
    /** blocked-domain: the auditing proxy refused a request (sandboxes with --allow-domain; default on) */
    blockedDomains: z.boolean().optional(),
    /** failed-open-burst: this many failed opens within windowMs (traced sandboxes; default 50 in 1000 ms; count 0 = off) */
    failedOpens: z.object({ count: z.number().int().min(0).max(1_000_000), windowMs: z.number().int().min(1).max(3_600_000) }).strict().optional(),
  })
  .strict();
export type AnomalyRules = z.infer<typeof anomalyRulesSchema>;

export const sandboxSpecSchema = z
  .object({
    name: nameSchema.optional(),
    command: commandSchema,
    limits: limitsSchema.default({}),
    timeoutMs: z.number().int().min(1).max(7 * 24 * 3600 * 1000).optional(),
    rootfs: absPath.optional(),
    mounts: z.array(mountSchema).max(64).default([]),
    env: envSchema.default({}),
    workdir: absPath.optional(),
    user: userSchema.optional(),
    allowListen: z.boolean().default(false),
    tty: ttySchema.optional(),
    tmpfsBytes: z.number().int().min(1024 * 1024).max(2 ** 40).optional(),
    pool: nameSchema.optional(),
    network: networkSchema.optional(),
    /** live syscall trace (eBPF), kept after the sandbox ends; off by default */
    trace: traceOptionsSchema.optional(),
    /** syscalls that wait for a person's approval (seccomp user notification); off by default */
    approvals: approvalsSchema.optional(),
    /** anomaly rules for this sandbox (observe); defaults apply without it */
    anomalies: anomalyRulesSchema.optional(),
  })
  .strict();
export type SandboxSpec = z.infer<typeof sandboxSpecSchema>;
export type SandboxSpecInput = z.input<typeof sandboxSpecSchema>;

export const SANDBOX_STATUSES = ['creating', 'running', 'paused', 'checkpointing', 'stopped'] as const;
export type SandboxStatus = (typeof SANDBOX_STATUSES)[number];
export const EXIT_REASONS = ['exited', 'signaled', 'oom-killed', 'timed-out', 'failed-to-start', 'checkpointed'] as const;
export type ExitReason = (typeof EXIT_REASONS)[number];

/** What `--report` writes and what a finished sandbox carries. */
export interface ExitReport {
  exitCode: number;
  signal: string | null;
  reason: ExitReason;
  cpuMs: number;
  memoryPeakBytes: number;
  startMs: number;
  wallMs: number;
  message?: string | undefined;
}

export interface SandboxInfo {
  name: string;
  status: SandboxStatus;
  command: string[];
  pid: number | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  limits: z.infer<typeof limitsSchema>;
  pool: string | null;
  exit: ExitReport | null;
  cgroup2Path: string | null;
  /** null: loopback only */
  network: SandboxNetworkInfo | null;
}

export interface SandboxNetworkInfo {
  address: string;
  /** the host side: host.ai-sandbox.internal */
  gateway: string;
  interface: string;
  allowPorts: Array<{ port: number; proto: 'tcp' | 'udp' }>;
  allowDomains: string[];
  denyDomains: string[];
  proxy: string | null;
}

/** A running sandbox's resource use, as its cgroup reports it. */
export type SandboxStats = CgroupStats;

const target = z.object({ sandbox: nameSchema }).strict().or(z.object({ exec: z.string().regex(/^x[0-9]+$/) }).strict());

/** Request params, one schema per operation. */
export const operations = {
  hello: z
    .object({
      protocol: z.tuple([z.number().int().min(0), z.number().int().min(0)]),
      client: z.string().max(200),
    })
    .strict(),
  'sandbox.create': z
    .object({
      spec: sandboxSpecSchema,
      /** stream the output to this connection (and stdin from it, when `stdin`) */
      attach: z.boolean().default(false),
      stdin: z.boolean().default(false),
      /** remove the sandbox (its files, cgroup, record) as soon as it stops */
      autoRemove: z.boolean().default(false),
    })
    .strict(),
  'sandbox.list': z.object({}).strict(),
  'sandbox.inspect': z.object({ name: nameSchema }).strict(),
  'sandbox.stats': z.object({ name: nameSchema }).strict(),
  'sandbox.wait': z.object({ name: nameSchema }).strict(),
  'sandbox.stop': z
    .object({ name: nameSchema, graceMs: z.number().int().min(0).max(600_000).default(5000) })
    .strict(),
  'sandbox.remove': z.object({ name: nameSchema, force: z.boolean().default(false) }).strict(),
  'sandbox.logs': z.object({ name: nameSchema, follow: z.boolean().default(false) }).strict(),
  'sandbox.exec': z
    .object({
      name: nameSchema,
      command: commandSchema,
      env: envSchema.default({}),
      workdir: absPath.optional(),
      user: userSchema.optional(),
      tty: ttySchema.optional(),
      stdin: z.boolean().default(false),
    })
    .strict(),
  'io.write': z
    .object({
      target,
      /** base64 */
      data: z.string().max(1024 * 1024).default(''),
      eof: z.boolean().default(false),
    })
    .strict(),
  'io.resize': z.object({ target, rows: z.number().int().min(1).max(1000), cols: z.number().int().min(1).max(1000) }).strict(),
  'stream.cancel': z.object({ stream: z.string().max(64) }).strict(),
  'snapshot.checkpoint': z
    .object({ name: nameSchema, leaveRunning: z.boolean().default(false), label: z.string().max(200).optional() })
    .strict(),
  'snapshot.list': z.object({ sandbox: nameSchema.optional() }).strict(),
  'snapshot.restore': z
    .object({ snapshot: snapshotIdSchema, name: nameSchema.optional(), attach: z.boolean().default(false) })
    .strict(),
  'snapshot.fork': z
    .object({ snapshot: snapshotIdSchema, count: z.number().int().min(1).max(64), prefix: nameSchema.optional() })
    .strict(),
  'snapshot.remove': z.object({ snapshot: snapshotIdSchema }).strict(),
  'snapshot.diff': z.object({ from: snapshotIdSchema, to: snapshotIdSchema }).strict(),
  'workflow.start': z
    .object({
      /** the workflow file's text: the helper parses and validates it itself */
      text: z.string().max(1024 * 1024),
      /** its absolute path: named in errors, and relative mount sources resolve against its directory */
      file: absPath,
    })
    .strict(),
  'workflow.get': z.object({ run: runIdSchema }).strict(),
  'workflow.list': z.object({}).strict(),
  'workflow.cancel': z.object({ run: runIdSchema }).strict(),
  'workflow.replay': z
    .object({
      run: runIdSchema,
      from: z.string().min(1).max(200),
      env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment names are letters, digits and _'), z.string().max(65536)).default({}),
    })
    .strict(),
  'workflow.watch': z.object({ run: runIdSchema }).strict(),
  'audit.list': z.object({ sandbox: nameSchema, follow: z.boolean().default(false) }).strict(),
  'trace.subscribe': z
    .object({
      sandbox: nameSchema,
      /** keep streaming until the sandbox ends (else: what is recorded so far, then end) */
      follow: z.boolean().default(false),
      /** start with what was recorded before the subscription */
      replay: z.boolean().default(true),
      /** only these syscalls (names or families); the sandbox's own filter already applies */
      syscalls: syscallNamesSchema.optional(),
      /** events: decoded objects; records: the tracer's records, base64 (docs/tracer-protocol.md), for bulk clients */
      format: z.enum(['events', 'records']).default('events'),
    })
    .strict(),
  'trace.export': z
    .object({
      /** a sandbox name, or a run id (every traced step of the run) */
      target: z.union([runIdSchema, nameSchema]),
      format: z.literal('chrome').default('chrome'),
    })
    .strict(),
  'trace.list': z.object({ run: runIdSchema.optional() }).strict(),
  'trace.status': z.object({}).strict(),
  'observe.watch': z.object({ sandbox: nameSchema.optional(), resources: z.boolean().default(true) }).strict(),
  'observe.anomalies': z.object({ sandbox: nameSchema.optional() }).strict(),
  'approvals.list': z.object({}).strict(),
  'approvals.watch': z.object({}).strict(),
  'approvals.decide': z
    .object({ id: z.string().regex(/^a[0-9]{1,12}$/, 'an approval id looks like a12 (see `ai-sandbox approvals`)'), allow: z.boolean(), always: z.boolean().default(false) })
    .strict(),
} as const;

export type OperationName = keyof typeof operations;
export const OPERATION_NAMES = Object.keys(operations) as OperationName[];
export type Params<O extends OperationName> = z.infer<(typeof operations)[O]>;
export type ParamsInput<O extends OperationName> = z.input<(typeof operations)[O]>;

export interface Results {
  hello: { protocol: number; helperVersion: string; capabilities: string[]; instance: string };
  'sandbox.create': { name: string; pid: number; startMs: number; stream: string | null };
  'sandbox.list': { sandboxes: SandboxInfo[] };
  'sandbox.inspect': SandboxInfo;
  'sandbox.stats': SandboxStats;
  'sandbox.wait': SandboxInfo;
  'sandbox.stop': SandboxInfo;
  'sandbox.remove': Record<string, never>;
  'sandbox.logs': { stream: string };
  'sandbox.exec': { exec: string; pid: number; stream: string };
  'io.write': Record<string, never>;
  'io.resize': Record<string, never>;
  'stream.cancel': Record<string, never>;
  'snapshot.checkpoint': SnapshotInfo;
  'snapshot.list': { snapshots: SnapshotInfo[] };
  'snapshot.restore': { name: string; pid: number; stream: string | null };
  'snapshot.fork': { names: string[] };
  'snapshot.remove': Record<string, never>;
  'snapshot.diff': SnapshotDiffResult;
  'workflow.start': RunState;
  'workflow.get': RunState;
  'workflow.list': { runs: RunState[] };
  'workflow.cancel': Record<string, never>;
  'workflow.replay': RunState;
  'workflow.watch': { stream: string };
  'audit.list': { events: AuditEvent[]; droppedPackets: number | null; stream: string | null };
  'trace.subscribe': { stream: string; live: boolean; wallOffsetNs: string };
  'trace.export': { stream: string; sandboxes: string[] };
  'trace.list': { traces: TraceSummary[] };
  'trace.status': TraceStatus;
  'observe.watch': { stream: string };
  'observe.anomalies': { anomalies: import('../observe/types.js').Anomaly[] };
  'approvals.list': { approvals: ApprovalInfo[] };
  'approvals.watch': { stream: string };
  'approvals.decide': ApprovalInfo;
}

/** One syscall waiting for (or given) a person's decision. */
export interface ApprovalInfo {
  id: string;
  sandbox: string;
  pid: number;
  syscall: string;
  nr: number;
  /** raw arguments, hex */
  args: string[];
  /** connect/bind: the address, as read when the call was made (display only: see docs/adr/0008) */
  addr?: import('../trace/meta.js').TraceAddr | undefined;
  requestedAt: string;
  status: 'pending' | 'allowed' | 'denied' | 'timed-out' | 'gone';
  /** who settled it: a person, an always-rule, the timeout, or the process went away */
  by?: 'user' | 'rule' | 'timeout' | 'gone' | undefined;
  /** µs from the kernel's notification to the supervisor's answer */
  roundTripUs?: number | undefined;
}

/** A stored trace (one sandbox's): what `trace.list` shows. */
export interface TraceSummary extends Omit<TraceMeta, 'wallOffsetNs' | 'cgid'> {
  live: boolean;
  records: number;
  bytes: number;
}

export interface TraceStatus {
  /** this host can trace (tp_btf programs load and attach); otherwise `reason` says why */
  supported: boolean;
  reason: string | null;
  /** the BPF programs are attached now (only while a traced sandbox runs) */
  attached: boolean;
  traced: string[];
  tracerPid: number | null;
  /** as the tracer measured them: the last attach (BPF links created) and the last sandbox add (map update, plus the attach when it was the first) */
  lastAttachMs: number | null;
  lastAddMs: number | null;
}

/** A batch of one sandbox's syscalls on a trace stream (kind 'trace'). */
export interface TraceBatch {
  sandbox: string;
  count: number;
  events?: TraceEvent[];
  /** format 'records': base64 of the tracer's records */
  records?: string;
}

/** What lists and the CLI show of a snapshot. */
export interface SnapshotInfo {
  id: string;
  sandbox: string;
  parent: string | null;
  createdAt: string;
  label: string | null;
  sizeBytes: number;
  memoryBytes: number;
  processes: number;
}

export interface SnapshotDiffResult {
  from: string;
  to: string;
  files: Array<{ path: string; kind: 'added' | 'changed' | 'removed'; what?: string[]; sizeBefore?: number; sizeAfter?: number }>;
  processes: {
    started: Array<{ pid: number; ppid: number; comm: string; cmdline: string }>;
    ended: Array<{ pid: number; ppid: number; comm: string; cmdline: string }>;
  };
  memory: { beforeBytes: number; afterBytes: number; deltaBytes: number };
}

/** Envelope of everything a client sends. */
export const requestEnvelopeSchema = z
  .object({
    type: z.literal('request'),
    id: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    op: z.string().max(100),
    params: z.unknown().optional(),
  })
  .strict();
export const ackEnvelopeSchema = z
  .object({ type: z.literal('ack'), stream: z.string().max(64), seq: z.number().int().min(0) })
  .strict();
export const clientMessageSchema = z.discriminatedUnion('type', [requestEnvelopeSchema, ackEnvelopeSchema]);

export type StreamKind = 'stdout' | 'stderr' | 'event' | 'trace';
/** Stream frames: output bytes are base64 in `data`; events carry `event`. */
export interface StreamFrame {
  type: 'stream';
  stream: string;
  seq: number;
  kind: StreamKind;
  data?: string;
  event?: StreamEvent;
  trace?: TraceBatch;
}
export type StreamEvent =
  | { type: 'exit'; report: ExitReport }
  | { type: 'dropped'; frames: number; bytes: number }
  | { type: 'workflow'; event: RunEvent }
  | { type: 'audit'; event: AuditEvent }
  /** a trace stream's never-silent accounting: running totals, every second and at the end */
  | { type: 'trace-counters'; sandbox: string; counters: TraceCounters & { delivered: number; streamDropped: number } }
  /** an approval was requested or settled */
  | { type: 'approval'; approval: ApprovalInfo }
  /** a sandbox's cgroup sample (every second while it runs) */
  | { type: 'resources'; sample: import('../observe/types.js').ResourceSample }
  /** a rule fired: the event names it */
  | { type: 'anomaly'; anomaly: import('../observe/types.js').Anomaly }
  | { type: 'end' };

export type ResponseFrame =
  | { type: 'response'; id: number | null; ok: true; result: unknown }
  | { type: 'response'; id: number | null; ok: false; error: import('../errors/app-error.js').ErrorShape };

export function isOperationName(op: string): op is OperationName {
  return Object.prototype.hasOwnProperty.call(operations, op);
}
