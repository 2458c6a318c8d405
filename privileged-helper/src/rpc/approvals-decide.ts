import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

/** Allow or deny a waiting syscall, once or always (for that syscall in that sandbox). */
export function approvalsDecide(ctx: RpcContext, p: Params<'approvals.decide'>): Promise<Results['approvals.decide']> {
  return ctx.approvals.decide(p);
}
