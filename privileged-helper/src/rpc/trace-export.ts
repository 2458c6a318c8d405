import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

/** A sandbox's or a run's traces in the Chrome Trace Event Format, as stdout data on a stream (never dropped). */
export function traceExport(ctx: RpcContext, p: Params<'trace.export'>): Results['trace.export'] {
  const { names } = ctx.traces.exportDirs(p.target);
  const stream = ctx.conn.openStream();
  setImmediate(() => {
    ctx.traces.export(p.target, stream).catch((err: unknown) => {
      stream.output(2, Buffer.from(`export failed: ${(err as Error).message}\n`));
      stream.end();
    });
  });
  return { stream: stream.id, sandboxes: names };
}
