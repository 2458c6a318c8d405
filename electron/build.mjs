// Bundles the main process (ESM, Node) and the sandboxed preload (one CommonJS file: a sandboxed
// preload cannot load modules) into electron/dist/. The renderer is built by vite (npm run build:ui).
import { build } from 'esbuild';

const common = { bundle: true, platform: 'node', target: 'node22', sourcemap: true, logLevel: 'warning' };
await build({ ...common, entryPoints: ['electron/main/main.ts'], outfile: 'electron/dist/main/main.js', format: 'esm', external: ['electron', 'better-sqlite3'], banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" } });
await build({ ...common, entryPoints: ['electron/preload/preload.ts'], outfile: 'electron/dist/preload/preload.cjs', format: 'cjs', external: ['electron'] });
console.log('built electron/dist/main/main.js and electron/dist/preload/preload.cjs');
