/**
 * `approvers.yaml`: the people who may decide at a gate, their public keys, and the groups playbooks
 * name them by.
 */
import { p256 } from '@noble/curves/p256';
import { base64, base64urlnopad, hex } from '@scure/base';
import { z } from 'zod';
import { IdSchema } from './common';

const SSH_ED25519 = 'ssh-ed25519';

/** `bytes` as an SSH wire-format string: a 4-byte big-endian length, then the bytes (RFC 4251). */
function sshString(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

/** The OpenSSH key blob of a raw 32-byte Ed25519 public key: what a `.pub` line carries in base64. */
export function sshEd25519Blob(raw: Uint8Array): Uint8Array {
  const type = sshString(new TextEncoder().encode(SSH_ED25519));
  const key = sshString(raw);
  const blob = new Uint8Array(type.length + key.length);
  blob.set(type);
  blob.set(key, type.length);
  return blob;
}

/**
 * The raw 32-byte Ed25519 public key of an OpenSSH public-key line (`ssh-ed25519 AAAAC3… [comment]`,
 * as `ssh-keygen -t ed25519` writes to `<key>.pub`), or what is wrong with the line. Pure code
 * (no Buffer): the schema below runs it, and so may workflow code.
 */
export function readEd25519PublicKeyLine(line: string): { key: Uint8Array } | { error: string } {
  const [type, data] = line.trim().split(/\s+/);
  if (type !== SSH_ED25519 || !data)
    return { error: 'must be an Ed25519 public key in OpenSSH format ("ssh-ed25519 AAAA… comment")' };
  let blob: Uint8Array;
  try {
    blob = base64.decode(data);
  } catch {
    return { error: 'the key after "ssh-ed25519" is not valid base64' };
  }
  // The blob must be exactly string("ssh-ed25519") string(32 bytes): compare with the one rebuilt.
  const raw = blob.subarray(blob.length - 32);
  const expected = sshEd25519Blob(raw);
  if (blob.length !== expected.length || expected.some((b, i) => b !== blob[i]))
    return { error: 'the base64 part is not an Ed25519 public key (a damaged or truncated line?)' };
  return { key: raw };
}

/** One public key of a person, as an OpenSSH line; config:check refuses a line that is not one. */
export const Ed25519PublicKeyLineSchema = z
  .string()
  .max(2000)
  .superRefine((line, ctx) => {
    const read = readEd25519PublicKeyLine(line);
    if ('error' in read) ctx.addIssue({ code: 'custom', message: read.error });
  });

/**
 * A passkey (WebAuthn credential) a person signs decisions with in the inbox: what approvers.yaml
 * lists, and what a task's config snapshot carries for it.
 */
export interface Passkey {
  /** `es256` (ECDSA over P-256 with SHA-256, COSE -7) or `ed25519` (EdDSA, COSE -8). */
  alg: 'es256' | 'ed25519';
  /** The relying party the credential is scoped to: the inbox's host name (e.g. `localhost`). */
  rpId: string;
  /** The credential id, base64url without padding: how an assertion names the credential it used. */
  credential: string;
  /** The public key, hex: a compressed SEC1 P-256 point (33 bytes), or 32 Ed25519 bytes. */
  publicKey: string;
}

/** How a passkey line starts, by algorithm. */
export const PASSKEY_LINE_TYPES = { es256: 'webauthn-es256', ed25519: 'webauthn-ed25519' } as const;
/** The longest credential id WebAuthn allows (bytes). */
export const MAX_CREDENTIAL_ID_BYTES = 1023;
/** A relying party id: a DNS host name (WebAuthn refuses IP addresses), lower case. */
const RP_ID = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** `bytes` as base64url without padding (`@scure/base`). */
const decodeB64url = (text: string): Uint8Array | undefined => {
  try {
    return base64urlnopad.decode(text);
  } catch {
    return undefined;
  }
};

/**
 * `key` as a passkey's public key for `alg`, hex: a P-256 point (SEC1, 33 or 65 bytes) compressed,
 * 32 Ed25519 bytes as they are; undefined when it is not one.
 */
export function passkeyPublicKey(alg: Passkey['alg'], key: Uint8Array): string | undefined {
  if (alg === 'ed25519') return key.length === 32 ? hex.encode(key) : undefined;
  if (key.length !== 33 && key.length !== 65) return undefined;
  try {
    return hex.encode(p256.Point.fromHex(key).toBytes(true));
  } catch {
    return undefined;
  }
}

/**
 * A passkey line of approvers.yaml, as the inbox's enrolment page prints it:
 * `webauthn-es256 <rp id> <credential id> <public key> [comment]`, the credential id and the public
 * key (SEC1 for P-256, compressed; raw for `webauthn-ed25519`) in base64url without padding. Or
 * what is wrong with the line. Pure code: the schema below runs it.
 */
export function readPasskeyLine(line: string): { passkey: Passkey } | { error: string } {
  const [type, rpId, credential, key] = line.trim().split(/\s+/);
  const alg = (Object.keys(PASSKEY_LINE_TYPES) as Passkey['alg'][]).find(
    (a) => PASSKEY_LINE_TYPES[a] === type,
  );
  if (!alg || !rpId || !credential || !key)
    return {
      error:
        'must be a passkey line "webauthn-es256 <rp id> <credential id> <public key> [comment]" (or webauthn-ed25519), as the inbox\'s enrolment page prints it',
    };
  if (!RP_ID.test(rpId) || /^[\d.]+$/.test(rpId))
    return {
      error: `the relying party id "${rpId.slice(0, 60)}" is not a lower-case host name (e.g. inbox.example.com)`,
    };
  const id = decodeB64url(credential);
  if (!id || id.length < 16 || id.length > MAX_CREDENTIAL_ID_BYTES)
    return { error: `the credential id is not 16 to ${MAX_CREDENTIAL_ID_BYTES} bytes of base64url` };
  const raw = decodeB64url(key);
  const publicKey = raw && passkeyPublicKey(alg, raw);
  if (!publicKey)
    return {
      error:
        alg === 'es256'
          ? 'the public key is not a P-256 point in base64url (33 bytes compressed, or 65)'
          : 'the public key is not 32 bytes of Ed25519 in base64url',
    };
  return { passkey: { alg, rpId, credential, publicKey } };
}

/** The approvers.yaml line for a passkey: what {@link readPasskeyLine} reads back. */
export function passkeyLine(passkey: Passkey, comment?: string): string {
  const key = base64urlnopad.encode(hex.decode(passkey.publicKey));
  const words = [PASSKEY_LINE_TYPES[passkey.alg], passkey.rpId, passkey.credential, key];
  const note = comment?.replace(/[^\w@.+-]+/g, '-').slice(0, 80);
  return [...words, ...(note ? [note] : [])].join(' ');
}

/** One passkey of a person, as a line; config:check refuses a line that is not one. */
export const PasskeyLineSchema = z
  .string()
  .max(3000)
  .superRefine((line, ctx) => {
    const read = readPasskeyLine(line);
    if ('error' in read) ctx.addIssue({ code: 'custom', message: read.error });
  });

export const ApproversFileSchema = z
  .object({
    people: z
      .array(
        z
          .object({
            id: z.string().regex(/^[^\s*:]{1,200}$/, 'must be an identity without spaces, "*" or ":"'),
            name: z.string().min(1),
            /**
             * The person's Ed25519 public keys (OpenSSH lines): a decision counts as theirs only when
             * signed with one of them (contract/decision.ts).
             */
            keys: z.array(Ed25519PublicKeyLineSchema).max(20).optional(),
            /**
             * The person's passkeys (lines the inbox's enrolment page prints): a decision made in
             * the inbox counts as theirs only when asserted with one of them (contract/decision.ts).
             */
            passkeys: z.array(PasskeyLineSchema).max(20).optional(),
          })
          .strict(),
      )
      .default([]),
    groups: z
      .array(z.object({ id: IdSchema, members: z.array(z.string().min(1)).min(1) }).strict())
      .default([]),
  })
  .strict()
  .superRefine((file, ctx) => {
    const people = new Set<string>();
    file.people.forEach((p, i) => {
      if (people.has(p.id))
        ctx.addIssue({ code: 'custom', path: ['people', i, 'id'], message: `duplicate person "${p.id}"` });
      people.add(p.id);
    });
    // One key, one person: a key listed for two people would let its holder decide as both.
    const owners = new Map<string, string>();
    file.people.forEach((p, i) =>
      p.keys?.forEach((line, j) => {
        const read = readEd25519PublicKeyLine(line);
        if (!('key' in read)) return;
        const owner = owners.get(hex.encode(read.key));
        if (owner !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: ['people', i, 'keys', j],
            message: `this key is already listed for "${owner}": a key belongs to one person`,
          });
        else owners.set(hex.encode(read.key), p.id);
      }),
    );
    // One passkey, one person, by credential id and by public key alike.
    const holders = new Map<string, string>();
    file.people.forEach((p, i) =>
      p.passkeys?.forEach((line, j) => {
        const read = readPasskeyLine(line);
        if (!('passkey' in read)) return;
        const { credential, publicKey } = read.passkey;
        const ids = [`credential ${credential}`, `key ${publicKey}`];
        const holder = ids.map((k) => holders.get(k)).find((h) => h !== undefined);
        if (holder !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: ['people', i, 'passkeys', j],
            message: `this passkey is already listed for "${holder}": a passkey belongs to one person`,
          });
        ids.forEach((k) => holders.set(k, p.id));
      }),
    );
    const groups = new Set<string>();
    file.groups.forEach((g, i) => {
      if (groups.has(g.id))
        ctx.addIssue({ code: 'custom', path: ['groups', i, 'id'], message: `duplicate group "${g.id}"` });
      groups.add(g.id);
      g.members.forEach((m, j) => {
        if (!people.has(m))
          ctx.addIssue({
            code: 'custom',
            path: ['groups', i, 'members', j],
            message: `"${m}" is not declared under people`,
          });
      });
    });
  });
export type ApproversFile = z.infer<typeof ApproversFileSchema>;

/** Expands group references to people; `"*"` stays as is. Unknown references are left out (config:check reports them). */
export function resolveApprovers(refs: readonly string[], file: ApproversFile): string[] {
  const out = new Set<string>();
  for (const ref of refs) {
    if (ref === '*') out.add('*');
    else if (ref.startsWith('group:'))
      file.groups.find((g) => g.id === ref.slice(6))?.members.forEach((m) => out.add(m));
    else if (file.people.some((p) => p.id === ref)) out.add(ref);
  }
  return [...out];
}

/**
 * Each person's raw Ed25519 public keys, hex, for the people in `ids` (all people when it holds
 * `"*"`) who list keys: what a task's config snapshot carries, so workflow code never reads OpenSSH.
 */
export function approverKeys(file: ApproversFile, ids: Iterable<string>): Record<string, string[]> {
  const wanted = new Set(ids);
  const out: Record<string, string[]> = {};
  for (const p of file.people) {
    if (!p.keys?.length || !(wanted.has('*') || wanted.has(p.id))) continue;
    out[p.id] = p.keys.flatMap((line) => {
      const read = readEd25519PublicKeyLine(line);
      return 'key' in read ? [hex.encode(read.key)] : [];
    });
  }
  return out;
}

/**
 * Each person's passkeys, for the people in `ids` (all people when it holds `"*"`) who list any:
 * what a task's config snapshot carries next to {@link approverKeys}.
 */
export function approverPasskeys(file: ApproversFile, ids: Iterable<string>): Record<string, Passkey[]> {
  const wanted = new Set(ids);
  const out: Record<string, Passkey[]> = {};
  for (const p of file.people) {
    if (!p.passkeys?.length || !(wanted.has('*') || wanted.has(p.id))) continue;
    out[p.id] = p.passkeys.flatMap((line) => {
      const read = readPasskeyLine(line);
      return 'passkey' in read ? [read.passkey] : [];
    });
  }
  return out;
}
