/** The JSON Schema editors use for completion and checking (docs/workflow.schema.json), from the zod schema. */
import { z } from 'zod';
import { workflowSchema } from './schema.js';

export function workflowJsonSchema(): Record<string, unknown> {
  // io: 'input' describes what a user writes (2G, 30s), not the bytes and milliseconds it becomes
  return z.toJSONSchema(workflowSchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
}

export function workflowJsonSchemaText(): string {
  return `${JSON.stringify(workflowJsonSchema(), null, 2)}\n`;
}
