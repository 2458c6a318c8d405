import type { Params, Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

/** The last anomaly events (of one sandbox, or all), oldest first. */
export function observeAnomalies(ctx: RpcContext, p: Params<'observe.anomalies'>): Results['observe.anomalies'] {
  return { anomalies: ctx.observe.anomalies(p.sandbox) };
}
