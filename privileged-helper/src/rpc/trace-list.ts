import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export function traceList(ctx: RpcContext, p: Params<'trace.list'>): Results['trace.list'] {
  return { traces: ctx.traces.list(p.run) };
}
