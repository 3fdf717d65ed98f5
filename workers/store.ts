/**
 * Encryption at rest for the object store, with the payload codec's keys (./codec.ts): with payload
 * encryption on, every object Baton stores (findings, report bodies, drafts, reports, provenance) is
 * sealed as an encrypted Temporal Payload — AES-256-GCM under the current key, its key id beside it —
 * so neither the Temporal server nor the bucket holds plaintext, and key rotation works as for history.
 *
 * A sealed object is {@link SEALED_MAGIC} followed by the serialized encrypted Payload. The object's
 * key is inside the ciphertext: an object moved to another key (a report swapped for another) does
 * not open. An object without the magic (stored before encryption was turned on) is read as it is.
 */
import { temporal } from '@temporalio/proto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { storeOptionsFromEnv } from '../activities/options';
import { openStores, type Sealer, type Stores } from '../activities/store';
import { AesGcmCodec, encryptionFromEnv, type EncryptionKeyring } from './codec';

/** What a sealed object starts with. */
export const SEALED_MAGIC = Buffer.from('baton-sealed-v1\n', 'utf8');
/** Metadata key of the inner payload naming the object key it was sealed for. */
const OBJECT_KEY_METADATA = 'baton-object-key';

const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8');

/** Seals and opens objects with the payload codec's keys. */
export function sealerFor(keyring: EncryptionKeyring): Sealer {
  const codec = new AesGcmCodec(keyring);
  return {
    seal(key, body) {
      const sealed = codec.encrypt({
        metadata: { encoding: utf8('binary/plain'), [OBJECT_KEY_METADATA]: utf8(key) },
        data: body,
      });
      return Buffer.concat([SEALED_MAGIC, temporal.api.common.v1.Payload.encode(sealed).finish()]);
    },
    open(key, body) {
      if (!body.subarray(0, SEALED_MAGIC.length).equals(SEALED_MAGIC)) return body;
      let outer: temporal.api.common.v1.Payload;
      try {
        outer = temporal.api.common.v1.Payload.decode(body.subarray(SEALED_MAGIC.length));
      } catch {
        throw new Error(`object ${key} is marked sealed but is not a sealed payload: it was damaged`);
      }
      const inner = codec.decrypt(outer);
      const sealedFor = Buffer.from(inner.metadata?.[OBJECT_KEY_METADATA] ?? []).toString('utf8');
      if (sealedFor !== key) {
        throw new Error(`object ${key} was sealed for another key ("${sealedFor.slice(0, 80)}"): refused`);
      }
      return Buffer.from(inner.data ?? []);
    },
  };
}

/**
 * The workers' stores as `env` configures them, sealed when payload encryption is on: how the CLI,
 * the inbox and the audit read drafts and reports. Throws an error naming the variable on a bad setting.
 */
export function storesFromEnv(env: NodeJS.ProcessEnv = process.env): Stores {
  const keyring = encryptionFromEnv(env);
  return openStores({ ...storeOptionsFromEnv(env), ...(keyring ? { sealer: sealerFor(keyring) } : {}) });
}

/**
 * Reads a report (or its provenance) at the location its publish answered: an `s3://` address
 * through the workers' store, a file path (the local store's, or a copy given on the command line)
 * from this disk; either opened with the payload keys when `env` has them. Undefined when there is
 * no such object.
 */
export function reportReader(
  env: NodeJS.ProcessEnv = process.env,
): (location: string) => Promise<Buffer | undefined> {
  const keyring = encryptionFromEnv(env);
  const sealer = keyring && sealerFor(keyring);
  let bucket: Stores | undefined;
  return async (location) => {
    if (location.startsWith('s3://')) {
      bucket ??= storesFromEnv(env);
      return bucket.reports.get(bucket.reports.keyAt(location));
    }
    let body: Buffer;
    try {
      body = await fs.readFile(location);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return sealer ? sealer.open(path.basename(location), body) : body;
  };
}
