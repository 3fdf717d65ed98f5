/**
 * Approvers with real keys, for tests and recorded histories of signed decisions: node:crypto key
 * pairs, a copy of the fixture config whose approvers list them (with the playbooks of
 * test/fixtures/history-playbooks, `signed` among them), and decisions signed for a task's open
 * gate by the code `npm run baton -- approve --key` runs (cli/baton-sign.ts); and passkeys, an
 * authenticator in Node that asserts as a browser's would (P-256, DER signatures).
 */
import { ed25519 } from '@noble/curves/ed25519';
import { p256 } from '@noble/curves/p256';
import { sha256 } from '@noble/hashes/sha2';
import type { Client } from '@temporalio/client';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { signDecision, type Signer } from '../cli/baton-sign';
import { statementFor } from '../client';
import { passkeyLine, sshEd25519Blob, type Passkey } from '../config/schema';
import { statementChallenge, type DecisionStatement, type SignedDecision } from '../contract/decision';
import type { DecideRequest, DecisionSignature } from '../contract/messages';
import { FIXTURE_CONFIG } from './helpers';

/**
 * An Ed25519 key pair made with node:crypto: its public half as an approvers.yaml line, its private
 * half as a PKCS#8 PEM (what `--key` reads from a file).
 */
export function nodeSigner(comment: string): Signer & { line: string; pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = new Uint8Array(Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'));
  return {
    publicKey: raw,
    line: `ssh-ed25519 ${Buffer.from(sshEd25519Blob(raw)).toString('base64')} ${comment}`,
    pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    sign: (message) => Promise.resolve(new Uint8Array(sign(null, message, privateKey))),
  };
}

/**
 * The fixture config with the history playbooks, in a temporary folder, its approvers (alice, bob,
 * carol, dave; groups reviewers and leads as in the fixture) listing the keys given per person.
 */
export async function signedConfig(
  keys: Record<string, Signer & { line: string }>,
  passkeys: Record<string, readonly string[]> = {},
): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-signed-config-'));
  await fs.cp(FIXTURE_CONFIG, dir, { recursive: true });
  await fs.cp(path.join(__dirname, 'fixtures', 'history-playbooks'), path.join(dir, 'playbooks'), {
    recursive: true,
  });
  const person = (id: string): string =>
    `  - id: ${id}\n    name: ${id}\n${keys[id] ? `    keys: ['${keys[id].line}']\n` : ''}${
      passkeys[id]?.length ? `    passkeys: [${passkeys[id].map((l) => `'${l}'`).join(', ')}]\n` : ''
    }`;
  const yaml = `people:\n${['alice', 'bob', 'carol', 'dave'].map(person).join('')}groups:\n  - { id: reviewers, members: [alice, bob] }\n  - { id: leads, members: [carol] }\n`;
  await fs.writeFile(path.join(dir, 'approvers.yaml'), yaml);
  return dir;
}

/** `request` signed by `signer` for the gate task `workflowId` has open now: an Update's argument. */
export const signedFor = (
  client: Client,
  workflowId: string,
  request: DecideRequest,
  signer: Signer,
): Promise<SignedDecision> => signDecision(client, workflowId, request, signer);

/** A decision as a signal's payload: the decision is the signal's name. */
export const asSignal = <T extends { decision: string }>({
  decision: _decision,
  ...payload
}: T): Omit<T, 'decision'> => payload;

/** What a test may change in an assertion, as a hostile or broken browser would. */
export interface AssertionOptions {
  origin?: string;
  type?: string;
  /** The authenticator data's flags (default 0x05: user present and verified). */
  flags?: number;
  /** Assert for this relying party instead of the passkey's. */
  rpId?: string;
  /** Sign this challenge instead of the statement's. */
  challenge?: string;
}

/** A passkey made in Node: its approvers.yaml line, and assertions as an authenticator signs them. */
export interface NodePasskey {
  passkey: Passkey;
  line: string;
  assert(statement: DecisionStatement, options?: AssertionOptions): DecisionSignature;
}

const b64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

/**
 * A P-256 passkey (or Ed25519, with `alg`) for `rpId`, asserting from `origin`: authenticator data (rp id hash, flags,
 * counter), client data JSON with the statement's challenge, and an ECDSA signature in DER over
 * the data and the client data's hash (Ed25519: a 64-byte signature), as WebAuthn authenticators make them.
 */
export function nodePasskey(
  comment: string,
  rpId = 'localhost',
  origin = 'http://localhost:8787',
  alg: Passkey['alg'] = 'es256',
): NodePasskey {
  const curve = alg === 'es256' ? p256 : ed25519;
  const secret = curve.utils.randomSecretKey();
  const passkey: Passkey = {
    alg,
    rpId,
    credential: b64url(randomBytes(32)),
    publicKey: Buffer.from(
      alg === 'es256' ? p256.getPublicKey(secret, true) : ed25519.getPublicKey(secret),
    ).toString('hex'),
  };
  let counter = 0;
  return {
    passkey,
    line: passkeyLine(passkey, comment),
    assert(statement, options = {}) {
      const authenticatorData = new Uint8Array(37);
      authenticatorData.set(sha256(new TextEncoder().encode(options.rpId ?? rpId)));
      authenticatorData[32] = options.flags ?? 0x05;
      new DataView(authenticatorData.buffer).setUint32(33, ++counter);
      const clientData = new TextEncoder().encode(
        JSON.stringify({
          type: options.type ?? 'webauthn.get',
          challenge: options.challenge ?? statementChallenge(statement),
          origin: options.origin ?? origin,
          crossOrigin: false,
        }),
      );
      const signed = new Uint8Array([...authenticatorData, ...sha256(clientData)]);
      // ES256: ECDSA over sha256 of the data, DER; Ed25519 (EdDSA): over the data itself.
      const der =
        alg === 'es256'
          ? p256.sign(sha256(signed), secret, { prehash: false, lowS: false }).toBytes('der')
          : ed25519.sign(signed, secret);
      return {
        alg: 'webauthn',
        credential: passkey.credential,
        authenticatorData: b64url(authenticatorData),
        clientDataJSON: b64url(clientData),
        value: b64url(der),
      };
    },
  };
}

/** `request` asserted with `passkey` for the gate task `workflowId` has open now: an Update's argument. */
export async function passkeySignedFor(
  client: Client,
  workflowId: string,
  request: DecideRequest,
  passkey: NodePasskey,
): Promise<SignedDecision> {
  const statement = await statementFor(client, workflowId, request);
  return { ...statement, signature: passkey.assert(statement) };
}
