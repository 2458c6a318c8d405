// Layer rules as lint errors (after VS Code's code-layering): the renderer never reaches Node or
// Electron; the helper never imports Electron; shared contract code imports neither.
import tseslint from 'typescript-eslint';

const nodeBuiltins = ['node:*', 'fs', 'path', 'child_process', 'net', 'os', 'crypto', 'stream', 'http', 'https'];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'privileged-helper/native/**', 'e2e/artifacts/**', '.test-results/**', 'renderer/dist/**', 'test-results/**', 'playwright-report/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['renderer/**/*.{ts,tsx}'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['electron', 'electron/*', ...nodeBuiltins], message: 'renderer/ runs in a browser sandbox: no Node or Electron imports; go through the preload API' }] }],
    },
  },
  {
    // tests beside the renderer's code run in Node (vitest), not in the page
    files: ['renderer/**/*.test.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    // the preload runs in a sandboxed renderer process: only electron's contextBridge/ipcRenderer and the
    // shared contract, no Node built-ins
    files: ['electron/preload/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: nodeBuiltins, message: 'the preload is sandboxed: no Node built-ins; use the shared contract and ipcRenderer' }] }],
    },
  },
  {
    files: ['privileged-helper/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['electron', 'electron/*'], message: 'the helper is a root daemon: it never imports Electron' }] }],
    },
  },
  {
    files: ['privileged-helper/src/protocol/schema.ts', 'privileged-helper/src/errors/**/*.ts', 'privileged-helper/src/ui/contract.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['electron', 'electron/*', ...nodeBuiltins], message: 'shared contract code must run in the renderer too: no Node or Electron imports' }] }],
    },
  },
);
