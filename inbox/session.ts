/**
 * Who is asking: token sign-in with a session cookie, or the identity an authenticating proxy sets
 * (./options.ts), and the CSRF token every POST carries (./auth.ts has the design notes). Every route
 * added after {@link useSessions} has a `viewer`, or the request was answered here.
 */
import type { Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { CsrfTokens, hashToken, IDENTITY_PATTERN, safeEqual, SessionStore, TokenStore } from './auth';
import { PROXY_SECRET_HEADER, type IdentitySource } from './options';
import { messagePage, signInPage, type Viewer } from './views';

/** The session cookie. HttpOnly and SameSite=Strict; Secure when configured. */
export const SESSION_COOKIE = 'baton_inbox_session';

/** The inbox's Hono environment: who is asking, and the subject their CSRF tokens are tied to. */
export type Env = { Variables: { viewer: Viewer; subject: string } };

export interface SessionOptions {
  identity: IdentitySource;
  /** Display names by approver id (config/approvers.yaml). */
  people: ReadonlyMap<string, string>;
  /** Session cookie only over HTTPS. */
  secureCookie: boolean;
  /** How long a token sign-in lasts. */
  sessionTtlMs: number;
  log: (line: string) => void;
}

/** Where to go after sign-in: only a path on this site (never `//host` or `/\host`). */
const safeNext = (next: unknown): string =>
  typeof next === 'string' && /^\/(?![/\\])[^\\]*$/.test(next) ? next : '/';

/** Adds sign-in and sign-out, the identity check and the CSRF check to `app`. */
export function useSessions(app: Hono<Env>, options: SessionOptions): void {
  const { identity, log } = options;
  const csrfTokens = new CsrfTokens();
  const sessions = new SessionStore(options.sessionTtlMs);
  const tokens = identity.kind === 'tokens' ? new TokenStore(identity.file, log) : undefined;

  const viewerFor = (approver: string, subject: string): Viewer => ({
    approver,
    name: options.people.get(approver),
    csrf: csrfTokens.tokenFor(subject),
    via: identity.kind === 'tokens' ? 'token' : 'proxy',
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
      secure: options.secureCookie,
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
}
