/**
 * Signed decisions for `npm run baton`: the approver's key (a file, or ssh-agent), and the decision
 * statement signed for the gate opening the task has pending (contract/decision.ts says what is
 * signed and how the workflow checks it).
 */
import type { Client } from '@temporalio/client';
import { readFile } from 'node:fs/promises';
import { statementFor } from '../client';
import { readEd25519PublicKeyLine } from '../config/schema';
import { keyFingerprint, statementBytes, type SignedDecision } from '../contract/decision';
import type { DecideRequest } from '../contract/messages';
import { agentKeys, agentSign } from '../lib/ssh-agent';
import { readSigningKey, signWith } from '../lib/ssh-key';

/** Something that signs with an approver's Ed25519 key. */
export interface Signer {
  /** The raw 32-byte public key. */
  publicKey: Uint8Array;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/** Where the approver's key is: a private key file (`--key`, `BATON_APPROVER_KEY`) or ssh-agent (`--agent`). */
export interface KeyOptions {
  key?: string;
  agent?: boolean;
}

/** A signer reading the private key file at `file` (OpenSSH or PKCS#8 PEM, unencrypted). */
async function fileSigner(file: string): Promise<Signer> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the key ${file}: ${(err as Error).message}`, { cause: err });
  }
  const key = readSigningKey(text, file);
  return { publicKey: key.publicKey, sign: (message) => Promise.resolve(signWith(key, message)) };
}

/**
 * A signer through the ssh-agent at `SSH_AUTH_SOCK`: its only Ed25519 key, or, with `pubFile`, the
 * one whose public half is in that file (`<key>.pub`, or a private key's path with `.pub` added).
 */
async function agentSigner(socket: string | undefined, pubFile: string | undefined): Promise<Signer> {
  if (!socket) throw new Error('--agent needs a running ssh-agent (SSH_AUTH_SOCK is not set)');
  const keys = await agentKeys(socket);
  let candidates = keys;
  if (pubFile) {
    const path = pubFile.endsWith('.pub') ? pubFile : `${pubFile}.pub`;
    const read = readEd25519PublicKeyLine(await readFile(path, 'utf8'));
    if ('error' in read) throw new Error(`${path}: ${read.error}`);
    const wanted = keyFingerprint(read.key);
    candidates = keys.filter((k) => keyFingerprint(k.publicKey) === wanted);
    if (!candidates.length)
      throw new Error(`ssh-agent does not hold the key ${wanted} (${path}): ssh-add it`);
  }
  if (candidates.length !== 1) {
    throw new Error(
      candidates.length
        ? `ssh-agent holds ${candidates.length} Ed25519 keys (${candidates.map((k) => keyFingerprint(k.publicKey)).join(', ')}): name yours with --key <its .pub file>`
        : 'ssh-agent holds no Ed25519 key: ssh-add yours (ssh-keygen -t ed25519 makes one)',
    );
  }
  const [chosen] = candidates as [(typeof candidates)[number]];
  return { publicKey: chosen.publicKey, sign: (message) => agentSign(socket, chosen.blob, message) };
}

/** The signer the options and environment name, or none (the decision then goes unsigned). */
export function signerFrom(options: KeyOptions, env: NodeJS.ProcessEnv): Promise<Signer> | undefined {
  const key = options.key ?? env.BATON_APPROVER_KEY;
  if (options.agent) return agentSigner(env.SSH_AUTH_SOCK, key);
  return key ? fileSigner(key) : undefined;
}

/**
 * `request` signed for the gate opening the task has pending now: the statement `statementFor`
 * builds (client/decide.ts), signed. @throws Error when no gate is pending, another gate is, or the task cannot say which
 * opening it is (a worker older than signed decisions)
 */
export async function signDecision(
  client: Client,
  workflowId: string,
  request: DecideRequest,
  signer: Signer,
  timeoutMs?: number,
): Promise<SignedDecision> {
  const statement = await statementFor(client, workflowId, request, timeoutMs);
  const value = Buffer.from(await signer.sign(statementBytes(statement))).toString('base64');
  return { ...statement, signature: { alg: 'ed25519', key: keyFingerprint(signer.publicKey), value } };
}

/**
 * A signed decision as JSON for `temporal workflow update execute --name decide --input` (or, with
 * `forSignal`, without `decision`, for `temporal workflow signal --name <decision> --input`). ASCII
 * only (other characters as `\uXXXX`), so no terminal or sanitizer can change what was signed.
 */
export function signedJson(decision: SignedDecision, forSignal: boolean): string {
  const json = JSON.stringify(forSignal ? { ...decision, decision: undefined } : decision);
  return json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
