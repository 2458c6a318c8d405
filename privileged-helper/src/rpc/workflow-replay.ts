import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export function workflowReplay(ctx: RpcContext, p: Params<'workflow.replay'>): Results['workflow.replay'] {
  return ctx.workflows.replay(p.run, p.from, p.env);
}
