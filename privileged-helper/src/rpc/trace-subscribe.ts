import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

/** A sandbox's syscalls as a trace stream: what was recorded, then (follow) what comes, then counters. */
export async function traceSubscribe(ctx: RpcContext, p: Params<'trace.subscribe'>): Promise<Results['trace.subscribe']> {
  const stream = ctx.conn.openStream();
  try {
    const r = await ctx.traces.subscribe(p, stream);
    ctx.conn.onClose(() => ctx.traces.unsubscribe(stream));
    return r;
  } catch (err) {
    stream.close();
    throw err;
  }
}
