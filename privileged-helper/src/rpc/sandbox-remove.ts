import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export async function sandboxRemove(ctx: RpcContext, p: Params<'sandbox.remove'>): Promise<Results['sandbox.remove']> {
  await ctx.manager.remove(p.name, p.force);
  return {};
}
