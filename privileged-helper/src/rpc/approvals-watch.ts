import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

/** A stream of `approval` events: every pending one first, then each request and settlement. */
export function approvalsWatch(ctx: RpcContext, _p: Params<'approvals.watch'>): Results['approvals.watch'] {
  const stream = ctx.conn.openStream();
  setImmediate(() => ctx.approvals.watch(stream));
  ctx.conn.onClose(() => ctx.approvals.unwatch(stream));
  return { stream: stream.id };
}
