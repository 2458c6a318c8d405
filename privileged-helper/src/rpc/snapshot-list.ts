import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export function snapshotList(ctx: RpcContext, p: Params<'snapshot.list'>): Results['snapshot.list'] {
  return { snapshots: ctx.snapshots.list(p.sandbox) };
}
