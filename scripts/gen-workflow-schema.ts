// Regenerates docs/workflow.schema.json from the zod schema: npx tsx scripts/gen-workflow-schema.ts
// (a unit test fails while the committed file is out of date).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { workflowJsonSchemaText } from '../privileged-helper/src/workflow/json-schema.js';

const out = fileURLToPath(new URL('../docs/workflow.schema.json', import.meta.url));
writeFileSync(out, workflowJsonSchemaText());
process.stdout.write(`wrote ${out}\n`);
