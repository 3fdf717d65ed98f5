/**
 * Temporal's remote codec protocol over HTTP, on Hono: what `npm run codec-server` (cli/codec-server.ts)
 * serves, so the Temporal CLI and the Web UI can show payloads that Baton's workers and clients
 * encrypt (workers/codec.ts).
 *
 *   POST …/encode, POST …/decode   body and answer: `{"payloads": [{"metadata": {k: base64}, "data": base64}]}`
 *
 * Only the last path segment counts (as the protocol asks), so `http://host:8888/default/decode`
 * works too. Every request needs `Authorization: Bearer <token>`; browsers get CORS headers only for
 * the origins given (the Web UI's), and other origins are refused. Tests run it in-process.
 */
import type { Payload, PayloadCodec } from '@temporalio/common';
import { serve } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

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

/** A request the server refuses with this status and message (the answer's body). */
const refusal = (status: 400 | 401 | 403 | 404 | 405 | 413, message: string): HTTPException =>
  new HTTPException(status, { message });

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Proto3 JSON bytes: base64, standard or URL-safe alphabet, padding optional. */
function fromBase64(where: string, value: unknown): Buffer {
  if (typeof value !== 'string') throw refusal(400, `${where} must be a base64 string`);
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(value) || value.replace(/=+$/, '').length % 4 === 1) {
    throw refusal(400, `${where} is not valid base64`);
  }
  return Buffer.from(value, 'base64');
}

/** The request body as Payloads, or a 400 saying exactly what is wrong. */
export function parsePayloadsJson(body: unknown): Payload[] {
  const shape = 'the body must be a JSON object {"payloads": [{"metadata": {...}, "data": "<base64>"}, ...]}';
  if (!isObject(body) || !('payloads' in body)) throw refusal(400, shape);
  if (!Array.isArray(body.payloads)) throw refusal(400, `"payloads" must be an array; ${shape}`);
  return body.payloads.map((p: unknown, i): Payload => {
    const at = `payloads[${i}]`;
    if (!isObject(p)) throw refusal(400, `${at} must be an object with "metadata" and "data"`);
    for (const [field, value] of Object.entries(p)) {
      if (field === 'metadata' || field === 'data') continue;
      // Proto JSON may spell out an empty repeated field; payloads stored elsewhere are not supported.
      if (field === 'externalPayloads' && Array.isArray(value) && value.length === 0) continue;
      throw refusal(400, `${at} has an unsupported field "${field}" (expected "metadata" and "data")`);
    }
    const metadata: Record<string, Uint8Array> = {};
    if (p.metadata != null) {
      if (!isObject(p.metadata)) throw refusal(400, `${at}.metadata must be an object of base64 strings`);
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

interface CodecEnv {
  Variables: {
    /** The operation the path asks for. */
    operation: 'encode' | 'decode';
    /** What the log line says after the status: the payload count, or why the request was refused. */
    detail: string;
  };
}

/** The codec server's routes; {@link startCodecServer} serves them. */
function codecApp(options: CodecServerOptions): Hono<CodecEnv> {
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

  const app = new Hono<CodecEnv>();
  // One line a request: method, path, status, time, namespace, and the payload count or the refusal.
  app.use(async (c, next) => {
    const started = Date.now();
    await next();
    const { pathname, search } = new URL(c.req.url);
    const namespace = c.req.header('x-namespace');
    const detail = c.get('detail');
    log(
      `${c.req.method} ${pathname}${search} ${c.res.status} ${Date.now() - started}ms${namespace !== undefined ? ` namespace=${namespace}` : ''}${detail ? ` ${detail}` : ''}`,
    );
  });
  app.onError((err, c) => {
    if (!(err instanceof HTTPException)) log(`internal error: ${err.message}`);
    const [status, message] =
      err instanceof HTTPException
        ? [err.status, err.message]
        : [500 as const, 'internal error: see the codec server log'];
    c.set('detail', message);
    return c.text(`${message}\n`, status);
  });
  // Browsers from other origins are refused outright; the Web UI's origin gets CORS headers, on
  // refusals too (so it can show why), and its preflight requests are answered.
  app.use(async (c, next) => {
    const origin = c.req.header('origin');
    if (origin !== undefined && !origins.has(origin)) {
      throw refusal(403, `origin ${origin} is not allowed (BATON_CODEC_CORS_ORIGIN)`);
    }
    await next();
  });
  app.use(
    cors({
      origin: (origin) => (origins.has(origin) ? origin : null),
      credentials: true,
      allowMethods: ALLOWED_METHODS.split(', '),
      // One entry, so the header reads as written (Hono joins a list without spaces).
      allowHeaders: [ALLOWED_HEADERS],
      maxAge: 600,
    }),
  );
  app.all(
    '*',
    // Only the last path segment counts, as the protocol asks: …/default/decode is a decode.
    async (c, next) => {
      const operation = c.req.path.replace(/\/+$/, '').split('/').pop();
      if (operation !== 'encode' && operation !== 'decode') {
        throw refusal(404, 'not found: POST to …/encode or …/decode');
      }
      if (c.req.method !== 'POST') {
        c.header('Allow', ALLOWED_METHODS);
        throw refusal(405, `${operation} takes POST`);
      }
      c.set('operation', operation);
      await next();
    },
    async (c, next) => {
      if (!authorized(c.req.header('authorization'))) {
        c.header('WWW-Authenticate', 'Bearer');
        throw refusal(401, 'missing or wrong "Authorization: Bearer <token>"');
      }
      await next();
    },
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: () => {
        throw refusal(413, `the request body is larger than the limit of ${maxBodyBytes} bytes`);
      },
    }),
    async (c) => codecAnswer(c, codec),
  );
  return app;
}

/** Runs the codec over the request's payloads; a 400 for a body that is not payloads, or a codec error. */
async function codecAnswer(c: Context<CodecEnv>, codec: PayloadCodec): Promise<Response> {
  const operation = c.get('operation');
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    // Not the parser's message: it quotes the body, which may be plaintext payload data.
    throw refusal(400, 'the request body is not valid JSON');
  }
  const payloads = parsePayloadsJson(body);
  let result: Payload[];
  try {
    result = operation === 'encode' ? await codec.encode(payloads) : await codec.decode(payloads);
  } catch (err) {
    // What the protocol asks for a codec error; the message names the key id, never a key.
    throw refusal(400, `cannot ${operation}: ${(err as Error).message}`);
  }
  c.set('detail', `${payloads.length} payload(s)`);
  return c.json(payloadsToJson(result));
}

/**
 * Starts the codec server. Resolves once it listens; rejects when it cannot (e.g. port in use).
 * Throws at once for options that would make it unsafe (no token).
 */
export function startCodecServer(options: CodecServerOptions): Promise<CodecServer> {
  if (!options.token) throw new Error('the codec server needs a bearer token');
  const app = codecApp(options);
  const host = options.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    const server = serve(
      {
        fetch: app.fetch,
        port: options.port ?? DEFAULT_CODEC_PORT,
        hostname: host,
        // Leave Node's global Request/Response alone: tests and tools may share the process.
        overrideGlobalObjects: false,
        // Bounded waits for slow or stalled clients.
        serverOptions: { requestTimeout: 60_000, headersTimeout: 30_000 },
      },
      () => {
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
      },
    ) as Server;
    server.once('error', reject);
  });
}
