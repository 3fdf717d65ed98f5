/**
 * What an entry point has opened (servers, connections, workers), closed in the reverse order of
 * opening, each once, when it is done. Closing goes on past a failure: the rest still gets closed.
 */
export class Cleanup {
  private readonly steps: (() => unknown)[] = [];

  /** Adds a step; steps run last-added first. */
  defer(step: () => unknown): void {
    this.steps.unshift(step);
  }

  /** Runs every step added so far, ignoring their failures. */
  async run(): Promise<void> {
    for (const step of this.steps.splice(0))
      await Promise.resolve()
        .then(step)
        .catch(() => undefined);
  }
}
