import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export function ioResize(ctx: RpcContext, p: Params<'io.resize'>): Results['io.resize'] {
  ctx.manager.resize(p.target, p.rows, p.cols);
  return {};
}
