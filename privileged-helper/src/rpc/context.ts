import type { SandboxManager } from '../sandbox/manager.js';
import type { SnapshotService } from '../snapshot/service.js';
import type { WorkflowEngine } from '../workflow/engine.js';
import type { ConnectionStream } from '../server/stream.js';
import type { AuditLog } from '../network/audit.js';
import type { NetworkService } from '../network/network.js';
import type { AuditStore } from '../store/audit.js';
import type { TraceService } from '../trace/service.js';
import type { ApprovalService } from '../approvals/service.js';
import type { ObserveService } from '../observe/service.js';

/** The helper's services an operation can reach. */
export interface Services {
  manager: SandboxManager;
  snapshots: SnapshotService;
  workflows: WorkflowEngine;
  network: NetworkService;
  audit: AuditLog;
  /** the daemon's audit history in SQLite (null in an embedded helper: in memory only) */
  auditStore: AuditStore | null;
  traces: TraceService;
  approvals: ApprovalService;
  observe: ObserveService;
}

/** What an operation handler may use: the services, and its own connection's streams. */
export interface RpcContext extends Services {
  helper: { version: string; instance: string; capabilities: string[] };
  /** CLOCK_MONOTONIC ns when the request's frame arrived */
  receivedNs: bigint;
  conn: {
    openStream(): ConnectionStream;
    /** run when the client disconnects (e.g. stop a sandbox that `run` attached to) */
    onClose(fn: () => void): void;
  };
}
