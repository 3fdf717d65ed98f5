/**
 * `npm run codec-server -- [--port 8888] [--host 127.0.0.1]`: Temporal's remote codec protocol over
 * HTTP (cli/codec-http.ts), so the Temporal CLI (`--codec-endpoint`, `--codec-auth`) and the Web UI
 * can show payloads that Baton's workers and clients encrypt (workers/codec.ts). It holds the same
 * keys as the workers (`BATON_ENCRYPTION_KEY` or `BATON_ENCRYPTION_KEY_FILE`), and needs
 * `BATON_CODEC_TOKEN`, the bearer token every request must carry.
 *
 * Exit codes: 0 after SIGINT/SIGTERM, 1 when it cannot start (configuration, port in use), 2 on a bad
 * command line.
 */
import { command, parseCommandLine, runMain, UsageError } from '../lib/cli';
import { closeOnSignal } from '../lib/signals';
import { AesGcmCodec, encryptionFromEnv } from '../workers/codec';
import { DEFAULT_CODEC_PORT, DEFAULT_CORS_ORIGIN, startCodecServer, type CodecServer } from './codec-http';

const USAGE = `usage: npm run codec-server -- [--port N] [--host ADDRESS]

Serves Temporal's remote codec protocol (POST /encode, POST /decode) with Baton's payload keys.

  --port N          port to listen on (default: $BATON_CODEC_PORT, else 8888)
  --host ADDRESS    address to bind (default: $BATON_CODEC_HOST, else 127.0.0.1, loopback only)

environment:
  BATON_CODEC_TOKEN          required: clients must send "Authorization: Bearer <token>"
                             (at least 16 characters, e.g. from \`openssl rand -hex 32\`)
  BATON_CODEC_CORS_ORIGIN    the Web UI origin(s) allowed to call it from a browser, comma-separated
                             (default: http://localhost:8233)
  BATON_ENCRYPTION_KEY, BATON_ENCRYPTION_KEY_ID, BATON_ENCRYPTION_KEY_FILE
                             the same keys as the workers (docs/security.md)

with the Temporal CLI:
  temporal workflow show -w <id> --codec-endpoint http://127.0.0.1:8888 --codec-auth "Bearer $BATON_CODEC_TOKEN"`;

const CODEC_SERVER_COMMAND = {
  name: 'codec-server',
  usage: USAGE,
  options: { port: { type: 'string' }, host: { type: 'string' } },
  unknownOption: (option: string) => `unknown argument "${option}"`,
} as const;

/** A port number from the command line (a UsageError) or the environment (an Error naming the variable). */
function parsePort(where: string, value: string, fail: (message: string) => Error): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n > 65535) {
    throw fail(`${where} must be a port number from 0 to 65535, got "${value}"`);
  }
  return n;
}

/** An origin as browsers send it: scheme, host and port only, e.g. `http://localhost:8233`. */
function parseOrigin(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || url.origin !== value || !/^https?:$/.test(url.protocol)) {
    throw new Error(
      `BATON_CODEC_CORS_ORIGIN: "${value}" is not an origin like http://localhost:8233 (scheme, host and port; no path or trailing slash)`,
    );
  }
  return value;
}

export interface CodecServerConfig {
  host: string;
  port: number;
  token: string;
  corsOrigins: string[];
}

type CodecServerArgs = ReturnType<
  typeof parseCommandLine<(typeof CODEC_SERVER_COMMAND)['options']>
>['values'];

/**
 * The server's settings from the command line (`--port`, `--host`, also as `--flag=value`) and the
 * environment. Throws a {@link UsageError} for a bad command line, an Error naming the variable for
 * a bad environment.
 */
export function codecServerConfig(argv: readonly string[], env: NodeJS.ProcessEnv): CodecServerConfig {
  return configFrom(parseCommandLine(CODEC_SERVER_COMMAND, argv).values, env);
}

function configFrom(args: CodecServerArgs, env: NodeJS.ProcessEnv): CodecServerConfig {
  if (args.host === '') throw new UsageError('--host needs a value');
  const port =
    args.port !== undefined
      ? parsePort('--port', args.port, (message) => new UsageError(message))
      : env.BATON_CODEC_PORT
        ? parsePort('BATON_CODEC_PORT', env.BATON_CODEC_PORT, (message) => new Error(message))
        : DEFAULT_CODEC_PORT;
  const host = args.host ?? (env.BATON_CODEC_HOST || '127.0.0.1');
  const token = env.BATON_CODEC_TOKEN ?? '';
  if (!token) {
    throw new Error(
      'BATON_CODEC_TOKEN is not set: the codec server decrypts for anyone holding it, so it refuses to run without one (generate one with `openssl rand -hex 32`)',
    );
  }
  if (token.length < 16 || /\s/.test(token)) {
    throw new Error(
      'BATON_CODEC_TOKEN must be at least 16 characters with no spaces (generate one with `openssl rand -hex 32`)',
    );
  }
  const corsOrigins = (env.BATON_CODEC_CORS_ORIGIN || DEFAULT_CORS_ORIGIN)
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean)
    .map(parseOrigin);
  return { host, port, token, corsOrigins };
}

export const main = command(CODEC_SERVER_COMMAND, async ({ values }) => {
  let config: CodecServerConfig;
  let codec: AesGcmCodec;
  try {
    config = configFrom(values, process.env);
    const keyring = encryptionFromEnv();
    if (!keyring) {
      throw new Error(
        'no encryption key: set BATON_ENCRYPTION_KEY or BATON_ENCRYPTION_KEY_FILE to the keys the workers use',
      );
    }
    codec = new AesGcmCodec(keyring);
  } catch (err) {
    // A bad command line goes on to `command`, which prints the usage and answers 2.
    if (err instanceof UsageError) throw err;
    console.error(`codec-server: ${(err as Error).message}`);
    return 1;
  }

  let server: CodecServer;
  try {
    server = await startCodecServer({
      codec,
      token: config.token,
      corsOrigins: config.corsOrigins,
      host: config.host,
      port: config.port,
      log: (line) => console.log(line),
    });
  } catch (err) {
    console.error(`codec-server: cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`);
    return 1;
  }
  console.log(`Baton codec server listening on ${server.url} (POST /encode, /decode)`);
  console.log(`Keys: ${codec.keyring.describe()}`);
  console.log(`Browser origins allowed (CORS): ${config.corsOrigins.join(', ')}`);
  console.log(
    `Temporal CLI: temporal workflow show -w <id> --codec-endpoint ${server.url} --codec-auth "Bearer $BATON_CODEC_TOKEN"`,
  );
  return closeOnSignal('codec-server', () => server.close());
});

if (require.main === module) runMain(main);
