/**
 * Payload encryption (workers/codec.ts) and the codec server (cli/codec-http.ts, cli/codec-server.ts).
 *
 * Unit tests: round trips, key rotation, unknown keys, tampering, and every configuration error.
 * End to end: a research task runs through an encrypting client and worker (the real activities
 * against the stand-in model, the worker bundling its own workflow code with the failure
 * converter) on the test server; the real Temporal CLI then shows its history without the codec,
 * where neither the question nor a failure message can be found, and with the codec server, where
 * both are.
 */
import { ApplicationFailure, Client, WorkflowFailedError } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { Worker } from '@temporalio/worker';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { inspect, promisify } from 'node:util';
import { parsePayloadsJson, startCodecServer, type CodecServer } from '../cli/codec-http';
import { codecServerConfig } from '../cli/codec-server';
import { resolveTemporalCli } from '../local/temporal';
import { startStandIn, type StandIn } from '../standin/server';
import {
  AesGcmCodec,
  CIPHER,
  dataConverterFromEnv,
  derivedKeyId,
  ENCRYPTED_ENCODING,
  encryptionFromEnv,
  type EncryptionKeyring,
} from '../workers/codec';
import { createBatonWorker } from '../workers/worker';
import { researchTask } from '../workflows';
import { FIXTURE_CONFIG, tempActivityOptions, uniqueId, useTestServer } from './helpers';

const run = promisify(execFile);

// At the top level, so the connection outlives the end-to-end block's worker (closed in its afterAll).
const ctx = useTestServer();

const newKey = (): string => randomBytes(32).toString('base64');
const text = (bytes: Uint8Array | null | undefined): string => Buffer.from(bytes ?? []).toString('utf8');

function keyring(env: NodeJS.ProcessEnv): EncryptionKeyring {
  const ring = encryptionFromEnv(env);
  if (!ring) throw new Error('expected keys');
  return ring;
}

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-codec-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** Writes a key file and returns its path. */
async function keyFile(content: unknown): Promise<string> {
  const file = path.join(tmp, `${randomUUID()}.json`);
  await fs.writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('AesGcmCodec', () => {
  const samples: Payload[] = [
    defaultPayloadConverter.toPayload({ question: 'How do solid-state batteries compare?', n: 1 }),
    defaultPayloadConverter.toPayload(new Uint8Array([0, 1, 2, 255])),
    defaultPayloadConverter.toPayload(undefined),
    { metadata: { encoding: Buffer.from('json/plain'), custom: Buffer.from('x') }, data: new Uint8Array() },
  ];

  test('round trip: the whole payload, metadata included, comes back; only the marker metadata is visible', async () => {
    const codec = new AesGcmCodec(keyring({ BATON_ENCRYPTION_KEY: newKey(), BATON_ENCRYPTION_KEY_ID: 'k1' }));
    const encoded = await codec.encode(samples);
    expect(encoded).toHaveLength(samples.length);
    for (const e of encoded) {
      expect(Object.keys(e.metadata!).sort()).toEqual(['encoding', 'encryption-cipher', 'encryption-key-id']);
      expect(text(e.metadata!.encoding)).toBe(ENCRYPTED_ENCODING);
      expect(text(e.metadata!['encryption-key-id'])).toBe('k1');
      expect(text(e.metadata!['encryption-cipher'])).toBe(CIPHER);
      expect(text(e.data)).not.toContain('solid-state');
      expect(text(e.data)).not.toContain('json/plain');
    }
    const decoded = await codec.decode(encoded);
    decoded.forEach((d, i) => {
      const original = samples[i]!;
      expect(Object.keys(d.metadata ?? {}).sort()).toEqual(Object.keys(original.metadata ?? {}).sort());
      for (const [k, v] of Object.entries(original.metadata ?? {}))
        expect(text(d.metadata![k])).toBe(text(v));
      expect(Buffer.from(d.data ?? []).equals(Buffer.from(original.data ?? []))).toBe(true);
    });
    expect(defaultPayloadConverter.fromPayload(decoded[0]!)).toEqual({
      question: 'How do solid-state batteries compare?',
      n: 1,
    });
    expect(await codec.encode([])).toEqual([]);
  });

  test('a fresh IV each time: the same payload never encrypts to the same bytes', async () => {
    const codec = new AesGcmCodec(keyring({ BATON_ENCRYPTION_KEY: newKey() }));
    const [a, b] = await codec.encode([samples[0]!, samples[0]!]);
    expect(Buffer.from(a!.data!).equals(Buffer.from(b!.data!))).toBe(false);
    expect(Buffer.from(a!.data!).subarray(0, 12).equals(Buffer.from(b!.data!).subarray(0, 12))).toBe(false);
  });

  test('payloads not marked encrypted pass through decode unchanged', async () => {
    const codec = new AesGcmCodec(keyring({ BATON_ENCRYPTION_KEY: newKey() }));
    const plain = samples[0]!;
    const [out] = await codec.decode([plain]);
    expect(out).toBe(plain);
  });

  test('rotation: data encrypted with the old key decrypts with a key file holding both; new data uses the current key', async () => {
    const oldKey = newKey();
    const newer = newKey();
    const before = new AesGcmCodec(keyring({ BATON_ENCRYPTION_KEY: oldKey, BATON_ENCRYPTION_KEY_ID: 'old' }));
    const [oldPayload] = await before.encode([samples[0]!]);

    const file = await keyFile({ current: 'new', keys: { old: oldKey, new: newer } });
    const ring = keyring({ BATON_ENCRYPTION_KEY_FILE: file });
    expect(ring.currentKeyId).toBe('new');
    expect(ring.keyIds).toEqual(['new', 'old']);
    const after = new AesGcmCodec(ring);
    const [decoded] = await after.decode([oldPayload!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual(
      defaultPayloadConverter.fromPayload(samples[0]!),
    );
    const [newPayload] = await after.encode([samples[0]!]);
    expect(text(newPayload!.metadata!['encryption-key-id'])).toBe('new');

    // The old key alone cannot read what the new one wrote, and says which key it would need.
    await expect(before.decode([newPayload!])).rejects.toThrow(
      /encrypted with key id "new", which is not among the known keys \(old\)/,
    );
  });

  test('a key given without an id gets one derived from it, so a key file can carry it on', async () => {
    const key = newKey();
    const single = keyring({ BATON_ENCRYPTION_KEY: key });
    expect(single.currentKeyId).toBe(derivedKeyId(Buffer.from(key, 'base64')));
    expect(single.currentKeyId).toMatch(/^key-[0-9a-f]{12}$/);
    expect(keyring({ BATON_ENCRYPTION_KEY: key }).currentKeyId).toBe(single.currentKeyId); // stable
    const [payload] = await new AesGcmCodec(single).encode([samples[0]!]);
    const file = await keyFile({ current: 'next', keys: { next: newKey(), [single.currentKeyId]: key } });
    const [decoded] = await new AesGcmCodec(keyring({ BATON_ENCRYPTION_KEY_FILE: file })).decode([payload!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual(
      defaultPayloadConverter.fromPayload(samples[0]!),
    );
  });

  test('tampered data, a swapped key id, a cut-off ciphertext or an unknown cipher are refused', async () => {
    const a = newKey();
    const b = newKey();
    const codec = new AesGcmCodec(
      keyring({ BATON_ENCRYPTION_KEY_FILE: await keyFile({ current: 'a', keys: { a, b } }) }),
    );
    const [good] = await codec.encode([samples[0]!]);
    const flipped = Buffer.from(good!.data!);
    flipped[20] = flipped[20]! ^ 1;
    await expect(codec.decode([{ ...good, data: flipped }])).rejects.toThrow(
      /key id "a": authentication failed \(the data was altered/,
    );
    const tag = Buffer.from(good!.data!);
    tag[tag.length - 1] = tag[tag.length - 1]! ^ 0x80;
    await expect(codec.decode([{ ...good, data: tag }])).rejects.toThrow(/authentication failed/);
    await expect(
      codec.decode([
        { metadata: { ...good!.metadata, 'encryption-key-id': Buffer.from('b') }, data: good!.data },
      ]),
    ).rejects.toThrow(/key id "b": authentication failed/);
    await expect(codec.decode([{ ...good, data: Buffer.from(good!.data!).subarray(0, 20) }])).rejects.toThrow(
      /authentication failed \(the ciphertext is too short\)/,
    );
    await expect(
      codec.decode([
        { metadata: { ...good!.metadata, 'encryption-cipher': Buffer.from('ROT13') }, data: good!.data },
      ]),
    ).rejects.toThrow(/unsupported cipher "ROT13"/);
    // The untouched payload still decrypts: the failures above are the tampering, not the key.
    await expect(codec.decode([good!])).resolves.toHaveLength(1);
  });

  test('the key ring never shows its keys when logged or serialized', () => {
    const key = newKey();
    const ring = keyring({ BATON_ENCRYPTION_KEY: key, BATON_ENCRYPTION_KEY_ID: 'visible-id' });
    const hex = Buffer.from(key, 'base64').toString('hex');
    for (const shown of [JSON.stringify(ring), inspect(ring, { depth: 5 }), ring.describe()]) {
      expect(shown).not.toContain(key);
      expect(shown.replace(/[^0-9a-f]/g, '')).not.toContain(hex.slice(0, 16));
    }
    expect(ring.describe()).toBe('key "visible-id" from BATON_ENCRYPTION_KEY');
  });
});

describe('encryption from the environment', () => {
  test('no key configured: no encryption, and the SDK default data converter', () => {
    expect(encryptionFromEnv({})).toBeUndefined();
    expect(encryptionFromEnv({ BATON_ENCRYPTION_KEY: '', BATON_ENCRYPTION_KEY_FILE: '' })).toBeUndefined();
    expect(dataConverterFromEnv({})).toBeUndefined();
  });

  test('with a key: the codec, and a failure converter that encodes messages and stack traces', async () => {
    const converter = dataConverterFromEnv({ BATON_ENCRYPTION_KEY: newKey() })!;
    expect(converter.payloadCodecs).toHaveLength(1);
    expect(converter.payloadCodecs![0]).toBeInstanceOf(AesGcmCodec);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const loaded = require(converter.failureConverterPath!) as typeof import('../workers/failure-converter');
    expect(loaded.failureConverter.options.encodeCommonAttributes).toBe(true);
    const failure = loaded.failureConverter.errorToFailure(
      new Error('secret detail'),
      defaultPayloadConverter,
    );
    expect(failure.message).toBe('Encoded failure');
    expect(JSON.stringify(failure)).not.toContain('secret detail');
    const [sealed] = await converter.payloadCodecs![0]!.encode([failure.encodedAttributes!]);
    expect(text(sealed!.data)).not.toContain('secret detail');
  });

  const KEY = newKey();
  const SHORT = randomBytes(16).toString('base64');
  const cases: [string, () => Promise<NodeJS.ProcessEnv> | NodeJS.ProcessEnv, RegExp][] = [
    [
      'both variables set',
      async () => ({ BATON_ENCRYPTION_KEY: KEY, BATON_ENCRYPTION_KEY_FILE: await keyFile({}) }),
      /BATON_ENCRYPTION_KEY and BATON_ENCRYPTION_KEY_FILE are both set/,
    ],
    [
      'bad base64',
      () => ({ BATON_ENCRYPTION_KEY: 'not base64!' }),
      /BATON_ENCRYPTION_KEY is not valid base64/,
    ],
    [
      'wrong length',
      () => ({ BATON_ENCRYPTION_KEY: SHORT }),
      /BATON_ENCRYPTION_KEY decodes to 16 bytes, but AES-256 needs exactly 32.*openssl rand -base64 32/,
    ],
    [
      'a key id without a key',
      () => ({ BATON_ENCRYPTION_KEY_ID: 'k1' }),
      /BATON_ENCRYPTION_KEY_ID is set but BATON_ENCRYPTION_KEY is not/,
    ],
    [
      'a key id with a key file',
      async () => ({ BATON_ENCRYPTION_KEY_ID: 'k1', BATON_ENCRYPTION_KEY_FILE: await keyFile({}) }),
      /BATON_ENCRYPTION_KEY_ID applies only to BATON_ENCRYPTION_KEY/,
    ],
    [
      'an invalid key id',
      () => ({ BATON_ENCRYPTION_KEY: KEY, BATON_ENCRYPTION_KEY_ID: 'has space' }),
      /BATON_ENCRYPTION_KEY_ID is not a valid key id/,
    ],
    [
      'a missing key file',
      () => ({ BATON_ENCRYPTION_KEY_FILE: path.join(tmp, 'nope.json') }),
      /BATON_ENCRYPTION_KEY_FILE=.*nope\.json cannot be read: ENOENT/,
    ],
    [
      'a key file that is not JSON',
      async () => ({
        BATON_ENCRYPTION_KEY_FILE: await keyFile(`{ "current": "a", "keys": { "a": "${KEY}" `),
      }),
      /BATON_ENCRYPTION_KEY_FILE=.* is not valid JSON; expected \{ "current"/,
    ],
    [
      'current missing from keys',
      async () => ({
        BATON_ENCRYPTION_KEY_FILE: await keyFile({ current: 'c', keys: { a: KEY, b: newKey() } }),
      }),
      /"current" is "c", which is not in "keys" \(a, b\)/,
    ],
    [
      'no keys',
      async () => ({ BATON_ENCRYPTION_KEY_FILE: await keyFile({ current: 'a', keys: {} }) }),
      /"keys" must be a non-empty object/,
    ],
    [
      'a key of the wrong length in the file',
      async () => ({
        BATON_ENCRYPTION_KEY_FILE: await keyFile({ current: 'a', keys: { a: KEY, b: SHORT } }),
      }),
      /keys\["b"\] decodes to 16 bytes/,
    ],
    [
      'a misspelt field',
      async () => ({ BATON_ENCRYPTION_KEY_FILE: await keyFile({ curent: 'a', keys: { a: KEY } }) }),
      /unknown fields "curent"/,
    ],
    [
      'a key pasted where an id goes',
      async () => ({
        BATON_ENCRYPTION_KEY_FILE: await keyFile({ current: 'a', keys: { a: KEY, [KEY]: KEY } }),
      }),
      /key id #2 in "keys" is invalid/,
    ],
  ];
  test.each(cases)(
    '%s: an Error naming the variable and the problem, never the key',
    async (_name, env, expected) => {
      let message = '';
      try {
        encryptionFromEnv(await env());
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(expected);
      expect(message).not.toContain(KEY);
      expect(message).not.toContain(SHORT);
    },
  );
});

// ---------------------------------------------------------------------------------------------------------
// The codec server, in-process

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'POST', headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const TOKEN = randomBytes(24).toString('hex');
const UI_ORIGIN = 'http://localhost:8233';

describe('codec server', () => {
  let server: CodecServer;
  let small: CodecServer;
  const lines: string[] = [];
  const codec = new AesGcmCodec(keyring({ BATON_ENCRYPTION_KEY: newKey(), BATON_ENCRYPTION_KEY_ID: 'srv' }));
  const auth = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' };
  const json = (payloads: Payload[]): string =>
    JSON.stringify({
      payloads: payloads.map((p) => ({
        metadata: Object.fromEntries(
          Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
        ),
        data: Buffer.from(p.data ?? []).toString('base64'),
      })),
    });
  beforeAll(async () => {
    server = await startCodecServer({ codec, token: TOKEN, port: 0, log: (l) => lines.push(l) });
    small = await startCodecServer({ codec, token: TOKEN, port: 0, maxBodyBytes: 1024 });
  });
  afterAll(async () => {
    await server?.close();
    await small?.close();
  });

  test('encode then decode over HTTP round-trips payloads, at any depth of path', async () => {
    const original = defaultPayloadConverter.toPayload({ hello: 'codec server' });
    const encoded = await request(`${server.url}/encode`, { headers: auth, body: json([original]) });
    expect(encoded.status).toBe(200);
    expect(encoded.headers['content-type']).toBe('application/json');
    const sealed = JSON.parse(encoded.body) as {
      payloads: { metadata: Record<string, string>; data: string }[];
    };
    expect(sealed.payloads).toHaveLength(1);
    expect(Buffer.from(sealed.payloads[0]!.metadata.encoding!, 'base64').toString()).toBe(ENCRYPTED_ENCODING);
    expect(Buffer.from(sealed.payloads[0]!.metadata['encryption-key-id']!, 'base64').toString()).toBe('srv');
    expect(encoded.body).not.toContain(Buffer.from('codec server').toString('base64'));

    const decoded = await request(`${server.url}/default/decode`, {
      headers: { ...auth, 'X-Namespace': 'default' },
      body: encoded.body,
    });
    expect(decoded.status).toBe(200);
    const [payload] = parsePayloadsJson(JSON.parse(decoded.body));
    expect(defaultPayloadConverter.fromPayload(payload!)).toEqual({ hello: 'codec server' });
    // An unencrypted payload passes through decode.
    const plain = await request(`${server.url}/decode`, { headers: auth, body: json([original]) });
    expect(JSON.parse(plain.body)).toEqual(JSON.parse(json([original])));
    expect(
      lines.some((l) => l.startsWith('POST /default/decode 200') && l.includes('namespace=default')),
    ).toBe(true);
  });

  test('401 without a token, with a wrong one, or another scheme; the token is never logged', async () => {
    const body = json([defaultPayloadConverter.toPayload(1)]);
    for (const headers of [
      {} as Record<string, string>,
      { Authorization: `Bearer ${TOKEN}x` },
      { Authorization: `Bearer ${TOKEN.slice(0, -1)}` },
      { Authorization: `Basic ${TOKEN}` },
      { Authorization: TOKEN },
    ]) {
      const answer = await request(`${server.url}/decode`, { headers, body });
      expect(answer.status).toBe(401);
      expect(answer.headers['www-authenticate']).toBe('Bearer');
      expect(answer.body).toMatch(/Authorization: Bearer <token>/);
    }
    expect(lines.some((l) => l.includes(' 401 '))).toBe(true);
    expect(lines.join('\n')).not.toContain(TOKEN);
  });

  test('CORS: the UI origin gets its preflight and headers; other origins get none', async () => {
    const preflight = await request(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: {
        Origin: UI_ORIGIN,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization,content-type,x-namespace',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe(UI_ORIGIN);
    expect(preflight.headers['access-control-allow-methods']).toMatch(/POST/);
    expect(preflight.headers['access-control-allow-headers']).toBe(
      'Authorization, Content-Type, X-Namespace',
    );

    const body = json([defaultPayloadConverter.toPayload('x')]);
    const fromUi = await request(`${server.url}/decode`, { headers: { ...auth, Origin: UI_ORIGIN }, body });
    expect(fromUi.status).toBe(200);
    expect(fromUi.headers['access-control-allow-origin']).toBe(UI_ORIGIN);
    // A refusal still carries CORS headers, so the UI can show why.
    const unauthorized = await request(`${server.url}/decode`, { headers: { Origin: UI_ORIGIN }, body });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers['access-control-allow-origin']).toBe(UI_ORIGIN);

    for (const origin of ['http://evil.example', 'http://localhost:8234', 'null']) {
      const other = await request(`${server.url}/decode`, {
        method: 'OPTIONS',
        headers: { Origin: origin, 'Access-Control-Request-Method': 'POST' },
      });
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
      expect(other.headers['access-control-allow-methods']).toBeUndefined();
      expect(other.headers['access-control-allow-headers']).toBeUndefined();
      const post = await request(`${server.url}/decode`, { headers: { ...auth, Origin: origin }, body });
      expect(post.status).toBe(403);
      expect(post.headers['access-control-allow-origin']).toBeUndefined();
    }
  });

  test('bad requests get a 400 (or 404, 405, 413) saying what is wrong', async () => {
    const post = (body: string, url = `${server.url}/decode`) => request(url, { headers: auth, body });
    const cases: [string, RegExp][] = [
      ['{"payloads": [', /not valid JSON/],
      ['[]', /the body must be a JSON object \{"payloads"/],
      ['{"payload": []}', /the body must be a JSON object \{"payloads"/],
      ['{"payloads": {}}', /"payloads" must be an array/],
      ['{"payloads": [42]}', /payloads\[0\] must be an object/],
      ['{"payloads": [{"data": "!!!"}]}', /payloads\[0\]\.data is not valid base64/],
      [
        '{"payloads": [{}, {"metadata": {"encoding": 7}}]}',
        /payloads\[1\]\.metadata\.encoding must be a base64 string/,
      ],
      ['{"payloads": [{"metadata": []}]}', /payloads\[0\]\.metadata must be an object/],
      ['{"payloads": [{"data": "", "extra": 1}]}', /payloads\[0\] has an unsupported field "extra"/],
    ];
    for (const [body, expected] of cases) {
      const answer = await post(body);
      expect([answer.status, answer.body]).toEqual([400, expect.stringMatching(expected)]);
    }
    // A decoder error: tampered ciphertext.
    const [sealed] = await codec.encode([defaultPayloadConverter.toPayload('secret')]);
    const data = Buffer.from(sealed!.data!);
    data[15] = data[15]! ^ 1;
    const tampered = await post(json([{ ...sealed, data }]));
    expect(tampered.status).toBe(400);
    expect(tampered.body).toMatch(/cannot decode: .*key id "srv": authentication failed/);

    expect((await post('{}', `${server.url}/other`)).status).toBe(404);
    const get = await request(`${server.url}/decode`, { method: 'GET', headers: auth });
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST, OPTIONS');
    const large = await request(`${small.url}/decode`, {
      headers: auth,
      body: json([{ metadata: {}, data: Buffer.alloc(2048) }]),
    });
    expect(large.status).toBe(413);
    expect(large.body).toMatch(/larger than the limit of 1024 bytes/);
  });

  test('configuration: the token is required, ports and origins are checked', () => {
    const env = { BATON_CODEC_TOKEN: TOKEN };
    expect(codecServerConfig([], env)).toEqual({
      host: '127.0.0.1',
      port: 8888,
      token: TOKEN,
      corsOrigins: [UI_ORIGIN],
    });
    expect(
      codecServerConfig(['--port=9000', '--host', '0.0.0.0'], {
        ...env,
        BATON_CODEC_PORT: '7000',
        BATON_CODEC_CORS_ORIGIN: 'https://ui.example.com, http://127.0.0.1:8233',
      }),
    ).toEqual({
      host: '0.0.0.0',
      port: 9000,
      token: TOKEN,
      corsOrigins: ['https://ui.example.com', 'http://127.0.0.1:8233'],
    });
    expect(codecServerConfig([], { ...env, BATON_CODEC_PORT: '7000' }).port).toBe(7000);
    expect(() => codecServerConfig([], {})).toThrow(
      /BATON_CODEC_TOKEN is not set.*refuses to run without one/,
    );
    expect(() => codecServerConfig([], { BATON_CODEC_TOKEN: 'short' })).toThrow(/at least 16 characters/);
    expect(() => codecServerConfig(['--port', 'http'], env)).toThrow(/--port must be a port number/);
    expect(() => codecServerConfig(['--verbose'], env)).toThrow(/unknown argument "--verbose"/);
    expect(() => codecServerConfig([], { ...env, BATON_CODEC_PORT: '99999' })).toThrow(
      /BATON_CODEC_PORT must be/,
    );
    expect(() =>
      codecServerConfig([], { ...env, BATON_CODEC_CORS_ORIGIN: 'http://localhost:8233/' }),
    ).toThrow(/BATON_CODEC_CORS_ORIGIN: "http:\/\/localhost:8233\/" is not an origin/);
    expect(() => startCodecServer({ codec, token: '' })).toThrow(/needs a bearer token/);
  });
});

// ---------------------------------------------------------------------------------------------------------
// End to end on the test server, checked with the real Temporal CLI

/** Every string in a JSON value, keys included. */
function* strings(value: unknown): Generator<string> {
  if (typeof value === 'string') yield value;
  else if (Array.isArray(value)) for (const v of value) yield* strings(v);
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      yield k;
      yield* strings(v);
    }
  }
}

/** Whether `needle` appears in any string of `json`, as it is or inside base64. */
function reveals(json: unknown, needle: string): boolean {
  for (const s of strings(json)) {
    if (s.includes(needle)) return true;
    if (
      /^[A-Za-z0-9+/_-]{8,}={0,2}$/.test(s) &&
      Buffer.from(s, 'base64').toString('latin1').includes(needle)
    ) {
      return true;
    }
  }
  return false;
}

/** The `encoding` of every payload in the history that spells out its metadata. */
function encodings(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) encodings(v, out);
  else if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const metadata = record.metadata as Record<string, unknown> | undefined;
    if (metadata && typeof metadata.encoding === 'string' && 'data' in record) {
      out.push(Buffer.from(metadata.encoding, 'base64').toString('utf8'));
    }
    for (const v of Object.values(record)) encodings(v, out);
  }
  return out;
}

describe('end to end: what the Temporal server stores', () => {
  const SECRET_FAILURE = `model refused: confidential-${randomUUID().slice(0, 8)}`;
  const FAIL_MARKER = `fail-${randomUUID().slice(0, 8)}`;
  /** While set, every specialist call gets a 400 whose message the activity puts in its failure. */
  let failFindings = false;
  let standIn: StandIn;
  let codecServer: CodecServer;
  let worker: Worker;
  let running: Promise<void>;
  let client: Client;
  let taskQueue: string;
  let temporalCli: string;

  beforeAll(async () => {
    const cli = await resolveTemporalCli();
    if (!cli.path) throw new Error(`no Temporal CLI binary to run (${cli.tried.join('; ')})`);
    temporalCli = cli.path;
    standIn = await startStandIn({
      respond: (req) =>
        failFindings && req.toolName === 'submit_findings'
          ? { kind: 'error', status: 400, message: SECRET_FAILURE }
          : undefined,
    });
    // Keys as in production after one rotation: a key file, the current key and an older one.
    const file = await keyFile({ current: 'k2', keys: { k1: newKey(), k2: newKey() } });
    const env = { BATON_ENCRYPTION_KEY_FILE: file };
    const dataConverter = dataConverterFromEnv(env)!;
    codecServer = await startCodecServer({ codec: new AesGcmCodec(keyring(env)), token: TOKEN, port: 0 });
    client = new Client({ connection: ctx.client.connection, dataConverter });
    taskQueue = uniqueId('codec-queue');
    // No prebuilt bundle: the worker bundles workflows/ itself, with the failure converter, as
    // `npm run worker` does.
    worker = await createBatonWorker({
      connection: ctx.nativeConnection,
      namespace: 'default',
      taskQueue,
      activityOptions: {
        ...(await tempActivityOptions(FIXTURE_CONFIG)),
        apiKey: 'offline',
        baseURL: standIn.url,
      },
      dataConverter,
    });
    running = worker.run();
  }, 120_000);

  afterAll(async () => {
    if (worker) {
      worker.shutdown();
      await running;
    }
    await codecServer?.close();
    await standIn?.close();
  });

  /** `temporal workflow show --output json`, with the codec server or without. */
  async function show(workflowId: string, withCodec: boolean): Promise<{ stdout: string; json: unknown }> {
    const env = { ...process.env };
    for (const name of Object.keys(env)) if (name.startsWith('TEMPORAL_')) delete env[name];
    const args = [
      'workflow',
      'show',
      '--address',
      process.env.BATON_TEST_TEMPORAL_ADDRESS!,
      '--namespace',
      'default',
      '-w',
      workflowId,
      '--output',
      'json',
      '--disable-config-file',
      '--disable-config-env',
      ...(withCodec ? ['--codec-endpoint', codecServer.url, '--codec-auth', `Bearer ${TOKEN}`] : []),
    ];
    const { stdout } = await run(temporalCli, args, { env, maxBuffer: 64 * 1024 * 1024 });
    return { stdout, json: JSON.parse(stdout) };
  }

  test('a task run through an encrypting client and worker leaves no question in the history; the codec server reveals it', async () => {
    const question = `Codec check ${randomUUID().slice(0, 8)}: how do quokka burrow networks change after wildfires`;
    const workflowId = uniqueId('codec-e2e');
    const handle = await client.workflow.start(researchTask, {
      taskQueue,
      workflowId,
      args: [{ question, playbook: 'open' }],
    });
    const result = await handle.result();
    expect(result.outcome).toBe('completed');
    expect(await fs.readFile(result.reportPath!, 'utf8')).toContain('offline stand-in');

    // A client without the codec cannot read the result.
    await expect(ctx.client.workflow.getHandle(workflowId).result()).rejects.toThrow(/binary\/encrypted/);

    const plain = await show(workflowId, false);
    expect(plain.stdout).not.toContain(question);
    expect(reveals(plain.json, question)).toBe(false);
    expect(reveals(plain.json, 'quokka')).toBe(false);
    const seen = encodings(plain.json);
    expect(seen.filter((e) => e === ENCRYPTED_ENCODING).length).toBeGreaterThan(5);
    // Search attributes are the only payloads Temporal keeps readable (it must index them).
    const started = (plain.json as { events: { workflowExecutionStartedEventAttributes?: unknown }[] })
      .events[0]!.workflowExecutionStartedEventAttributes as { input: { payloads: unknown[] } };
    expect(encodings(started.input)).toEqual([ENCRYPTED_ENCODING]);
    // Bookkeeping runs as local activities (v18): each result is in a MarkerRecorded event, through
    // the codec as an activity's (the config snapshot, the citation pass's counts, the report's path).
    type Marker = { markerName?: string; details?: { result?: unknown } };
    const markers = (plain.json as { events: { markerRecordedEventAttributes?: Marker }[] }).events
      .map((e) => e.markerRecordedEventAttributes)
      .filter((m) => m?.markerName === 'core_local_activity');
    expect(markers).toHaveLength(3); // loadConfigSnapshot, checkCitations, publishReport
    for (const marker of markers) expect(encodings(marker!.details?.result)).toEqual([ENCRYPTED_ENCODING]);
    expect(reveals(plain.json, result.reportPath!)).toBe(false);

    // The same search finds the question once the codec server has decrypted the payloads.
    const decoded = await show(workflowId, true);
    expect(reveals(decoded.json, question)).toBe(true);
    expect(reveals(decoded.json, result.reportPath!)).toBe(true);
    expect(encodings(decoded.json)).not.toContain(ENCRYPTED_ENCODING);
  }, 120_000);

  test('failure messages are encrypted too, those raised in workflow code included (the worker bundled the failure converter)', async () => {
    const workflowId = uniqueId('codec-fail');
    failFindings = true;
    let err: unknown;
    try {
      const handle = await client.workflow.start(researchTask, {
        taskQueue,
        workflowId,
        args: [{ question: `Why does ${FAIL_MARKER} fail?`, playbook: 'open' }],
      });
      err = await handle.result().catch((e: unknown) => e);
    } finally {
      failFindings = false;
    }
    // The encrypting client decrypts the failure: the workflow's own StepFailed, whose message the
    // workflow code wrote from the activity's error.
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect((cause as ApplicationFailure).type).toBe('StepFailed');
    expect(cause!.message).toMatch(/^step "s\d+" \(agent "\w+"\) failed: /);
    expect(cause!.message).toContain(SECRET_FAILURE);

    const plain = await show(workflowId, false);
    expect(plain.stdout).not.toContain(SECRET_FAILURE);
    expect(reveals(plain.json, SECRET_FAILURE)).toBe(false);
    expect(reveals(plain.json, FAIL_MARKER)).toBe(false);
    // The workflow's failure, created in the workflow sandbox, is stored as "Encoded failure"; only
    // its type stays readable.
    const events = (plain.json as { events: Record<string, unknown>[] }).events;
    const workflowFailed = events.find((e) => e.workflowExecutionFailedEventAttributes)!
      .workflowExecutionFailedEventAttributes as {
      failure: { message: string; applicationFailureInfo?: { type: string } };
    };
    expect(workflowFailed.failure.message).toBe('Encoded failure');
    expect(workflowFailed.failure.applicationFailureInfo?.type).toBe('StepFailed');

    const decoded = await show(workflowId, true);
    expect(reveals(decoded.json, SECRET_FAILURE)).toBe(true);
  }, 120_000);
});
