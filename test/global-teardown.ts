/** Stops the dev server started by global-setup.ts. */
export default async function globalTeardown(): Promise<void> {
  await globalThis.__BATON_TEST_SERVER__?.stop();
}
