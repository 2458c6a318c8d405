import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export function sandboxInspect(ctx: RpcContext, p: Params<'sandbox.inspect'>): Results['sandbox.inspect'] {
  return ctx.manager.get(p.name).info();
}
