import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export function workflowList(ctx: RpcContext, _p: Params<'workflow.list'>): Results['workflow.list'] {
  return { runs: ctx.workflows.list() };
}
