/**
 * The approval inbox: a small web app on Hono that lists the tasks waiting for a decision (the
 * search-attribute query of `npm run baton -- pending`), shows a task's plan, results, token spend
 * and decision history, and sends decisions through the workflow's `decide` Update, so the
 * workflow's own refusals reach the person as it words them.
 *
 * Who decides comes from the configured identity source (./auth.ts), never from a form field.
 * Pages are rendered on the server (./views.ts); htmx, served by the inbox from its npm package,
 * refreshes the live regions and posts decisions without a page load.
 */
import { serve } from '@hono/node-server';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { createHash } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Hono, type Context } from 'hono';
import { html } from 'hono/html';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { csrf } from 'hono/csrf';
import { HTTPException } from 'hono/http-exception';
import { secureHeaders } from 'hono/secure-headers';
import { askWorker, decideTask, listPending, type DecisionOutcome } from '../cli/baton';
import {
  BATON_AWAITING,
  BATON_PENDING_GATE,
  BATON_PHASE,
  DECISIONS,
  GATES,
  status as statusQuery,
  type DecideRequest,
  type Decision,
  type Gate,
  type TaskStatus,
} from '../contract/messages';
import { CsrfTokens, hashToken, IDENTITY_PATTERN, safeEqual, SessionStore, TokenStore } from './auth';
import { DEFAULT_PORT, HOST, PROXY_SECRET_HEADER, type IdentitySource } from './options';
import {
  decisionPanel,
  decisionResult,
  FINAL_PHASES,
  clearDecisionResult,
  live,
  messagePage,
  pendingFragment,
  pendingPage,
  pollUrl,
  signInPage,
  taskLive,
  taskPage,
  type Html,
  type PendingRow,
  type TaskView,
  type Viewer,
} from './views';

export interface StartInboxOptions {
  /** A connected Temporal client (with the data converter from `dataConverterFromEnv`). */
  client: Client;
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

/** The session cookie. HttpOnly and SameSite=Strict; Secure when configured. */
export const SESSION_COOKIE = 'baton_inbox_session';

const MAX_CHILD_TASKS = 50;
const MAX_LISTED = 100;
const MAX_DRAFT_BYTES = 512 * 1024;

/** The assets the pages use, from the npm packages and this folder, kept in memory: no CDN, no build. */
function loadAssets(): Map<string, { body: string; type: string }> {
  const asset = (file: string, type: string) => ({ body: readFileSync(file, 'utf8'), type });
  return new Map([
    ['pico.min.css', asset(require.resolve('@picocss/pico/css/pico.min.css'), 'text/css; charset=utf-8')],
    ['htmx.min.js', asset(require.resolve('htmx.org/dist/htmx.min.js'), 'text/javascript; charset=utf-8')],
    ['inbox.css', asset(path.join(__dirname, 'inbox.css'), 'text/css; charset=utf-8')],
  ]);
}

/** A short digest of rendered HTML: a live region's poll carries it, and gets 204 while it holds. */
const digest = async (content: Html): Promise<string> =>
  createHash('sha256')
    .update((await content).toString())
    .digest('base64url')
    .slice(0, 16);

/** Where to go after sign-in: only a path on this site (never `//host` or `/\host`). */
const safeNext = (next: unknown): string =>
  typeof next === 'string' && /^\/(?![/\\])[^\\]*$/.test(next) ? next : '/';

type Env = { Variables: { viewer: Viewer; subject: string } };

/** Which gate a decision panel shows (and since when): a new one clears the last decision's answer. */
const gateKey = (status: TaskStatus): string =>
  status.pendingGate ? `${status.pendingGate.gate}@${status.pendingGate.since}` : '';

/** Builds the Hono app; {@link startInbox} serves it. `drain()` waits for requests in progress. */
function createInboxApp(options: StartInboxOptions): { app: Hono<Env>; drain: () => Promise<void> } {
  const { client, identity } = options;
  const log = options.log ?? ((line: string) => console.error(line));
  const refreshMs = options.refreshMs ?? 2000;
  const worker = { client, workerTimeoutMs: options.workerTimeoutMs ?? 10_000 };
  const people = options.people ?? new Map<string, string>();
  const csrfTokens = new CsrfTokens();
  const sessions = new SessionStore(options.sessionTtlMs ?? 12 * 60 * 60 * 1000);
  const tokens = identity.kind === 'tokens' ? new TokenStore(identity.file, log) : undefined;
  const assets = loadAssets();

  const viewerFor = (approver: string, subject: string): Viewer => ({
    approver,
    name: people.get(approver),
    csrf: csrfTokens.tokenFor(subject),
    via: identity.kind === 'tokens' ? 'token' : 'proxy',
  });

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

  // Token sign-in: the token is exchanged for a session cookie.
  app.get('/sign-in', (c) => {
    if (!tokens) return c.redirect('/', 303);
    return c.html(signInPage({ next: safeNext(c.req.query('next')) }));
  });
  app.post('/sign-in', async (c) => {
    if (!tokens) return c.redirect('/', 303);
    const body = await c.req.parseBody();
    const next = safeNext(body.next);
    const token = typeof body.token === 'string' ? body.token.trim() : '';
    const hash = hashToken(token);
    const approver = token ? tokens.approverOfHash(hash) : undefined;
    if (!approver) {
      log('inbox: a sign-in with an unknown token was refused');
      return c.html(
        signInPage({ error: 'That token is not valid. Check it, or ask for a new one.', next }),
        401,
      );
    }
    const id = sessions.open(approver, hash);
    setCookie(c, SESSION_COOKIE, id, {
      httpOnly: true,
      sameSite: 'Strict',
      secure: options.secureCookie ?? false,
      path: '/',
      maxAge: Math.floor(sessions.ttlMs / 1000),
    });
    log(`inbox: ${approver} signed in`);
    return c.redirect(next, 303);
  });

  // Everything below needs an identity.
  app.use(async (c, next) => {
    if (c.req.path.startsWith('/assets/')) return next();
    if (identity.kind === 'header') {
      const secret = c.req.header(PROXY_SECRET_HEADER);
      if (secret === undefined || !safeEqual(secret, identity.proxySecret)) {
        return c.html(
          messagePage(
            'Not through the proxy',
            'This inbox takes requests only through its authenticating proxy. Open it at the address your organisation gave you.',
            undefined,
            false,
          ),
          401,
        );
      }
      const approver = c.req.header(identity.header)?.trim() ?? '';
      if (!IDENTITY_PATTERN.test(approver)) {
        return c.html(
          messagePage(
            'Who are you?',
            `The proxy sent no usable identity in ${identity.header}.`,
            undefined,
            false,
          ),
          401,
        );
      }
      c.set('subject', `proxy:${approver}`);
      c.set('viewer', viewerFor(approver, `proxy:${approver}`));
      return next();
    }
    const sessionId = getCookie(c, SESSION_COOKIE);
    const session = sessions.get(sessionId);
    // A token taken out of the file ends the sessions it opened.
    if (session && tokens?.approverOfHash(session.tokenHash) !== session.approver) sessions.close(sessionId);
    const valid = sessions.get(sessionId);
    if (!valid) {
      if (c.req.method !== 'GET') {
        return c.html(messagePage('Sign in first', 'You are not signed in, so nothing was done.'), 401);
      }
      if (c.req.header('HX-Request')) return c.body(null, 401, { 'HX-Redirect': '/sign-in' });
      const url = new URL(c.req.url);
      return c.redirect(
        `/sign-in?${new URLSearchParams({ next: url.pathname + url.search }).toString()}`,
        303,
      );
    }
    c.set('subject', `session:${sessionId}`);
    c.set('viewer', viewerFor(valid.approver, `session:${sessionId}`));
    return next();
  });

  // Every POST carries the page's CSRF token, tied to the session (or the proxy's identity).
  app.use(async (c, next) => {
    if (c.req.method !== 'POST') return next();
    const body = await c.req.parseBody({ all: true });
    const token = typeof body._csrf === 'string' ? body._csrf : c.req.header('X-CSRF-Token');
    if (!csrfTokens.check(c.get('subject'), token)) {
      return c.html(
        messagePage(
          'Request refused',
          'The form was out of date or did not come from this inbox (CSRF check). Reload the page and try again.',
          c.get('viewer'),
        ),
        403,
      );
    }
    return next();
  });

  app.post('/sign-out', (c) => {
    sessions.close(getCookie(c, SESSION_COOKIE));
    deleteCookie(c, SESSION_COOKIE, { path: '/' });
    return c.redirect('/sign-in', 303);
  });

  // ---------------------------------------------------------------------------------------------------------
  // The pending list

  async function pendingRows(viewer: Viewer, all: boolean): Promise<PendingRow[]> {
    const tasks = (await listPending(client, all ? undefined : viewer.approver)).slice(0, MAX_LISTED);
    // The question and the approvals so far come from each task's status; a task whose worker does
    // not answer quickly is still listed, by id.
    const quick = { ...worker, workerTimeoutMs: Math.min(worker.workerTimeoutMs, 3000) };
    return Promise.all(
      tasks.map(async (t): Promise<PendingRow> => {
        const attrs = t.typedSearchAttributes;
        const status = await askWorker(quick, t.workflowId, '', () =>
          client.workflow.getHandle(t.workflowId).query(statusQuery),
        ).catch(() => undefined);
        return {
          workflowId: t.workflowId,
          gate: attrs.get(BATON_PENDING_GATE) ?? '?',
          awaiting: attrs.get(BATON_AWAITING) ?? [],
          startTime: t.startTime,
          phase: attrs.get(BATON_PHASE),
          status,
        };
      }),
    );
  }

  async function pendingRegion(
    c: Context<Env>,
    all: boolean,
  ): Promise<{ content: Html; poll: string; v: string }> {
    const content = pendingFragment(await pendingRows(c.get('viewer'), all), all, c.get('viewer'));
    const v = await digest(content);
    return { content, poll: pollUrl('/pending', { all: all ? '1' : '0', v }), v };
  }

  app.get('/', async (c) => {
    const all = c.req.query('all') === '1';
    const { content, poll } = await pendingRegion(c, all);
    return c.html(pendingPage(content, all, c.get('viewer'), poll, refreshMs));
  });
  app.get('/pending', async (c) => {
    const { content, poll, v } = await pendingRegion(c, c.req.query('all') === '1');
    if (v === c.req.query('v')) return c.body(null, 204);
    return c.html(live('pending', poll, refreshMs, content));
  });

  // ---------------------------------------------------------------------------------------------------------
  // A task

  const query = (workflowId: string): Promise<TaskStatus> =>
    askWorker(worker, workflowId, '', () => client.workflow.getHandle(workflowId).query(statusQuery));

  /** The task's status and, for its decomposed steps, their child tasks', level by level. */
  async function taskView(workflowId: string): Promise<TaskView> {
    const status = await query(workflowId);
    const children: TaskView['children'] = new Map();
    let level = [status];
    while (level.length && children.size < MAX_CHILD_TASKS) {
      const ids = level
        .flatMap((s) => s.steps.map((step) => step.childWorkflowId))
        .filter((id): id is string => id !== undefined && !children.has(id))
        .slice(0, MAX_CHILD_TASKS - children.size);
      const answers = await Promise.all(
        ids.map((id) => query(id).catch((err: unknown) => ({ error: (err as Error).message }))),
      );
      ids.forEach((id, i) => children.set(id, answers[i]!));
      level = answers.filter((a): a is TaskStatus => !('error' in a));
    }
    return { status, children };
  }

  /** The draft approvers read at the report gate, when this inbox can read the workers' report folder. */
  async function readDraft(status: TaskStatus): Promise<string | undefined> {
    const file = status.report?.draftPath;
    if (status.pendingGate?.gate !== 'report' || !file?.endsWith('.md')) return undefined;
    try {
      const handle = await fs.open(file, 'r');
      try {
        const buffer = Buffer.alloc(MAX_DRAFT_BYTES);
        const { bytesRead } = await handle.read(buffer, 0, MAX_DRAFT_BYTES, 0);
        const text = buffer.subarray(0, bytesRead).toString('utf8');
        return bytesRead === MAX_DRAFT_BYTES ? `${text}\n\n[… cut at ${MAX_DRAFT_BYTES} bytes]` : text;
      } finally {
        await handle.close();
      }
    } catch {
      return undefined;
    }
  }

  async function decisionRegion(status: TaskStatus, viewer: Viewer): Promise<{ region: Html; v: string }> {
    const content = decisionPanel(status, viewer, await readDraft(status));
    const v = await digest(content);
    const final = FINAL_PHASES.includes(status.phase);
    const poll = final
      ? undefined
      : pollUrl('/task/decision', { id: status.workflowId, g: gateKey(status), v });
    return { region: live('decision', poll, refreshMs, content), v };
  }

  async function liveRegion(view: TaskView): Promise<{ region: Html; v: string }> {
    const content = taskLive(view);
    const v = await digest(content);
    const final = FINAL_PHASES.includes(view.status.phase);
    const poll = final ? undefined : pollUrl('/task/live', { id: view.status.workflowId, v });
    return { region: live('live', poll, refreshMs, content), v };
  }

  async function renderTask(
    c: Context<Env>,
    workflowId: string,
    result?: DecisionOutcome,
  ): Promise<Response> {
    const viewer = c.get('viewer');
    let view: TaskView;
    try {
      view = await taskView(workflowId);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        return c.html(
          messagePage(
            'No such task',
            `There is no task with workflow id "${workflowId}" on this namespace.`,
            viewer,
          ),
          404,
        );
      }
      throw err;
    }
    const decision = await decisionRegion(view.status, viewer);
    const liveView = await liveRegion(view);
    return c.html(taskPage(view.status, viewer, decision.region, liveView.region, result));
  }

  const workflowIdOf = (c: Context<Env>): string | undefined => {
    const id = c.req.query('id');
    return id && id.length <= 1000 ? id : undefined;
  };

  app.get('/task', async (c) => {
    const id = workflowIdOf(c);
    if (!id) return c.redirect('/', 303);
    return renderTask(c, id);
  });

  app.get('/task/decision', async (c) => {
    const id = workflowIdOf(c);
    if (!id) return c.body(null, 400);
    const status = await query(id);
    const { region, v } = await decisionRegion(status, c.get('viewer'));
    if (v === c.req.query('v')) return c.body(null, 204);
    const opened = status.pendingGate !== undefined && gateKey(status) !== c.req.query('g');
    return c.html(opened ? html`${region}${clearDecisionResult()}` : region);
  });

  app.get('/task/live', async (c) => {
    const id = workflowIdOf(c);
    if (!id) return c.body(null, 400);
    const { region, v } = await liveRegion(await taskView(id));
    return v === c.req.query('v') ? c.body(null, 204) : c.html(region);
  });

  app.post('/task/decide', async (c) => {
    const viewer = c.get('viewer');
    const body = await c.req.parseBody({ all: true });
    const text = (name: string): string | undefined => {
      const value = body[name];
      return typeof value === 'string' ? value : undefined;
    };
    const id = text('id');
    const decision = text('decision');
    const gate = text('gate');
    const comment = text('comment')?.trim();
    const rerun = ([] as unknown[])
      .concat(body.rerun ?? [])
      .filter((v): v is string => typeof v === 'string');
    if (
      !id ||
      !(DECISIONS as readonly string[]).includes(decision ?? '') ||
      (gate && !(GATES as readonly string[]).includes(gate))
    ) {
      return c.html(messagePage('Bad request', 'The decision form was incomplete.', viewer), 400);
    }
    // `by` is the signed-in person, whatever the form says: the workflow checks they may decide.
    const request: DecideRequest = {
      decision: decision as Decision,
      by: viewer.approver,
      ...(gate ? { gate: gate as Gate } : {}),
      ...(comment ? { comment } : {}),
      ...(decision === 'requestChanges' && rerun.length ? { rerunSteps: rerun } : {}),
    };
    let outcome: DecisionOutcome;
    try {
      outcome = await decideTask(worker, id, request);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      outcome = { accepted: false, reason: `there is no task with workflow id "${id}"` };
    }
    log(
      `inbox: ${viewer.approver} ${request.decision} ${request.gate ?? ''} on ${id}: ${outcome.accepted ? outcome.result.outcome : `refused (${outcome.reason})`}`,
    );
    if (c.req.header('HX-Request')) {
      // The live regions refresh at once rather than at their next tick.
      return c.html(decisionResult(outcome), 200, { 'HX-Trigger': 'baton-refresh' });
    }
    return renderTask(c, id, outcome);
  });

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
