/**
 * `npm run codec-server -- [--port 8888] [--host 127.0.0.1]`: Temporal's remote codec protocol over
 * HTTP, so the Temporal CLI (`--codec-endpoint`, `--codec-auth`) and the Web UI can show payloads
 * that Baton's workers and clients encrypt (workers/codec.ts). It holds the same keys as the workers
 * (`BATON_ENCRYPTION_KEY` or `BATON_ENCRYPTION_KEY_FILE`).
 *
 *   POST …/encode, POST …/decode   body and answer: `{"payloads": [{"metadata": {k: base64}, "data": base64}]}`
 *
 * Only the last path segment counts (as the protocol asks), so `http://host:8888/default/decode`
 * works too. Every request needs `Authorization: Bearer <BATON_CODEC_TOKEN>`; browsers get CORS
 * headers only for `BATON_CODEC_CORS_ORIGIN` (the Web UI's origin). The server logic lives in
 * {@link startCodecServer}, which the tests run in-process.
 *
 * Exit codes: 0 after SIGINT/SIGTERM, 1 when it cannot start (configuration, port in use), 2 on a bad
 * command line.
 */
import type { Payload, PayloadCodec } from '@temporalio/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AesGcmCodec, encryptionFromEnv } from '../workers/codec';
import { runMain } from '../lib/cli';

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
                             the same keys as the workers (see README)

with the Temporal CLI:
  temporal workflow show -w <id> --codec-endpoint http://127.0.0.1:8888 --codec-auth "Bearer $BATON_CODEC_TOKEN"`;

export const DEFAULT_CODEC_PORT = 8888;
export const DEFAULT_CORS_ORIGIN = 'http://localhost:8233';
/** Largest request body accepted, by default: Temporal's own payload size limit is 2 MiB a payload. */
export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface CodecServerOptions {
  /** The codec to run: Baton's {@link AesGcmCodec} in production. */
  codec: PayloadCodec;
  /** The bearer token every request must carry. Never logged. */
  token: string;
  /** Browser origins that get CORS headers; default {@link DEFAULT_CORS_ORIGIN}. */
  corsOrigins?: readonly string[];
  /** Address to bind; default 127.0.0.1 (loopback only). */
  host?: string;
  /** Port; default {@link DEFAULT_CODEC_PORT}; 0 picks a free one. */
  port?: number;
  /** Largest request body, in bytes; default {@link DEFAULT_MAX_BODY_BYTES}. */
  maxBodyBytes?: number;
  /** One line per request (method, path, status, payload count; never the token or payload data). */
  log?: (line: string) => void;
}

export interface CodecServer {
  /** Base URL, e.g. `http://127.0.0.1:8888`: what `--codec-endpoint` takes. */
  url: string;
  port: number;
  close(): Promise<void>;
}

const ALLOWED_METHODS = 'POST, OPTIONS';
const ALLOWED_HEADERS = 'Authorization, Content-Type, X-Namespace';

/** A request the server refuses with this status and message. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Proto3 JSON bytes: base64, standard or URL-safe alphabet, padding optional. */
function fromBase64(where: string, value: unknown): Buffer {
  if (typeof value !== 'string') throw new HttpError(400, `${where} must be a base64 string`);
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(value) || value.replace(/=+$/, '').length % 4 === 1) {
    throw new HttpError(400, `${where} is not valid base64`);
  }
  return Buffer.from(value, 'base64');
}

/** The request body as Payloads, or a 400 saying exactly what is wrong. */
export function parsePayloadsJson(body: unknown): Payload[] {
  const shape = 'the body must be a JSON object {"payloads": [{"metadata": {...}, "data": "<base64>"}, ...]}';
  if (!isObject(body) || !('payloads' in body)) throw new HttpError(400, shape);
  if (!Array.isArray(body.payloads)) throw new HttpError(400, `"payloads" must be an array; ${shape}`);
  return body.payloads.map((p: unknown, i): Payload => {
    const at = `payloads[${i}]`;
    if (!isObject(p)) throw new HttpError(400, `${at} must be an object with "metadata" and "data"`);
    for (const [field, value] of Object.entries(p)) {
      if (field === 'metadata' || field === 'data') continue;
      // Proto JSON may spell out an empty repeated field; payloads stored elsewhere are not supported.
      if (field === 'externalPayloads' && Array.isArray(value) && value.length === 0) continue;
      throw new HttpError(400, `${at} has an unsupported field "${field}" (expected "metadata" and "data")`);
    }
    const metadata: Record<string, Uint8Array> = {};
    if (p.metadata != null) {
      if (!isObject(p.metadata))
        throw new HttpError(400, `${at}.metadata must be an object of base64 strings`);
      for (const [key, value] of Object.entries(p.metadata)) {
        metadata[key] = fromBase64(`${at}.metadata.${key}`, value);
      }
    }
    return { metadata, data: p.data == null ? Buffer.alloc(0) : fromBase64(`${at}.data`, p.data) };
  });
}

/** Payloads as proto3 JSON: metadata values and data in base64. */
export function payloadsToJson(payloads: readonly Payload[]): {
  payloads: { metadata: Record<string, string>; data: string }[];
} {
  return {
    payloads: payloads.map((p) => ({
      metadata: Object.fromEntries(
        Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
      ),
      data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
    })),
  };
}

/** Reads the body up to `limit` bytes; past it, the rest is drained (not kept) and a 413 follows. */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else chunks.length = 0;
    });
    req.on('end', () =>
      size > limit
        ? reject(new HttpError(413, `the request body is larger than the limit of ${limit} bytes`))
        : resolve(Buffer.concat(chunks)),
    );
    req.on('error', reject);
  });
}

/**
 * Starts the codec server. Resolves once it listens; rejects when it cannot (e.g. port in use).
 * Throws at once for options that would make it unsafe (no token).
 */
export function startCodecServer(options: CodecServerOptions): Promise<CodecServer> {
  if (!options.token) throw new Error('the codec server needs a bearer token');
  const { codec } = options;
  const origins = new Set(options.corsOrigins ?? [DEFAULT_CORS_ORIGIN]);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const log = options.log ?? (() => undefined);
  // Compared as SHA-256 digests: equal lengths for timingSafeEqual, whatever the caller sent.
  const tokenDigest = createHash('sha256').update(options.token, 'utf8').digest();
  const authorized = (header: string | undefined): boolean => {
    const match = /^Bearer +(\S+) *$/i.exec(header ?? '');
    const given = createHash('sha256')
      .update(match?.[1] ?? '', 'utf8')
      .digest();
    return timingSafeEqual(given, tokenDigest) && match !== null;
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<string> {
    const origin = req.headers.origin;
    const cors: Record<string, string> =
      origin !== undefined && origins.has(origin)
        ? {
            'Access-Control-Allow-Origin': origin,
            'Access-Control-Allow-Credentials': 'true',
            Vary: 'Origin',
          }
        : { Vary: 'Origin' };
    if (origin !== undefined && !origins.has(origin)) {
      throw new HttpError(403, `origin ${origin} is not allowed (BATON_CODEC_CORS_ORIGIN)`);
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        ...cors,
        'Access-Control-Allow-Methods': ALLOWED_METHODS,
        'Access-Control-Allow-Headers': ALLOWED_HEADERS,
        'Access-Control-Max-Age': '600',
      });
      res.end();
      return '';
    }
    const pathname = new URL(req.url ?? '/', 'http://codec.invalid').pathname;
    const operation = pathname.replace(/\/+$/, '').split('/').pop();
    if (operation !== 'encode' && operation !== 'decode') {
      throw new HttpError(404, 'not found: POST to …/encode or …/decode', cors);
    }
    if (req.method !== 'POST') {
      throw new HttpError(405, `${operation} takes POST`, { ...cors, Allow: ALLOWED_METHODS });
    }
    if (!authorized(req.headers.authorization)) {
      throw new HttpError(401, 'missing or wrong "Authorization: Bearer <token>"', {
        ...cors,
        'WWW-Authenticate': 'Bearer',
      });
    }
    let body: unknown;
    try {
      const raw = await readBody(req, maxBodyBytes);
      body = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      if (err instanceof HttpError) throw new HttpError(err.status, err.message, cors);
      // Not the parser's message: it quotes the body, which may be plaintext payload data.
      throw new HttpError(400, 'the request body is not valid JSON', cors);
    }
    let payloads: Payload[];
    try {
      payloads = parsePayloadsJson(body);
    } catch (err) {
      if (err instanceof HttpError) throw new HttpError(err.status, err.message, cors);
      throw err;
    }
    let result: Payload[];
    try {
      result = operation === 'encode' ? await codec.encode(payloads) : await codec.decode(payloads);
    } catch (err) {
      // What the protocol asks for a codec error; the message names the key id, never a key.
      throw new HttpError(400, `cannot ${operation}: ${(err as Error).message}`, cors);
    }
    res.writeHead(200, { ...cors, 'Content-Type': 'application/json' });
    res.end(JSON.stringify(payloadsToJson(result)));
    return `${payloads.length} payload(s)`;
  }

  const server = http.createServer((req, res) => {
    const started = Date.now();
    const namespace = req.headers['x-namespace'];
    const describe = (status: number, detail: string): string =>
      `${req.method} ${req.url} ${status} ${Date.now() - started}ms${typeof namespace === 'string' ? ` namespace=${namespace}` : ''}${detail ? ` ${detail}` : ''}`;
    handle(req, res).then(
      (detail) => log(describe(res.statusCode, detail)),
      (err: unknown) => {
        const failure =
          err instanceof HttpError ? err : new HttpError(500, 'internal error: see the codec server log');
        if (!(err instanceof HttpError))
          log(`internal error: ${err instanceof Error ? err.message : String(err)}`);
        if (!res.headersSent) {
          res.writeHead(failure.status, { ...failure.headers, 'Content-Type': 'text/plain; charset=utf-8' });
          res.end(`${failure.message}\n`);
        } else {
          res.destroy();
        }
        // Whatever is left of a body we did not read is not worth keeping the connection for.
        req.resume();
        log(describe(failure.status, failure.message));
      },
    );
  });
  // Bounded waits for slow or stalled clients.
  server.requestTimeout = 60_000;
  server.headersTimeout = 30_000;

  const host = options.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULT_CODEC_PORT, host, () => {
      server.off('error', reject);
      const { port } = server.address() as AddressInfo;
      const urlHost = host.includes(':') ? `[${host}]` : host;
      resolve({
        url: `http://${urlHost}:${port}`,
        port,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()));
            server.closeAllConnections();
          }),
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// The command line

/** Thrown for a bad command line (exit code 2); the message names the flag. */
class UsageError extends Error {}

function parsePort(where: string, value: string | undefined, fail: (message: string) => Error): number {
  if (value === undefined || value.startsWith('--')) throw fail(`${where} needs a value`);
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n > 65535) {
    throw fail(`${where} must be a port number from 0 to 65535, got "${value}"`);
  }
  return n;
}

const usageError = (message: string): Error => new UsageError(message);
const envError = (message: string): Error => new Error(message);

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

/**
 * The server's settings from the command line (`--port`, `--host`, also as `--flag=value`) and the
 * environment. Throws a {@link UsageError} for a bad command line, an Error naming the variable for
 * a bad environment.
 */
export function codecServerConfig(argv: readonly string[], env: NodeJS.ProcessEnv): CodecServerConfig {
  let port: number | undefined;
  let host: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const value = (): string | undefined => (eq >= 0 ? arg.slice(eq + 1) : argv[++i]);
    if (flag === '--port') port = parsePort('--port', value(), usageError);
    else if (flag === '--host') {
      host = value();
      if (!host || host.startsWith('--')) throw new UsageError('--host needs a value');
    } else throw new UsageError(`unknown argument "${arg}"`);
  }
  port ??= env.BATON_CODEC_PORT
    ? parsePort('BATON_CODEC_PORT', env.BATON_CODEC_PORT, envError)
    : DEFAULT_CODEC_PORT;
  host ??= env.BATON_CODEC_HOST || '127.0.0.1';
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

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  let config: CodecServerConfig;
  let codec: AesGcmCodec;
  try {
    config = codecServerConfig(argv, process.env);
    const keyring = encryptionFromEnv();
    if (!keyring) {
      throw new Error(
        'no encryption key: set BATON_ENCRYPTION_KEY or BATON_ENCRYPTION_KEY_FILE to the keys the workers use',
      );
    }
    codec = new AesGcmCodec(keyring);
  } catch (err) {
    console.error(`codec-server: ${(err as Error).message}`);
    if (!(err instanceof UsageError)) return 1;
    console.error(USAGE);
    return 2;
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
  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      console.log(`\ncodec-server: ${signal} received, shutting down`);
      server.close().then(
        () => resolve(0),
        (err: unknown) => {
          console.error(`codec-server: error while closing: ${(err as Error).message}`);
          resolve(1);
        },
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

if (require.main === module) runMain(main);
