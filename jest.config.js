/** Jest: TypeScript through SWC; one real Temporal dev server for the whole run (test/global-setup.ts). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  // Two cores: two test files at a time, each with its own workers on the shared server.
  maxWorkers: 2,
  testTimeout: 60_000,
};
