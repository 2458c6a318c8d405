import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export function sandboxLogs(ctx: RpcContext, p: Params<'sandbox.logs'>): Results['sandbox.logs'] {
  ctx.manager.get(p.name);
  const stream = ctx.conn.openStream();
  // The replay goes out after the response, so the client knows the stream id first.
  setImmediate(() => ctx.manager.logs(p.name, p.follow, stream));
  return { stream: stream.id };
}
