import { AppError } from '../errors/app-error.js';
import { PROTOCOL_MIN, PROTOCOL_VERSION, type Params, type Results } from '../protocol/schema.js';
import type { RpcContext } from './context.js';

export function hello(ctx: RpcContext, p: Params<'hello'>): Results['hello'] {
  const [min, max] = p.protocol;
  if (max < PROTOCOL_MIN || min > PROTOCOL_VERSION) {
    throw new AppError('UNSUPPORTED_PROTOCOL', `this helper speaks protocol ${PROTOCOL_MIN}..${PROTOCOL_VERSION}, the client ${min}..${max}: update the older of the two`);
  }
  return { protocol: Math.min(max, PROTOCOL_VERSION), helperVersion: ctx.helper.version, capabilities: ctx.helper.capabilities, instance: ctx.helper.instance };
}
