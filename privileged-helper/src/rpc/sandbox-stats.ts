import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export function sandboxStats(ctx: RpcContext, p: Params<'sandbox.stats'>): Results['sandbox.stats'] {
  return ctx.manager.stats(p.name);
}
