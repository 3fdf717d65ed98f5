/** Stops the servers started by global-setup.ts. */
export default async function globalTeardown(): Promise<void> {
  await Promise.all([globalThis.__BATON_TEST_SERVER__?.stop(), globalThis.__BATON_TEST_S3__?.stop()]);
}
