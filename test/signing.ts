/**
 * Approvers with real keys, for tests and recorded histories of signed decisions: node:crypto key
 * pairs, a copy of the fixture config whose approvers list them (with the playbooks of
 * test/fixtures/history-playbooks, `signed` among them), and decisions signed for a task's open
 * gate by the code `npm run baton -- approve --key` runs (cli/baton-sign.ts).
 */
import type { Client } from '@temporalio/client';
import { generateKeyPairSync, sign } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { signDecision, type Signer } from '../cli/baton-sign';
import { sshEd25519Blob } from '../config/schema';
import type { SignedDecision } from '../contract/decision';
import type { DecideRequest } from '../contract/messages';
import { FIXTURE_CONFIG } from './helpers';

/** An Ed25519 key pair made with node:crypto, and its public half as an approvers.yaml line. */
export function nodeSigner(comment: string): Signer & { line: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = new Uint8Array(Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'));
  return {
    publicKey: raw,
    line: `ssh-ed25519 ${Buffer.from(sshEd25519Blob(raw)).toString('base64')} ${comment}`,
    sign: (message) => Promise.resolve(new Uint8Array(sign(null, message, privateKey))),
  };
}

/**
 * The fixture config with the history playbooks, in a temporary folder, its approvers (alice, bob,
 * carol, dave; groups reviewers and leads as in the fixture) listing the keys given per person.
 */
export async function signedConfig(keys: Record<string, Signer & { line: string }>): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-signed-config-'));
  await fs.cp(FIXTURE_CONFIG, dir, { recursive: true });
  await fs.cp(path.join(__dirname, 'fixtures', 'history-playbooks'), path.join(dir, 'playbooks'), {
    recursive: true,
  });
  const person = (id: string): string =>
    `  - id: ${id}\n    name: ${id}\n${keys[id] ? `    keys: ['${keys[id].line}']\n` : ''}`;
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
