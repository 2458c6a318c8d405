import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export async function sandboxExec(ctx: RpcContext, p: Params<'sandbox.exec'>): Promise<Results['sandbox.exec']> {
  const stream = ctx.conn.openStream();
  const { exec, pid } = await ctx.manager.exec(p, stream);
  ctx.conn.onClose(() => {
    try {
      ctx.manager.write({ exec }, Buffer.alloc(0), true);
    } catch {
      // already finished
    }
  });
  return { exec, pid, stream: stream.id };
}
