import { defineConfig } from 'vitest/config';

// The chaos suite: `npm run test:chaos`. Scenarios run one file at a time so that timing
// bounds are not measured against other suites competing for the two cores.
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.test.ts'],
    setupFiles: ['./src/runtime/polyfill.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
