import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export function sandboxList(ctx: RpcContext, _p: Params<'sandbox.list'>): Results['sandbox.list'] {
  return { sandboxes: ctx.manager.list() };
}
