import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export async function snapshotFork(ctx: RpcContext, p: Params<'snapshot.fork'>): Promise<Results['snapshot.fork']> {
  return { names: await ctx.snapshots.fork(p.snapshot, p.count, p.prefix ?? p.snapshot) };
}
