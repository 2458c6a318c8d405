import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export function snapshotRemove(ctx: RpcContext, p: Params<'snapshot.remove'>): Results['snapshot.remove'] {
  ctx.snapshots.remove(p.snapshot);
  return {};
}
