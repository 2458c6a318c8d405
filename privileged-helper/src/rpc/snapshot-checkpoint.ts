import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export function snapshotCheckpoint(ctx: RpcContext, p: Params<'snapshot.checkpoint'>): Promise<Results['snapshot.checkpoint']> {
  return ctx.snapshots.checkpoint(p.name, { leaveRunning: p.leaveRunning, label: p.label });
}
