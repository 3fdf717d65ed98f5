/**
 * The publishing worker's signature on a report's provenance: an Ed25519 key of the worker's own, so
 * an audit tells a report Baton published from one written by any other process.
 *
 * The private key comes from `BATON_PUBLISHER_KEY` (the key's text) or `BATON_PUBLISHER_KEY_FILE` (a
 * path), as PKCS#8 PEM or as an unencrypted OpenSSH private key (`ssh-keygen -t ed25519 -N ''`). It
 * stays in the worker process: it is never logged, and never enters a workflow input, result or
 * history. The public keys an audit accepts are listed in reviewed config (`config/publishers.yaml`).
 *
 * The signature covers `baton-provenance/1\n` followed by the canonical JSON (keys sorted) of the
 * provenance without its `signature` field, `contentHash` included.
 */
import { createHash, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import {
  PublishersFileSchema,
  readEd25519PublicKeyLine,
  sshEd25519Blob,
  type Publisher,
} from '../config/schema';
import type { ConfigSnapshot } from '../config/schema';
import { sealedText } from '../contract/children';
import type { Provenance } from '../contract/messages';
import { readSigningKey } from '../lib/ssh-key';
import { canonicalJson } from './config';

/** The signature embedded in a published provenance. */
export interface ProvenanceSignature {
  /** The signing key's fingerprint as `ssh-keygen -l` prints it: `SHA256:<base64>`. */
  keyId: string;
  alg: 'ed25519';
  /** The Ed25519 signature, base64. */
  value: string;
}

/** A provenance as published: signed when the worker has a publisher key. */
export type SignedProvenance = Provenance & { signature?: ProvenanceSignature };

/** The worker's signing key. */
export interface PublisherKey {
  keyId: string;
  privateKey: KeyObject;
  /** The public half as an OpenSSH line, the form `config/publishers.yaml` lists. */
  publicKey: string;
}

const DOMAIN = 'baton-provenance/1\n';

/** The fingerprint `ssh-keygen -l` prints for a raw Ed25519 public key: `SHA256:<base64, unpadded>`. */
const keyIdOf = (raw: Uint8Array): string =>
  `SHA256:${createHash('sha256').update(sshEd25519Blob(raw)).digest('base64').replace(/=+$/, '')}`;

/**
 * Parses a private key's text (PKCS#8 PEM, or OpenSSH as `ssh-keygen -t ed25519` writes it:
 * lib/ssh-key.ts). `where` names it in errors, never its content. @throws Error saying what is wrong
 */
export function parsePublisherKey(text: string, where: string): PublisherKey {
  const { privateKey, publicKey } = readSigningKey(text, where);
  const line = `ssh-ed25519 ${Buffer.from(sshEd25519Blob(publicKey)).toString('base64')} baton-publisher`;
  return { keyId: keyIdOf(publicKey), privateKey, publicKey: line };
}

/**
 * The publisher key from `BATON_PUBLISHER_KEY` or `BATON_PUBLISHER_KEY_FILE`; none when neither is
 * set (the worker then publishes reports labelled "unsigned provenance", which the audit refuses).
 */
export function publisherKeyFromEnv(env: NodeJS.ProcessEnv): { publisherKey?: PublisherKey } {
  const inline = env.BATON_PUBLISHER_KEY;
  const file = env.BATON_PUBLISHER_KEY_FILE;
  if (inline && file) throw new Error('set BATON_PUBLISHER_KEY or BATON_PUBLISHER_KEY_FILE, not both');
  if (inline) return { publisherKey: parsePublisherKey(inline, 'BATON_PUBLISHER_KEY') };
  if (!file) return {};
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`BATON_PUBLISHER_KEY_FILE=${file} cannot be read: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return { publisherKey: parsePublisherKey(text, `BATON_PUBLISHER_KEY_FILE=${file}`) };
}

/** A fresh key, with its private half as PKCS#8 PEM. */
export function generatePublisherKey(): { key: PublisherKey; pem: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { key: parsePublisherKey(pem, 'a generated key'), pem };
}

/**
 * The key `npm start` signs with when none is configured: `file` (git-ignored, under `.baton/`),
 * made on first use (owner-only), with its public half beside it as `<file>.pub`.
 */
export async function localPublisherKey(file: string): Promise<{ key: PublisherKey; created: boolean }> {
  try {
    return { key: parsePublisherKey(await fs.readFile(file, 'utf8'), file), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const { key, pem } = generatePublisherKey();
  await fs.mkdir(path.dirname(file), { recursive: true });
  // Written whole, then linked into place: a process that made it first wins, and nobody reads half a key.
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, pem, { mode: 0o600 });
  try {
    await fs.link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return localPublisherKey(file);
    throw err;
  } finally {
    await fs.rm(tmp, { force: true });
  }
  await fs.writeFile(file.replace(/(\.key)?$/, '.pub'), `${key.publicKey}\n`, 'utf8');
  return { key, created: true };
}

/** What the signature covers: the provenance without its signature (canonical JSON leaves out `undefined`). */
const signedBytes = (provenance: SignedProvenance): Buffer =>
  Buffer.from(DOMAIN + canonicalJson({ ...provenance, signature: undefined }));

/** The provenance with the worker's signature over everything else in it. */
export function signProvenance(provenance: Provenance, key: PublisherKey): SignedProvenance {
  const value = sign(null, signedBytes(provenance), key.privateKey).toString('base64');
  return { ...provenance, signature: { keyId: key.keyId, alg: 'ed25519', value } };
}

/** The outcome of checking a provenance's signature against the listed publishers. */
export type SignatureCheck =
  | { ok: true; publisher: string; keyId: string; reason: string }
  | { ok: false; check: 'unsigned' | 'unknown-key' | 'bad-signature'; keyId: string | null; reason: string };

/** Checks the signature of a provenance against the publishers listed in config (`where` names the list). */
export function checkProvenanceSignature(
  provenance: SignedProvenance,
  publishers: readonly Publisher[],
  where: string,
): SignatureCheck {
  const sig = provenance.signature as Partial<ProvenanceSignature> | undefined;
  if (!sig) {
    return {
      ok: false,
      check: 'unsigned',
      keyId: null,
      reason:
        'the provenance carries no publisher signature: nothing shows that a Baton worker wrote this file (a worker without BATON_PUBLISHER_KEY publishes unsigned)',
    };
  }
  const keyId = typeof sig.keyId === 'string' ? sig.keyId : null;
  if (sig.alg !== 'ed25519' || !keyId || typeof sig.value !== 'string') {
    return {
      ok: false,
      check: 'bad-signature',
      keyId,
      reason: 'the provenance signature is malformed (want keyId, alg "ed25519", value)',
    };
  }
  const listed = publishers.map((p) => ({ p, ...publicKeyOf(p.publicKey) })).find((k) => k.keyId === keyId);
  if (!listed) {
    return {
      ok: false,
      check: 'unknown-key',
      keyId,
      reason: `the provenance is signed with key ${keyId}, which ${where} does not list: if that worker is trusted, add its public key there (through review)`,
    };
  }
  const good = verify(null, signedBytes(provenance), listed.key, Buffer.from(sig.value, 'base64'));
  return good
    ? {
        ok: true,
        publisher: listed.p.id,
        keyId,
        reason: `the provenance is signed by publisher "${listed.p.id}" (ed25519 key ${keyId}, listed in ${where})`,
      }
    : {
        ok: false,
        check: 'bad-signature',
        keyId,
        reason: `the provenance signature does not verify with key ${keyId} ("${listed.p.id}" in ${where}): the provenance was changed after it was signed, or the signature was forged`,
      };
}

/**
 * The snapshot sealed with the worker's key: a signature over everything else in it
 * (contract/children.ts, `sealedText`), which child workflows have checked before they run.
 */
export function sealSnapshot(snapshot: ConfigSnapshot, key: PublisherKey): ConfigSnapshot {
  const value = sign(null, Buffer.from(sealedText(snapshot)), key.privateKey).toString('base64');
  return { ...snapshot, seal: { alg: 'ed25519', keyId: key.keyId, value } };
}

/**
 * Whether a snapshot's seal verifies with one of `publishers`' keys (this worker's own and those
 * config/publishers.yaml lists), and if not, why.
 */
export function checkSnapshotSeal(
  snapshot: ConfigSnapshot,
  publishers: readonly Publisher[],
): { ok: true; keyId: string } | { ok: false; reason: string } {
  const seal = snapshot.seal as Partial<NonNullable<ConfigSnapshot['seal']>> | undefined;
  if (!seal) return { ok: false, reason: 'the snapshot carries no seal' };
  if (seal.alg !== 'ed25519' || typeof seal.keyId !== 'string' || typeof seal.value !== 'string')
    return { ok: false, reason: 'the seal is malformed (want alg "ed25519", keyId, value)' };
  const listed = publishers.map((p) => publicKeyOf(p.publicKey)).find((k) => k.keyId === seal.keyId);
  if (!listed)
    return {
      ok: false,
      reason: `the seal's key ${seal.keyId} is neither this worker's publisher key nor one config/publishers.yaml lists`,
    };
  return verify(null, Buffer.from(sealedText(snapshot)), listed.key, Buffer.from(seal.value, 'base64'))
    ? { ok: true, keyId: seal.keyId }
    : {
        ok: false,
        reason: `the seal does not verify with key ${seal.keyId}: the snapshot was changed after it was sealed, or the seal was forged`,
      };
}

/** An OpenSSH `ssh-ed25519` public key line as a key and its fingerprint. */
function publicKeyOf(line: string): { key: KeyObject; keyId: string } {
  const read = readEd25519PublicKeyLine(line);
  if ('error' in read) throw new Error(read.error);
  const x = Buffer.from(read.key).toString('base64url');
  return {
    key: createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x } }),
    keyId: keyIdOf(read.key),
  };
}

/** Reads and validates a publishers file (`config/publishers.yaml`). @throws Error saying what is wrong */
export async function loadPublishers(file: string): Promise<Publisher[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the publishers file ${file}: ${(err as Error).message}`, { cause: err });
  }
  let value: unknown;
  try {
    value = YAML.parse(text) ?? {};
  } catch (err) {
    throw new Error(`invalid publishers file ${file}: YAML: ${(err as Error).message.split('\n')[0]}`, {
      cause: err,
    });
  }
  const parsed = PublishersFileSchema.safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid publishers file ${file}: ${problems.join('; ')}`);
  }
  return parsed.data.publishers;
}
