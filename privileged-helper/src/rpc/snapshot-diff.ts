import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export function snapshotDiff(ctx: RpcContext, p: Params<'snapshot.diff'>): Results['snapshot.diff'] {
  return ctx.snapshots.diff(p.from, p.to);
}
