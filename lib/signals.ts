/** How a long-running entry point (a server) ends: on SIGINT or SIGTERM, after closing what it runs. */

/**
 * Resolves once SIGINT or SIGTERM has arrived and `close()` has finished, with the exit code: 0, or 1
 * when closing failed. Says on stdout which signal came (with `detail()`, e.g. counters, if given).
 */
export function closeOnSignal(
  name: string,
  close: () => Promise<void>,
  detail?: () => string,
): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      console.log(`\n${name}: ${signal} received, shutting down${detail ? ` (${detail()})` : ''}`);
      close().then(
        () => resolve(0),
        (err: unknown) => {
          console.error(`${name}: error while closing: ${err instanceof Error ? err.message : String(err)}`);
          resolve(1);
        },
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
