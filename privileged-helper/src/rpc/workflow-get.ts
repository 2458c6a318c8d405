import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export function workflowGet(ctx: RpcContext, p: Params<'workflow.get'>): Results['workflow.get'] {
  return ctx.workflows.get(p.run);
}
