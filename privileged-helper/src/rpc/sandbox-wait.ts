import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export function sandboxWait(ctx: RpcContext, p: Params<'sandbox.wait'>): Promise<Results['sandbox.wait']> {
  return ctx.manager.wait(p.name);
}
