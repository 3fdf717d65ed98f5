/**
 * `approvers.yaml`: the people who may decide at a gate, their public keys, and the groups playbooks
 * name them by.
 */
import { base64, hex } from '@scure/base';
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
