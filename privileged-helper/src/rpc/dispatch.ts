/**
 * The closed set of operations, dispatched by an exhaustive switch: adding an operation to the schema
 * without a handler here is a compile error.
 */
import { operations, type OperationName, type Params } from '../protocol/schema.js';
import type { RpcContext } from './context.js';
import { auditList } from './audit-list.js';
import { hello } from './hello.js';
import { ioResize } from './io-resize.js';
import { ioWrite } from './io-write.js';
import { sandboxCreate } from './sandbox-create.js';
import { sandboxExec } from './sandbox-exec.js';
import { sandboxInspect } from './sandbox-inspect.js';
import { sandboxList } from './sandbox-list.js';
import { sandboxLogs } from './sandbox-logs.js';
import { sandboxRemove } from './sandbox-remove.js';
import { sandboxStats } from './sandbox-stats.js';
import { sandboxStop } from './sandbox-stop.js';
import { sandboxWait } from './sandbox-wait.js';
import { snapshotCheckpoint } from './snapshot-checkpoint.js';
import { snapshotDiff } from './snapshot-diff.js';
import { snapshotFork } from './snapshot-fork.js';
import { snapshotList } from './snapshot-list.js';
import { snapshotRemove } from './snapshot-remove.js';
import { snapshotRestore } from './snapshot-restore.js';
import { workflowCancel } from './workflow-cancel.js';
import { workflowGet } from './workflow-get.js';
import { workflowList } from './workflow-list.js';
import { workflowReplay } from './workflow-replay.js';
import { workflowStart } from './workflow-start.js';
import { workflowWatch } from './workflow-watch.js';
import { traceExport } from './trace-export.js';
import { approvalsDecide } from './approvals-decide.js';
import { observeAnomalies } from './observe-anomalies.js';
import { observeWatch } from './observe-watch.js';
import { approvalsList } from './approvals-list.js';
import { approvalsWatch } from './approvals-watch.js';
import { traceList } from './trace-list.js';
import { traceStatus } from './trace-status.js';
import { traceSubscribe } from './trace-subscribe.js';

export function parseParams<O extends OperationName>(op: O, raw: unknown) {
  return operations[op].safeParse(raw ?? {});
}

export async function dispatch(ctx: RpcContext, op: OperationName, params: unknown, cancelStream: (id: string) => void): Promise<unknown> {
  switch (op) {
    case 'hello': // answered synchronously by the connection; here for exhaustiveness
      return hello(ctx, params as Params<'hello'>);
    case 'sandbox.create':
      return sandboxCreate(ctx, params as Params<'sandbox.create'>);
    case 'sandbox.list':
      return sandboxList(ctx, params as Params<'sandbox.list'>);
    case 'sandbox.inspect':
      return sandboxInspect(ctx, params as Params<'sandbox.inspect'>);
    case 'sandbox.stats':
      return sandboxStats(ctx, params as Params<'sandbox.stats'>);
    case 'sandbox.wait':
      return sandboxWait(ctx, params as Params<'sandbox.wait'>);
    case 'sandbox.stop':
      return sandboxStop(ctx, params as Params<'sandbox.stop'>);
    case 'sandbox.remove':
      return sandboxRemove(ctx, params as Params<'sandbox.remove'>);
    case 'sandbox.logs':
      return sandboxLogs(ctx, params as Params<'sandbox.logs'>);
    case 'sandbox.exec':
      return sandboxExec(ctx, params as Params<'sandbox.exec'>);
    case 'io.write':
      return ioWrite(ctx, params as Params<'io.write'>);
    case 'io.resize':
      return ioResize(ctx, params as Params<'io.resize'>);
    case 'stream.cancel':
      cancelStream((params as Params<'stream.cancel'>).stream);
      return {};
    case 'snapshot.checkpoint':
      return snapshotCheckpoint(ctx, params as Params<'snapshot.checkpoint'>);
    case 'snapshot.list':
      return snapshotList(ctx, params as Params<'snapshot.list'>);
    case 'snapshot.restore':
      return snapshotRestore(ctx, params as Params<'snapshot.restore'>);
    case 'snapshot.fork':
      return snapshotFork(ctx, params as Params<'snapshot.fork'>);
    case 'snapshot.remove':
      return snapshotRemove(ctx, params as Params<'snapshot.remove'>);
    case 'snapshot.diff':
      return snapshotDiff(ctx, params as Params<'snapshot.diff'>);
    case 'workflow.start':
      return workflowStart(ctx, params as Params<'workflow.start'>);
    case 'workflow.get':
      return workflowGet(ctx, params as Params<'workflow.get'>);
    case 'workflow.list':
      return workflowList(ctx, params as Params<'workflow.list'>);
    case 'workflow.cancel':
      return workflowCancel(ctx, params as Params<'workflow.cancel'>);
    case 'workflow.replay':
      return workflowReplay(ctx, params as Params<'workflow.replay'>);
    case 'workflow.watch':
      return workflowWatch(ctx, params as Params<'workflow.watch'>);
    case 'audit.list':
      return auditList(ctx, params as Params<'audit.list'>);
    case 'trace.subscribe':
      return traceSubscribe(ctx, params as Params<'trace.subscribe'>);
    case 'trace.export':
      return traceExport(ctx, params as Params<'trace.export'>);
    case 'trace.list':
      return traceList(ctx, params as Params<'trace.list'>);
    case 'trace.status':
      return traceStatus(ctx, params as Params<'trace.status'>);
    case 'observe.watch':
      return observeWatch(ctx, params as Params<'observe.watch'>);
    case 'observe.anomalies':
      return observeAnomalies(ctx, params as Params<'observe.anomalies'>);
    case 'approvals.list':
      return approvalsList(ctx, params as Params<'approvals.list'>);
    case 'approvals.watch':
      return approvalsWatch(ctx, params as Params<'approvals.watch'>);
    case 'approvals.decide':
      return approvalsDecide(ctx, params as Params<'approvals.decide'>);
    default: {
      const never: never = op;
      throw new Error(`unhandled operation ${String(never)}`);
    }
  }
}
