import { defineConfig } from 'vitest/config';

// Two suites: fast unit tests beside the code, and root-only integration tests that create real
// sandboxes, mounts and cgroups. Integration tests run one file at a time: they share the machine.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['privileged-helper/src/**/*.test.ts', 'renderer/src/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['privileged-helper/test/integration/**/*.test.ts'],
          environment: 'node',
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
