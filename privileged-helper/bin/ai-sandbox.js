#!/usr/bin/env node
// Thin entry point: the CLI is compiled to dist/ by `npm run build` (the setup script runs it).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write('ai-sandbox: not built yet: run `npm run setup` (or `npm test` / `npm start`) in the repository first\n');
  process.exit(2);
}
const { runCli } = await import(main);
process.exitCode = await runCli(process.argv.slice(2));
