import path from 'node:path';
import { AppError } from '../errors/app-error.js';
import type { Params, Results } from '../protocol/schema.js';
import { formatError } from '../workflow/errors.js';
import { parseWorkflow } from '../workflow/load.js';
import type { RpcContext } from './context.js';

export function workflowStart(ctx: RpcContext, p: Params<'workflow.start'>): Results['workflow.start'] {
  const loaded = parseWorkflow(p.text, p.file, { baseDir: path.dirname(p.file) });
  if (!loaded.ok) {
    throw new AppError('INVALID_ARGUMENT', `${p.file} is not a valid workflow:\n${loaded.errors.map(formatError).join('\n')}`, { details: { errors: loaded.errors } });
  }
  return ctx.workflows.start(loaded.plan);
}
