import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export async function sandboxCreate(ctx: RpcContext, p: Params<'sandbox.create'>): Promise<Results['sandbox.create']> {
  const stream = p.attach ? ctx.conn.openStream() : undefined;
  const { sandbox, spawned } = await ctx.manager.create(p.spec, { autoRemove: p.autoRemove, sink: stream, requestNs: ctx.receivedNs });
  if (stream) {
    // An attached sandbox belongs to its client: when the client goes, so does the sandbox.
    ctx.conn.onClose(() => {
      if (sandbox.status !== 'stopped') void ctx.manager.remove(sandbox.name, true).catch(() => undefined);
    });
  }
  const startMs = Math.round(Number(spawned.execNs - sandbox.requestNs) / 1e3) / 1e3;
  return { name: sandbox.name, pid: spawned.pid, startMs, stream: stream?.id ?? null };
}
