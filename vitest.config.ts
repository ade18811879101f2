import { defineConfig } from 'vitest/config';

// One Postgres for the whole run (embedded unless DATABASE_URL is set); each test file clones
// its own database from a migrated template (see packages/db/src/testing).
export default defineConfig({
  test: {
    include: [
      'apps/*/src/**/*.test.ts',
      'packages/*/src/**/*.test.ts',
      'test/**/*.test.ts',
      'bench/**/*.test.ts',
    ],
    exclude: ['**/node_modules/**', 'apps/web/**', 'test/e2e/**', 'bench/.peers/**'],
    globalSetup: ['packages/db/src/testing/global-setup.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
  },
});
