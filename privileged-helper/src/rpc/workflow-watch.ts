import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

/** Step and run status changes of a run as stream events, starting with the current state. */
export function workflowWatch(ctx: RpcContext, p: Params<'workflow.watch'>): Results['workflow.watch'] {
  const state = ctx.workflows.get(p.run);
  const stream = ctx.conn.openStream();
  setImmediate(() => {
    for (const step of state.steps) stream.event({ type: 'workflow', event: { type: 'step', run: state.id, step: { ...step } } });
    if (state.status !== 'running') {
      stream.event({ type: 'workflow', event: { type: 'run', run: state.id, status: state.status, error: state.error } });
      stream.end();
      return;
    }
    const off = ctx.workflows.subscribe(p.run, (e) => {
      stream.event({ type: 'workflow', event: e });
      if (e.type === 'run') {
        off();
        stream.end();
      }
    });
    ctx.conn.onClose(off);
  });
  return { stream: stream.id };
}
