import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

/** Resource samples (every second) and anomaly events, of one sandbox or all; recent anomalies first. */
export function observeWatch(ctx: RpcContext, p: Params<'observe.watch'>): Results['observe.watch'] {
  if (p.sandbox !== undefined) ctx.manager.get(p.sandbox);
  const stream = ctx.conn.openStream();
  setImmediate(() => ctx.observe.watch(stream, p.sandbox, p.resources));
  ctx.conn.onClose(() => ctx.observe.unwatch(stream));
  return { stream: stream.id };
}
