/**
 * Passkey decisions (WebAuthn), tried as an attacker would first: a tampered signature, a changed
 * comment, another person's passkey, an assertion for another relying party, origin or challenge,
 * one made at sign-up rather than sign-in, one without user presence, one for an older opening of
 * the gate, malformed fields — each refused by `verifyDecision` with a reason that says which. Then
 * what an honest authenticator makes verifies (high-S ECDSA signatures too, as WebAuthn allows),
 * the offline check of a recorded approval, and approvers.yaml's passkey lines: read, refused with
 * the file and path when wrong, one passkey per person, carried by the task's config snapshot.
 */
import { p256 } from '@noble/curves/p256';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, snapshotFor } from '../activities/config';
import { PROJECT_ROOT } from '../activities/options';
import { readPasskeyLine } from '../config/schema';
import {
  checkSignature,
  planSubject,
  verifyDecision,
  verifyDecisionKey,
  type DecisionStatement,
  type OpenGate,
} from '../contract/decision';
import { DecisionPayloadSchema, type DecisionSignature } from '../contract/messages';
import { asSignal, nodePasskey, type AssertionOptions, type NodePasskey } from './signing';

const alice = nodePasskey('alice-laptop');
const bob = nodePasskey('bob-phone');
const PASSKEYS = { alice: [alice.passkey], bob: [bob.passkey] };

const PLAN = {
  rationale: 'One angle.',
  steps: [{ id: 's1', agent: 'web', question: 'Q?', dependsOn: [], decompose: false }],
};
const OPEN: OpenGate = { workflowId: 'task-1', gate: 'plan', instance: 2, subject: planSubject(PLAN) };

const statementOf = (over: Partial<DecisionStatement> = {}): DecisionStatement => ({
  ...OPEN,
  decision: 'approve',
  by: 'alice',
  comment: 'Looks right.',
  at: '2026-12-07T01:00:00.000Z',
  ...over,
});

/** `statement` asserted with `key`, as the decide Update would carry it. */
function asserted(key: NodePasskey, over: Partial<DecisionStatement> = {}, options?: AssertionOptions) {
  const statement = statementOf(over);
  return { ...statement, signature: key.assert(statement, options) };
}

const verify = (payload: ReturnType<typeof asserted>) => verifyDecision(payload, OPEN, {}, PASSKEYS);

/** `b64` (base64url) with its byte at `index` changed. */
function flipped(b64: string, index: number): string {
  const bytes = Buffer.from(b64, 'base64url');
  bytes[index]! ^= 0x01;
  return bytes.toString('base64url');
}

describe('verifyDecision refuses a passkey decision an attacker sends', () => {
  test('a tampered signature', () => {
    const d = asserted(alice);
    const value = flipped(d.signature.value, 10);
    expect(verify({ ...d, signature: { ...d.signature, value } })).toEqual({
      ok: false,
      reason: expect.stringMatching(
        /^bad signature: the passkey assertion does not verify with alice's passkey/,
      ),
    });
  });

  test('changed authenticator data or client data (the signature covers both)', () => {
    const d = asserted(alice);
    const sig = d.signature as Extract<DecisionSignature, { alg: 'webauthn' }>;
    for (const signature of [
      { ...sig, authenticatorData: flipped(sig.authenticatorData, 32) },
      { ...sig, clientDataJSON: flipped(sig.clientDataJSON, 3) },
    ])
      expect(verify({ ...d, signature })).toMatchObject({
        ok: false,
        reason: expect.stringMatching(/^bad signature/),
      });
  });

  test('a comment changed after the passkey signed: the challenge is not the statement any more', () => {
    const d = asserted(alice);
    expect(verify({ ...d, comment: 'Ship it.' })).toEqual({
      ok: false,
      reason:
        'the passkey assertion was made for another challenge: it does not sign this decision statement',
    });
  });

  test("another person's passkey under alice's name", () => {
    expect(verify(asserted(bob))).toEqual({
      ok: false,
      reason: `no passkey of "alice" matches: the credential ${bob.passkey.credential.slice(0, 16)}… is not one of them`,
    });
    expect(verify(asserted(alice, { by: 'carol' }))).toEqual({
      ok: false,
      reason: 'no passkey of "carol" matches: config lists none',
    });
  });

  test('an assertion for an older opening of the gate, another gate or another task', () => {
    expect(verify(asserted(alice, { instance: 1 }))).toEqual({
      ok: false,
      reason: 'signed for an older instance of the plan gate (1; open now: 2)',
    });
    expect(verify(asserted(alice, { gate: 'report' }))).toMatchObject({
      reason: 'signed for another gate (report); the pending gate is plan',
    });
    expect(verify(asserted(alice, { workflowId: 'task-2' }))).toMatchObject({
      reason: 'signed for another task (task-2), not task-1',
    });
  });

  test('client data of a registration, of another origin, or cross-origin', () => {
    expect(verify(asserted(alice, {}, { type: 'webauthn.create' }))).toMatchObject({
      reason: 'the passkey assertion is not a sign-in assertion (client data type "webauthn.create")',
    });
    for (const origin of [
      'https://evil.example',
      'https://localhost.evil.example',
      'null',
      'http://inbox.example.com',
    ])
      expect(verify(asserted(alice, {}, { origin }))).toMatchObject({
        reason: expect.stringMatching(
          /^the passkey assertion comes from origin .* which does not belong to the passkey's relying party localhost$/,
        ),
      });
  });

  test('http is an origin only on localhost; https on the rp id and its subdomains', () => {
    const inbox = nodePasskey('alice', 'example.com', 'http://inbox.example.com');
    const keys = { alice: [inbox.passkey] };
    expect(verifyDecision(asserted(inbox), OPEN, {}, keys)).toMatchObject({ ok: false });
    for (const origin of ['https://example.com', 'https://inbox.example.com:8443'])
      expect(verifyDecision(asserted(inbox, {}, { origin }), OPEN, {}, keys)).toEqual({
        ok: true,
        person: 'alice',
      });
  });

  test('authenticator data for another relying party, or without user presence', () => {
    expect(verify(asserted(alice, {}, { rpId: 'evil.example' }))).toMatchObject({
      reason: 'the passkey assertion was made for another relying party than localhost (authenticator data)',
    });
    expect(verify(asserted(alice, {}, { flags: 0x04 }))).toMatchObject({
      reason: 'the passkey assertion does not say a user was present (authenticator data flags)',
    });
  });

  test('a challenge of its own choosing', () => {
    expect(verify(asserted(alice, {}, { challenge: 'AAAA' }))).toMatchObject({
      reason:
        'the passkey assertion was made for another challenge: it does not sign this decision statement',
    });
  });

  test('fields that are not base64url, or too large, do not parse as a decision', () => {
    const payload = asSignal(asserted(alice));
    const d = payload;
    const sig = d.signature as Extract<DecisionSignature, { alg: 'webauthn' }>;
    for (const signature of [
      { ...sig, value: 'not base64url!' },
      { ...sig, clientDataJSON: 'A'.repeat(5000) },
      { ...sig, credential: 'A'.repeat(2000) },
      { ...sig, extra: 'x' },
    ])
      expect(DecisionPayloadSchema.safeParse({ ...payload, signature }).success).toBe(false);
    expect(DecisionPayloadSchema.safeParse(payload).error).toBeUndefined();
  });
});

describe('what an honest authenticator makes', () => {
  test('verifies, with the passkey it verified with', () => {
    expect(verifyDecisionKey(asserted(alice), OPEN, {}, PASSKEYS)).toEqual({
      ok: true,
      person: 'alice',
      key: alice.passkey,
    });
  });

  test('an Ed25519 passkey (COSE -8) verifies; its line says webauthn-ed25519', () => {
    const ed = nodePasskey('alice-key', 'localhost', 'http://localhost:8787', 'ed25519');
    expect(ed.line).toMatch(/^webauthn-ed25519 localhost \S+ [A-Za-z0-9_-]{43} alice-key$/);
    expect(readPasskeyLine(ed.line)).toEqual({ passkey: ed.passkey });
    const d = asserted(ed);
    expect(verifyDecision(d, OPEN, {}, { alice: [ed.passkey] })).toEqual({ ok: true, person: 'alice' });
    expect(verifyDecision({ ...d, comment: 'x' }, OPEN, {}, { alice: [ed.passkey] })).toMatchObject({
      ok: false,
    });
  });

  test('a high-S ECDSA signature verifies too (WebAuthn does not normalise S)', () => {
    const d = asserted(alice);
    const sig = d.signature as Extract<DecisionSignature, { alg: 'webauthn' }>;
    const parsed = p256.Signature.fromBytes(Buffer.from(sig.value, 'base64url'), 'der');
    const other = new p256.Signature(parsed.r, p256.Point.Fn.ORDER - parsed.s);
    const value = Buffer.from(other.toBytes('der')).toString('base64url');
    expect(other.hasHighS() || parsed.hasHighS()).toBe(true);
    expect(verify({ ...d, signature: { ...sig, value } })).toEqual({ ok: true, person: 'alice' });
  });

  test('the signature alone checks offline against the recorded key; another key or a changed statement fails', () => {
    const d = asserted(alice);
    expect(checkSignature(statementOf(), d.signature, alice.passkey)).toBeUndefined();
    expect(checkSignature(statementOf(), d.signature, bob.passkey)).toMatch(/^bad signature/);
    expect(checkSignature(statementOf({ comment: 'other' }), d.signature, alice.passkey)).toMatch(
      /another challenge/,
    );
    expect(
      checkSignature(statementOf(), d.signature, { alg: 'ssh-ed25519', publicKey: '00'.repeat(32) }),
    ).toBe('a passkey assertion recorded with an Ed25519 key, not a passkey');
  });
});

describe('passkeys in approvers.yaml', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-passkeys-'));
  });
  afterAll(() => fs.rm(tmp, { recursive: true, force: true }));

  async function configWith(approvers: string): Promise<string> {
    const dir = path.join(await fs.mkdtemp(path.join(tmp, 'cfg-')), 'config');
    await fs.cp(path.join(PROJECT_ROOT, 'config'), dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'approvers.yaml'), approvers);
    return dir;
  }
  const people = (alices: string[], bobs: string[] = []): string =>
    [
      'people:',
      '  - id: alice@example.com',
      '    name: Alice',
      ...(alices.length ? ['    passkeys:', ...alices.map((k) => `      - ${JSON.stringify(k)}`)] : []),
      '  - id: bob@example.com',
      '    name: Bob',
      ...(bobs.length ? ['    passkeys:', ...bobs.map((k) => `      - ${JSON.stringify(k)}`)] : []),
      'groups:',
      '  - { id: editors, members: [alice@example.com, bob@example.com] }',
      '  - { id: research-leads, members: [bob@example.com] }',
      '',
    ].join('\n');

  test('the line the enrolment page prints reads back as the passkey', () => {
    expect(alice.line).toMatch(/^webauthn-es256 localhost [A-Za-z0-9_-]{43} [A-Za-z0-9_-]{44} alice-laptop$/);
    expect(readPasskeyLine(alice.line)).toEqual({ passkey: alice.passkey });
  });

  test('a wrong line is refused by config:check, naming the file, the path and what is wrong', async () => {
    const [type, rp, credential, key] = alice.line.split(' ') as [string, string, string, string];
    const cases: [string, RegExp][] = [
      [`ssh-ed25519 ${rp} ${credential} ${key}`, /must be a passkey line "webauthn-es256 <rp id>/],
      [
        `${type} 127.0.0.1:8787 ${credential} ${key}`,
        /the relying party id "127.0.0.1:8787" is not a lower-case host name/,
      ],
      [
        `${type} 127.0.0.1 ${credential} ${key}`,
        /the relying party id "127.0.0.1" is not a lower-case host name/,
      ],
      [`${type} ${rp} short ${key}`, /the credential id is not 16 to 1023 bytes of base64url/],
      [`${type} ${rp} ${credential} ${key.slice(0, 40)}`, /the public key is not a P-256 point in base64url/],
      [
        `webauthn-ed25519 ${rp} ${credential} ${key}`,
        /the public key is not 32 bytes of Ed25519 in base64url/,
      ],
    ];
    for (const [line, reason] of cases) {
      const err = await loadConfig(await configWith(people([line]))).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      const message = (err as ConfigError).message;
      expect(message).toMatch(reason);
      expect(message).toContain('people[0].passkeys[0]');
      expect(message).toContain('approvers.yaml:5:9');
    }
  });

  test('one passkey listed for two people is refused, by credential id or by key', async () => {
    await expect(loadConfig(await configWith(people([alice.line], [alice.line])))).rejects.toThrow(
      /people\[1\]\.passkeys\[0\]: this passkey is already listed for "alice@example.com"/,
    );
  });

  test("a task's snapshot carries the passkeys of the people its gates name; none listed, none carried", async () => {
    const config = await loadConfig(await configWith(people([alice.line])));
    expect(snapshotFor(config, 'team-review')?.approverPasskeys).toEqual({
      'alice@example.com': [alice.passkey],
    });
    const none = await loadConfig(await configWith(people([])));
    expect(snapshotFor(none, 'team-review')).not.toHaveProperty('approverPasskeys');
  });
});
