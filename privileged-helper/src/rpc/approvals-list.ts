import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

/** Approvals waiting now, and the last ones settled. */
export function approvalsList(ctx: RpcContext, _p: Params<'approvals.list'>): Results['approvals.list'] {
  return { approvals: ctx.approvals.list() };
}
