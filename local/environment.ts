/**
 * The zero-setup local environment of `npm start`: a Temporal server (the one at TEMPORAL_ADDRESS
 * if it answers, else the dev server, its state kept in .baton/dev-server.sqlite and its own output
 * in .baton/dev-server.log, away from the live view) and a model (the
 * Anthropic API with ANTHROPIC_API_KEY, else the offline stand-in, standin/server.ts), and a key to
 * sign reports with (BATON_PUBLISHER_KEY*, else one made once in .baton/publisher.key).
 */
import path from 'node:path';
import type { ActivityOptions } from '../activities/options';
import { PROJECT_ROOT } from '../activities/options';
import { localPublisherKey } from '../activities/signing';
import { SEARCH_ATTRIBUTES } from '../contract/messages';
import { Cleanup } from '../lib/cleanup';
import { startStandIn } from '../standin/server';
import type { TemporalOptions } from '../workers/options';
import { freePort, portIsFree, startDevServer, temporalAnswers } from './temporal';

/** The key the worker sends to the offline stand-in (which accepts any); kept out of history like a real one. */
export const OFFLINE_STAND_IN_KEY = 'offline-stand-in';

/** The longest simulated latency of the stand-in's replies: ten minutes. */
const MAX_STAND_IN_LATENCY_MS = 600_000;

/**
 * BATON_STANDIN_LATENCY_MS: the simulated latency of each of the stand-in's replies, spread over a
 * streamed reply's events, so a model call is seen in flight (its live words); 0 when unset.
 * @throws Error naming the variable when it is not a whole number of milliseconds in range
 */
export function standInLatencyFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const value = env.BATON_STANDIN_LATENCY_MS?.trim();
  if (!value) return 0;
  const ms = /^\d{1,9}$/.test(value) ? Number(value) : NaN;
  if (!(ms <= MAX_STAND_IN_LATENCY_MS))
    throw new Error(
      `BATON_STANDIN_LATENCY_MS must be a whole number of milliseconds from 0 to ${MAX_STAND_IN_LATENCY_MS}, got "${value.slice(0, 40)}"`,
    );
  return ms;
}

/** The Temporal Web UI's usual port; another free one when it is taken. */
const UI_PORT = 8233;

export interface LocalEnvironment {
  /** The options to connect with: the dev server's address when one was started. */
  temporal: TemporalOptions;
  /** The options for the worker: the stand-in's URL and key when no API key is set. */
  activityOptions: ActivityOptions;
  /** Stops what was started here (the stand-in, the dev server). */
  close(): Promise<void>;
}

export interface LocalEnvironmentOptions {
  temporal: TemporalOptions;
  activityOptions: ActivityOptions;
  /** Whether TEMPORAL_ADDRESS was set: a server named there must answer, none is started instead. */
  addressGiven: boolean;
  /** One line per choice made, for the person at the terminal. */
  log: (line: string) => void;
  /** Where the dev server keeps its database and its log; default `.baton/` in the project. */
  stateDir?: string;
}

/**
 * Finds or starts what `npm start` needs. Throws when the server named by TEMPORAL_ADDRESS does not
 * answer, or the dev server does not start (saying why and how to fix it: local/temporal.ts).
 */
export async function startLocalEnvironment(options: LocalEnvironmentOptions): Promise<LocalEnvironment> {
  const { log } = options;
  const temporal = { ...options.temporal };
  const activityOptions = { ...options.activityOptions };
  const cleanup = new Cleanup();
  try {
    if (temporal.tls || (await temporalAnswers(temporal.address))) {
      log(`Temporal: using the server at ${temporal.address}`);
    } else if (options.addressGiven) {
      throw new Error(`no Temporal server answers at TEMPORAL_ADDRESS=${temporal.address}`);
    } else {
      log(`Temporal: nothing answers at ${temporal.address}; starting the dev server`);
      const stateDir = options.stateDir ?? path.join(PROJECT_ROOT, '.baton');
      const server = await startDevServer({
        dbFile: path.join(stateDir, 'dev-server.sqlite'),
        // Its banner and warnings would break into the live view: they go to a file, named in one line.
        logFile: path.join(stateDir, 'dev-server.log'),
        port: Number(temporal.address.split(':')[1]),
        uiPort: (await portIsFree(UI_PORT)) ? UI_PORT : await freePort(),
        namespace: temporal.namespace,
        // Registered at start: attributes added to a running server take a few seconds to apply.
        searchAttributes: [...SEARCH_ATTRIBUTES],
        log,
      });
      cleanup.defer(() => server.stop());
      temporal.address = server.address;
      log(`Temporal Web UI: ${server.uiUrl}`);
    }

    if (!activityOptions.apiKey) {
      const latencyMs = standInLatencyFromEnv();
      const standIn = await startStandIn({ latencyMs });
      cleanup.defer(() => standIn.close());
      activityOptions.apiKey = OFFLINE_STAND_IN_KEY;
      activityOptions.baseURL = standIn.url;
      log(
        `Model: no ANTHROPIC_API_KEY, so using the OFFLINE STAND-IN model at ${standIn.url}. Its text is placeholder, not research.`,
      );
      if (latencyMs) log(`Stand-in latency: ${latencyMs} ms a reply (BATON_STANDIN_LATENCY_MS)`);
    } else {
      log(`Model: Anthropic API${activityOptions.baseURL ? ` at ${activityOptions.baseURL}` : ''}`);
    }

    if (!activityOptions.publisherKey) {
      const local = await localPublisherKey(path.join(PROJECT_ROOT, '.baton', 'publisher.key'));
      activityOptions.publisherKey = local.key;
      if (local.created) {
        log(
          `Publisher key: made .baton/publisher.key (git-ignored) to sign this machine's reports; npm run audit accepts them once .baton/publisher.pub is listed in config/publishers.yaml`,
        );
      }
    }
  } catch (err) {
    await cleanup.run();
    throw err;
  }
  return { temporal, activityOptions, close: () => cleanup.run() };
}
