/**
 * The approval inbox: a small web app on Hono that lists the tasks waiting for a decision (the
 * search-attribute query of `npm run baton -- pending`), shows a task's plan, results, token spend
 * and decision history, and sends decisions through the workflow's `decide` Update, so the
 * workflow's own refusals reach the person as it words them.
 *
 * Who decides comes from the configured identity source (./session.ts, ./auth.ts), never from a form
 * field. Pages are rendered on the server (./routes.ts, ./views.ts); htmx, served by the inbox from
 * its npm package, refreshes the live regions and posts decisions without a page load.
 */
import { serve } from '@hono/node-server';
import type { Client } from '@temporalio/client';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { csrf } from 'hono/csrf';
import { HTTPException } from 'hono/http-exception';
import { secureHeaders } from 'hono/secure-headers';
import type { Stores } from '../activities/store';
import { storesFromEnv } from '../workers/store';
import { DEFAULT_PORT, HOST, type IdentitySource } from './options';
import { usePasskeys } from './passkeys';
import { useRoutes } from './routes';
import { useSessions, type Env } from './session';
import { messagePage } from './views';

export { SESSION_COOKIE } from './session';

export interface StartInboxOptions {
  /** A connected Temporal client (with the data converter from `dataConverterFromEnv`). */
  client: Client;
  /** The workers' store, where drafts are read; default: as the environment names it (workers/store.ts). */
  stores?: Stores;
  identity: IdentitySource;
  /** Port on 127.0.0.1; default {@link DEFAULT_PORT}; 0 picks a free port. */
  port?: number;
  /** Session cookie only over HTTPS. Default false. */
  secureCookie?: boolean;
  /** Display names by approver id (config/approvers.yaml). */
  people?: ReadonlyMap<string, string>;
  /** How often live regions refresh; default 2000 ms. */
  refreshMs?: number;
  /** How long to wait for a task's worker to answer a query or an Update; default 10 s. */
  workerTimeoutMs?: number;
  /** How long a token sign-in lasts; default 12 hours. */
  sessionTtlMs?: number;
  /** One line per sign-in and decision, and warnings; default stderr. */
  log?: (line: string) => void;
}

export interface Inbox {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The assets the pages use, from the npm packages and this folder, kept in memory: no CDN, no build. */
function loadAssets(): Map<string, { body: string; type: string }> {
  const asset = (file: string, type: string) => ({ body: readFileSync(file, 'utf8'), type });
  return new Map([
    ['pico.min.css', asset(require.resolve('@picocss/pico/css/pico.min.css'), 'text/css; charset=utf-8')],
    ['htmx.min.js', asset(require.resolve('htmx.org/dist/htmx.min.js'), 'text/javascript; charset=utf-8')],
    ['inbox.css', asset(path.join(__dirname, 'inbox.css'), 'text/css; charset=utf-8')],
    ['passkey.js', asset(path.join(__dirname, 'passkey.js'), 'text/javascript; charset=utf-8')],
  ]);
}

/** Builds the Hono app; {@link startInbox} serves it. `drain()` waits for requests in progress. */
function createInboxApp(options: StartInboxOptions): { app: Hono<Env>; drain: () => Promise<void> } {
  const log = options.log ?? ((line: string) => console.error(line));
  const assets = loadAssets();
  const app = new Hono<Env>();

  // Requests in progress, so that closing the inbox waits for their Temporal calls to finish.
  const inflight = new Set<Promise<void>>();
  app.use(async (c, next) => {
    const handling = next();
    inflight.add(handling);
    try {
      await handling;
    } finally {
      inflight.delete(handling);
    }
    // Pages name people and tasks: no cache keeps them.
    if (!c.req.path.startsWith('/assets/')) c.res.headers.set('Cache-Control', 'no-store');
  });

  app.onError((err, c) => {
    if (err instanceof HTTPException) {
      const message =
        err.status === 403
          ? 'The request did not come from this inbox’s own pages (cross-site request check), so it was refused.'
          : err.message;
      return c.html(messagePage('Request refused', message), err.status);
    }
    log(`inbox: ${c.req.method} ${c.req.path} failed: ${err.stack ?? err.message}`);
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return c.html(messagePage('Something went wrong', `${err.message}${cause}`, c.get('viewer')), 500);
  });

  // Everything the pages load comes from this server; htmx never evaluates strings (see the htmx-config meta).
  app.use(
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        // Pico draws its icons as data: SVGs.
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        objectSrc: ["'none'"],
      },
      referrerPolicy: 'no-referrer',
    }),
  );
  // Form POSTs must come from this site's pages (Origin or Sec-Fetch-Site), sign-in included.
  app.use(csrf());
  app.use(bodyLimit({ maxSize: 64 * 1024 }));

  app.get('/assets/:name', (c) => {
    const asset = assets.get(c.req.param('name'));
    if (!asset) return c.notFound();
    return c.body(asset.body, 200, { 'Content-Type': asset.type, 'Cache-Control': 'public, max-age=3600' });
  });

  useSessions(app, {
    identity: options.identity,
    people: options.people ?? new Map<string, string>(),
    secureCookie: options.secureCookie ?? false,
    sessionTtlMs: options.sessionTtlMs ?? 12 * 60 * 60 * 1000,
    log,
  });
  const workerTimeoutMs = options.workerTimeoutMs ?? 10_000;
  useRoutes(app, {
    client: options.client,
    stores: options.stores ?? storesFromEnv(),
    refreshMs: options.refreshMs ?? 2000,
    workerTimeoutMs,
    log,
  });
  usePasskeys(app, { client: options.client, workerTimeoutMs, log });

  const drain = async (): Promise<void> => {
    while (inflight.size) await Promise.allSettled([...inflight]);
  };
  return { app, drain };
}

/**
 * Serves the inbox on 127.0.0.1 until `close()`. Refuses to start without a usable identity source
 * (an unreadable or empty tokens file, say), with the reason.
 */
export async function startInbox(options: StartInboxOptions): Promise<Inbox> {
  const { app, drain } = createInboxApp(options);
  const port = options.port ?? DEFAULT_PORT;
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve(
      // Leave Node's global Request/Response alone: the inbox may share its process (tests, tools).
      { fetch: app.fetch, port, hostname: HOST, overrideGlobalObjects: false },
      () => resolve(s),
    ) as Server;
    s.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(`port ${port} on ${HOST} is in use; choose another with --port or BATON_INBOX_PORT`)
          : err,
      ),
    );
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://${HOST}:${actual}`,
    port: actual,
    close: async () => {
      const closed = new Promise<void>((resolve, reject) =>
        server.close((err) => (err ? reject(err) : resolve())),
      );
      // Browsers keep connections alive; they must not hold the shutdown. Requests being handled
      // finish first, so no Temporal call outlives the inbox (and the client its caller closes next).
      server.closeIdleConnections();
      await drain();
      server.closeAllConnections();
      await closed;
    },
  };
}
