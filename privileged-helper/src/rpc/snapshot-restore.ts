import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export async function snapshotRestore(ctx: RpcContext, p: Params<'snapshot.restore'>): Promise<Results['snapshot.restore']> {
  const stream = p.attach ? ctx.conn.openStream() : undefined;
  const { sandbox, pid } = await ctx.snapshots.restore(p.snapshot, { name: p.name, autoRemove: false, sink: stream, requestNs: ctx.receivedNs });
  return { name: sandbox.name, pid, stream: stream?.id ?? null };
}
