import { AppError } from '../errors/app-error.js';
import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

/**
 * A sandbox's proxy decisions (from the store when the daemon has one, so they outlive the sandbox),
 * its dropped-packet count while it runs, and with `follow` new decisions as stream events until it stops.
 */
export async function auditList(ctx: RpcContext, p: Params<'audit.list'>): Promise<Results['audit.list']> {
  const live = ctx.manager.has(p.sandbox) ? ctx.manager.get(p.sandbox) : null;
  const events = ctx.auditStore ? ctx.auditStore.list(p.sandbox) : ctx.audit.events(p.sandbox);
  if (!live && events.length === 0) {
    throw new AppError('NOT_FOUND', `no sandbox named "${p.sandbox}" and no audit events for one: \`ai-sandbox ps\` lists sandboxes`, { details: { name: p.sandbox } });
  }
  const address = live?.network?.info.address;
  const droppedPackets = address ? await ctx.network.droppedPackets(address) : null;
  if (!p.follow || !live || live.status === 'stopped') return { events, droppedPackets, stream: null };
  const stream = ctx.conn.openStream();
  const off = ctx.audit.follow(p.sandbox, (event) => stream.event({ type: 'audit', event }));
  void ctx.manager.wait(p.sandbox).then(() => {
    off();
    stream.end();
  });
  ctx.conn.onClose(off);
  return { events, droppedPackets, stream: stream.id };
}
