/**
 * Payload encryption at rest: an AES-256-GCM {@link PayloadCodec} with keys from the environment.
 *
 * Every payload a Baton client or worker sends to Temporal (workflow input and result, activity
 * inputs and results, signals, updates, queries, memos, summaries, and with the failure converter
 * in ./failure-converter.ts, error messages and stack traces) is serialized as a whole
 * `temporal.api.common.v1.Payload` and encrypted; the server stores only the ciphertext and three
 * metadata entries: `encoding: binary/encrypted`, the key id and the cipher name. Keys rotate:
 * payloads are encrypted with the current key and decrypted with whichever known key their id
 * names. Payloads that are not marked encrypted (e.g. a workflow started with
 * `temporal workflow start --input` without a codec) pass through decoding unchanged.
 *
 * Keys come from `BATON_ENCRYPTION_KEY` (one key; id from `BATON_ENCRYPTION_KEY_ID` or derived from
 * the key) or `BATON_ENCRYPTION_KEY_FILE` (a JSON key ring for rotation). Key material never
 * appears in an error message or log line.
 */
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** `encoding` metadata of an encrypted payload. */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** Metadata key naming the key a payload was encrypted with. */
export const KEY_ID_METADATA = 'encryption-key-id';
/** Metadata key naming the cipher, so another cipher can be introduced later. */
export const CIPHER_METADATA = 'encryption-cipher';
/** The only cipher this codec writes and reads. */
export const CIPHER = 'AES-256-GCM';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const KEY_ID_RULE = '1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit';
const KEY_HINT = 'expected the base64 of 32 random bytes, e.g. from `openssl rand -base64 32`';

/**
 * The known keys and which one encrypts. The key bytes live in a private field: they are not
 * enumerable, so they never show up when the object is logged or serialized.
 */
export class EncryptionKeyring {
  readonly #keys: ReadonlyMap<string, Buffer>;

  /**
   * @param currentKeyId the key new payloads are encrypted with; must be in `keys`
   * @param keys every key that may decrypt, by id
   * @param source where the keys came from, for messages (e.g. `BATON_ENCRYPTION_KEY_FILE=/etc/baton/keys.json`)
   */
  constructor(
    readonly currentKeyId: string,
    keys: ReadonlyMap<string, Buffer>,
    readonly source: string,
  ) {
    for (const [id, key] of keys) {
      if (!KEY_ID_PATTERN.test(id))
        throw new Error(`${source}: a key id is invalid (ids are ${KEY_ID_RULE})`);
      if (key.length !== KEY_BYTES) throw new Error(`${source}: key "${id}" is not ${KEY_BYTES} bytes long`);
    }
    if (!keys.has(currentKeyId))
      throw new Error(`${source}: the current key "${currentKeyId}" is not among the keys`);
    this.#keys = new Map(keys);
  }

  /** Every known key id, the current one first. */
  get keyIds(): string[] {
    return [this.currentKeyId, ...[...this.#keys.keys()].filter((id) => id !== this.currentKeyId)];
  }

  /** The key with this id, or undefined. */
  key(id: string): Buffer | undefined {
    return this.#keys.get(id);
  }

  /** One line for logs: where the keys come from and their ids (never the keys). */
  describe(): string {
    const others = this.keyIds.slice(1);
    return `key "${this.currentKeyId}" from ${this.source}${others.length ? ` (also decrypts: ${others.join(', ')})` : ''}`;
  }
}

const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8');

function metadataText(payload: Payload, key: string): string | undefined {
  const value = payload.metadata?.[key];
  return value == null ? undefined : Buffer.from(value).toString('utf8');
}

/** Binds the ciphertext to the metadata it is stored with: changing either fails authentication. */
const additionalData = (keyId: string): Buffer => utf8(`baton/${CIPHER}/${keyId}`);

/** AES-256-GCM over the whole serialized Payload; a fresh random 12-byte IV per payload. */
export class AesGcmCodec implements PayloadCodec {
  constructor(readonly keyring: EncryptionKeyring) {}

  encode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.resolve().then(() => payloads.map((p) => this.encrypt(p)));
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.resolve().then(() => payloads.map((p) => this.decrypt(p)));
  }

  encrypt(payload: Payload): Payload {
    const keyId = this.keyring.currentKeyId;
    const key = this.keyring.key(keyId)!;
    const plain = temporal.api.common.v1.Payload.encode(payload).finish();
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(additionalData(keyId));
    const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
    return {
      metadata: {
        encoding: utf8(ENCRYPTED_ENCODING),
        [KEY_ID_METADATA]: utf8(keyId),
        [CIPHER_METADATA]: utf8(CIPHER),
      },
      // iv | ciphertext | tag
      data: Buffer.concat([iv, ciphertext, cipher.getAuthTag()]),
    };
  }

  /** Decrypts an encrypted payload; any other payload is returned as it is. */
  decrypt(payload: Payload): Payload {
    if (metadataText(payload, 'encoding') !== ENCRYPTED_ENCODING) return payload;
    const keyId = metadataText(payload, KEY_ID_METADATA);
    if (keyId === undefined) {
      throw new Error(
        `cannot decrypt payload: it is marked ${ENCRYPTED_ENCODING} but has no ${KEY_ID_METADATA}`,
      );
    }
    const cipherName = metadataText(payload, CIPHER_METADATA);
    if (cipherName !== CIPHER) {
      throw new Error(
        `cannot decrypt payload encrypted with key id "${keyId}": unsupported cipher ${cipherName === undefined ? '(none given)' : `"${cipherName}"`}; this codec reads ${CIPHER}`,
      );
    }
    const key = this.keyring.key(keyId);
    if (!key) {
      throw new Error(
        `cannot decrypt payload: it was encrypted with key id "${keyId}", which is not among the known keys (${this.keyring.keyIds.join(', ')}) from ${this.keyring.source}; add that key to the key file`,
      );
    }
    const data = Buffer.from(payload.data ?? new Uint8Array());
    const authFailed = (why: string): Error =>
      new Error(`cannot decrypt payload encrypted with key id "${keyId}": authentication failed (${why})`);
    if (data.length < IV_BYTES + TAG_BYTES) throw authFailed('the ciphertext is too short');
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(additionalData(keyId));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([
        decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw authFailed('the data was altered, or the key with that id is not the one it was encrypted with');
    }
    try {
      return temporal.api.common.v1.Payload.decode(plain);
    } catch (err) {
      throw new Error(
        `payload encrypted with key id "${keyId}" decrypted, but is not a serialized Payload: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Keys from the environment

/** Decodes a base64 key and checks it is 32 bytes; `name` says where it came from. Never prints the value. */
function parseKey(name: string, value: string): Buffer {
  const text = value.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text) || text.replace(/=+$/, '').length % 4 === 1) {
    throw new Error(`${name} is not valid base64 (${KEY_HINT})`);
  }
  const key = Buffer.from(text, 'base64');
  if (key.length !== KEY_BYTES) {
    throw new Error(
      `${name} decodes to ${key.length} bytes, but AES-256 needs exactly ${KEY_BYTES} (${KEY_HINT})`,
    );
  }
  return key;
}

/** A short, stable id for a key given without one: a prefix of its SHA-256 (reveals nothing usable). */
export function derivedKeyId(key: Buffer): string {
  return `key-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
}

const FILE_SHAPE = '{ "current": "<key id>", "keys": { "<key id>": "<base64 of 32 bytes>", ... } }';

function keyringFromFile(file: string): EncryptionKeyring {
  const where = `BATON_ENCRYPTION_KEY_FILE=${file}`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${where} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // The parser's message may quote the file, i.e. key material: say only what is wrong.
    throw new Error(`${where} is not valid JSON; expected ${FILE_SHAPE}`);
  }
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(parsed)) throw new Error(`${where} must hold a JSON object ${FILE_SHAPE}`);
  const unknown = Object.keys(parsed).filter((k) => k !== 'current' && k !== 'keys');
  if (unknown.length) {
    throw new Error(
      `${where} has unknown fields ${unknown.map((k) => `"${k}"`).join(', ')}; expected ${FILE_SHAPE}`,
    );
  }
  const { current, keys } = parsed;
  if (typeof current !== 'string' || !KEY_ID_PATTERN.test(current)) {
    throw new Error(`${where}: "current" must be a key id (${KEY_ID_RULE})`);
  }
  if (!isObject(keys) || Object.keys(keys).length === 0) {
    throw new Error(`${where}: "keys" must be a non-empty object of key id to base64 key`);
  }
  const ring = new Map<string, Buffer>();
  for (const [i, [id, value]] of Object.entries(keys).entries()) {
    // An invalid id is not printed: it may be a key pasted in the wrong place.
    if (!KEY_ID_PATTERN.test(id))
      throw new Error(`${where}: key id #${i + 1} in "keys" is invalid (ids are ${KEY_ID_RULE})`);
    if (typeof value !== 'string') throw new Error(`${where}: keys["${id}"] must be a base64 string`);
    ring.set(id, parseKey(`${where}: keys["${id}"]`, value));
  }
  if (!ring.has(current)) {
    throw new Error(
      `${where}: "current" is "${current}", which is not in "keys" (${[...ring.keys()].join(', ')})`,
    );
  }
  return new EncryptionKeyring(current, ring, where);
}

/**
 * The encryption keys configured in `env`, or undefined when encryption is off.
 *
 * - `BATON_ENCRYPTION_KEY`: base64 of exactly 32 bytes; its id is `BATON_ENCRYPTION_KEY_ID`, or
 *   when unset, `key-` and 12 hex digits of the key's SHA-256.
 * - `BATON_ENCRYPTION_KEY_FILE`: a JSON key ring `{ "current": id, "keys": { id: base64, ... } }`.
 *
 * Throws an Error naming the variable and what is wrong (never the key) for both set, bad base64,
 * a wrong length, or a current id missing from the keys.
 */
export function encryptionFromEnv(env: NodeJS.ProcessEnv = process.env): EncryptionKeyring | undefined {
  const key = env.BATON_ENCRYPTION_KEY || undefined;
  const keyId = env.BATON_ENCRYPTION_KEY_ID || undefined;
  const file = env.BATON_ENCRYPTION_KEY_FILE || undefined;
  if (key !== undefined && file !== undefined) {
    throw new Error(
      'BATON_ENCRYPTION_KEY and BATON_ENCRYPTION_KEY_FILE are both set; set only one (the key file holds every key, for rotation)',
    );
  }
  if (keyId !== undefined && key === undefined) {
    throw new Error(
      file !== undefined
        ? 'BATON_ENCRYPTION_KEY_ID applies only to BATON_ENCRYPTION_KEY; with BATON_ENCRYPTION_KEY_FILE, the file\'s "current" names the key'
        : 'BATON_ENCRYPTION_KEY_ID is set but BATON_ENCRYPTION_KEY is not',
    );
  }
  if (key !== undefined) {
    const bytes = parseKey('BATON_ENCRYPTION_KEY', key);
    if (keyId !== undefined && !KEY_ID_PATTERN.test(keyId)) {
      throw new Error(`BATON_ENCRYPTION_KEY_ID is not a valid key id (${KEY_ID_RULE})`);
    }
    const id = keyId ?? derivedKeyId(bytes);
    return new EncryptionKeyring(id, new Map([[id, bytes]]), 'BATON_ENCRYPTION_KEY');
  }
  if (file !== undefined) return keyringFromFile(file);
  return undefined;
}

/**
 * The failure converter module used with encryption on (messages and stack traces encrypted). A
 * worker bundles it into the workflow code when it bundles `workflows/` itself; a prebuilt bundle
 * must have been built with it (`bundleWorkflowCode({ failureConverterPath })`).
 */
export const FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');

/** The data converter for clients and workers with these keys; undefined (the SDK's default) without. */
export function dataConverterFor(keyring: EncryptionKeyring | undefined): DataConverter | undefined {
  if (!keyring) return undefined;
  return { payloadCodecs: [new AesGcmCodec(keyring)], failureConverterPath: FAILURE_CONVERTER_PATH };
}

/** {@link dataConverterFor} the keys in `env` ({@link encryptionFromEnv}); throws on bad configuration. */
export function dataConverterFromEnv(env: NodeJS.ProcessEnv = process.env): DataConverter | undefined {
  return dataConverterFor(encryptionFromEnv(env));
}
