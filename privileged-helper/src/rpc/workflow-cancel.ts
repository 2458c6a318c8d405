import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export async function workflowCancel(ctx: RpcContext, p: Params<'workflow.cancel'>): Promise<Results['workflow.cancel']> {
  await ctx.workflows.cancel(p.run);
  return {};
}
