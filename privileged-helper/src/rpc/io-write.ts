import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export function ioWrite(ctx: RpcContext, p: Params<'io.write'>): Results['io.write'] {
  ctx.manager.write(p.target, Buffer.from(p.data, 'base64'), p.eof);
  return {};
}
