/**
 * The inbox's options, parsed once from the command line and the environment. Who is deciding
 * always comes from a configured identity source, never from a field a person fills in: the inbox
 * refuses to start without one.
 */
import path from 'node:path';
import { parseCommandLine, UsageError } from '../lib/cli';

/** Default port, next to the Temporal Web UI's 8233. */
export const DEFAULT_PORT = 8234;
/** The inbox listens on loopback only: a proxy (or an SSH tunnel) is how anyone else reaches it. */
export const HOST = '127.0.0.1';

/**
 * Where the identity of the person deciding comes from.
 *
 * - `header`: an authenticating reverse proxy (oauth2-proxy, nginx `auth_request`, an identity-aware
 *   proxy…) puts the signed-in user in `header`. The header is believed only on requests that also
 *   carry the shared `proxySecret` in {@link PROXY_SECRET_HEADER}: other processes on the host, or a
 *   browser talking to the inbox directly, cannot assert an identity.
 * - `tokens`: each approver has a random token; the file maps approver id to the token's sha256. A
 *   person signs in once with the token and gets a session cookie.
 */
export type IdentitySource =
  { kind: 'header'; header: string; proxySecret: string } | { kind: 'tokens'; file: string };

/** The header an authenticating proxy adds, holding `BATON_INBOX_PROXY_SECRET`. */
export const PROXY_SECRET_HEADER = 'X-Baton-Proxy-Secret';

/** Shortest proxy secret accepted: it is the only thing between a local process and any identity. */
export const MIN_PROXY_SECRET_CHARS = 32;

export interface InboxOptions {
  /** Port on 127.0.0.1. `--port`, env `BATON_INBOX_PORT`; default {@link DEFAULT_PORT}; 0 picks a free one. */
  port: number;
  identity: IdentitySource;
  /**
   * Mark the session cookie `Secure` (sent over HTTPS only). Env `BATON_INBOX_SECURE_COOKIE=true`;
   * default false, since the inbox itself speaks plain HTTP on loopback. Set it when people reach
   * the inbox through an HTTPS proxy.
   */
  secureCookie: boolean;
  /** Folder of config YAML, for approvers' display names. Env `BATON_CONFIG_DIR`; default `config/`. */
  configDir: string;
}

export const NO_IDENTITY_SOURCE = `the inbox needs an identity source, so that nobody can decide as someone else; set one of:
  BATON_INBOX_TOKENS_FILE=<file outside the repository>   approvers sign in with a personal token
      (make one with: npm run inbox -- new-token <approver id>)
  BATON_INBOX_IDENTITY=header:X-Forwarded-User and BATON_INBOX_PROXY_SECRET=<secret>
      behind an authenticating proxy that sets that header and sends the secret in ${PROXY_SECRET_HEADER}`;

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/;

/** Reads a port; `what` says where it came from. @throws `error` with a message naming it */
function parsePort(what: string, value: string, error: new (message: string) => Error = Error): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) {
    throw new error(`${what} must be a port number from 0 to 65535 (got "${value}")`);
  }
  return Number(value);
}

/** The identity source configured in `env`; throws with what to set when there is none or it is contradictory. */
export function identityFromEnv(env: NodeJS.ProcessEnv): IdentitySource {
  const identity = env.BATON_INBOX_IDENTITY?.trim() || undefined;
  const file = env.BATON_INBOX_TOKENS_FILE?.trim() || undefined;
  const secret = env.BATON_INBOX_PROXY_SECRET || undefined;
  if (identity === undefined) {
    if (file !== undefined) return { kind: 'tokens', file: path.resolve(file) };
    if (secret !== undefined) {
      throw new Error(
        `BATON_INBOX_PROXY_SECRET is set but BATON_INBOX_IDENTITY is not; set BATON_INBOX_IDENTITY=header:<the header your proxy sets>\n\n${NO_IDENTITY_SOURCE}`,
      );
    }
    throw new Error(NO_IDENTITY_SOURCE);
  }
  if (identity === 'tokens') {
    if (file === undefined)
      throw new Error('BATON_INBOX_IDENTITY=tokens needs BATON_INBOX_TOKENS_FILE=<file>');
    if (secret !== undefined) {
      throw new Error('BATON_INBOX_PROXY_SECRET applies only to BATON_INBOX_IDENTITY=header:<name>');
    }
    return { kind: 'tokens', file: path.resolve(file) };
  }
  const match = /^header:(.*)$/.exec(identity);
  if (!match) {
    throw new Error(`BATON_INBOX_IDENTITY must be "header:<header name>" or "tokens" (got "${identity}")`);
  }
  const header = match[1]!.trim();
  if (!HEADER_NAME.test(header)) {
    throw new Error(`BATON_INBOX_IDENTITY: "${header}" is not an HTTP header name`);
  }
  if (file !== undefined) {
    throw new Error(
      'BATON_INBOX_IDENTITY=header:… and BATON_INBOX_TOKENS_FILE are both set; choose one identity source',
    );
  }
  if (secret === undefined) {
    throw new Error(
      `BATON_INBOX_IDENTITY=header:${header} needs BATON_INBOX_PROXY_SECRET: a random secret (at least ${MIN_PROXY_SECRET_CHARS} characters, e.g. from \`openssl rand -base64 32\`) that your proxy sends in ${PROXY_SECRET_HEADER}, so that only the proxy can say who the user is`,
    );
  }
  if (secret.length < MIN_PROXY_SECRET_CHARS) {
    throw new Error(
      `BATON_INBOX_PROXY_SECRET must be at least ${MIN_PROXY_SECRET_CHARS} characters (e.g. from \`openssl rand -base64 32\`)`,
    );
  }
  return { kind: 'header', header, proxySecret: secret };
}

/** The usage text of `npm run inbox`. */
export const USAGE = `usage: npm run inbox -- [--port <port>]
       npm run inbox -- new-token <approver id>

Serves the approval inbox on http://${HOST}:<port> (default ${DEFAULT_PORT}, or BATON_INBOX_PORT).

identity (one is required):
  BATON_INBOX_TOKENS_FILE=<file>         approver id -> sha256 of their token (YAML or JSON);
                                         new-token prints a token and the line to add
  BATON_INBOX_IDENTITY=header:<name>     trust <name> (e.g. X-Forwarded-User), set by an authenticating
  BATON_INBOX_PROXY_SECRET=<secret>      proxy that also sends the secret in ${PROXY_SECRET_HEADER}

other:
  BATON_INBOX_SECURE_COOKIE=true         session cookie only over HTTPS (behind an HTTPS proxy)
  BATON_CONFIG_DIR                       config folder, for approvers' names (default config/)

Connects like the worker: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*,
and BATON_ENCRYPTION_KEY(_FILE) when payloads are encrypted.`;

/** The command line of `npm run inbox` (lib/cli.ts); `new-token` has its own (inbox/main.ts). */
export const INBOX_COMMAND = {
  name: 'npm run inbox',
  usage: USAGE,
  options: { port: { type: 'string' } },
} as const;

/**
 * `npm run inbox` options from its arguments (without `node script`) and the environment.
 * @throws UsageError for a bad argument, Error for a bad or missing environment variable
 */
export function inboxOptionsFromEnv(argv: readonly string[], env: NodeJS.ProcessEnv): InboxOptions {
  const { values } = parseCommandLine(INBOX_COMMAND, argv);
  const port =
    values.port !== undefined
      ? parsePort('--port', values.port, UsageError)
      : env.BATON_INBOX_PORT
        ? parsePort('BATON_INBOX_PORT', env.BATON_INBOX_PORT)
        : DEFAULT_PORT;
  const secure = env.BATON_INBOX_SECURE_COOKIE;
  if (secure !== undefined && secure !== '' && secure !== 'true' && secure !== 'false') {
    throw new Error(`BATON_INBOX_SECURE_COOKIE must be "true" or "false" (got "${secure}")`);
  }
  return {
    port,
    identity: identityFromEnv(env),
    secureCookie: secure === 'true',
    configDir: path.resolve(env.BATON_CONFIG_DIR || path.join(__dirname, '..', 'config')),
  };
}
