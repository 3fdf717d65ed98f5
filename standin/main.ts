/**
 * `npm run stand-in`: runs the stand-in model on its own, for the offline demo.
 *
 *   npm run stand-in -- [--port 8787] [--latency-ms 0]
 *
 * Exit codes: 0 after SIGINT/SIGTERM, 1 when the server cannot start (e.g. port in use),
 * 2 on a bad command line.
 */
import { command, intOption, runMain } from '../lib/cli';
import { closeOnSignal } from '../lib/signals';
import { startStandIn, type StandIn } from './server';

const USAGE = `usage: npm run stand-in -- [--port N] [--latency-ms N]

  --port N         port to listen on, on 127.0.0.1 (default 8787; 0 picks a free one)
  --latency-ms N   simulated latency of each reply, in milliseconds (default 0)`;

export const main = command(
  {
    name: 'stand-in',
    usage: USAGE,
    options: { port: { type: 'string' }, 'latency-ms': { type: 'string' } },
    unknownOption: (option) => `unknown flag "${option}"`,
  },
  async ({ values }) => {
    const port = intOption('port', values.port, 0, 65535) ?? 8787;
    const latencyMs = intOption('latency-ms', values['latency-ms'], 0, 600_000) ?? 0;
    let standIn: StandIn;
    try {
      standIn = await startStandIn({ port, latencyMs });
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      console.error(`stand-in: cannot listen on 127.0.0.1:${port}: ${detail}`);
      return 1;
    }
    console.log(`Baton stand-in model (offline, not a real model) listening on ${standIn.url}`);
    if (latencyMs > 0) console.log(`Simulated latency: ${latencyMs} ms per reply`);
    console.log('Point a worker at it with:');
    console.log(`  ANTHROPIC_BASE_URL=${standIn.url} ANTHROPIC_API_KEY=offline-stand-in npm run worker`);
    console.log('Press Ctrl+C to stop.');
    return closeOnSignal('stand-in', () => standIn.close());
  },
);

if (require.main === module) runMain(main);
