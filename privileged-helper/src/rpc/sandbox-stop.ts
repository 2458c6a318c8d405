import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export function sandboxStop(ctx: RpcContext, p: Params<'sandbox.stop'>): Promise<Results['sandbox.stop']> {
  return ctx.manager.stop(p.name, p.graceMs);
}
