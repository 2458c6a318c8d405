import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export function traceStatus(ctx: RpcContext, _p: Params<'trace.status'>): Results['trace.status'] {
  return ctx.traces.status();
}
