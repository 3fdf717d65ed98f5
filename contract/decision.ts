/**
 * Signed decisions: the statement an approver signs, and its verification against the public keys
 * a task's config snapshot carries.
 *
 * The bytes signed are the UTF-8 of {@link STATEMENT_PREFIX} followed by the canonical JSON
 * (contract/canonical.ts: keys sorted, no whitespace, absent fields left out) of
 * `{ workflowId, gate, instance, subject, decision, comment, rerunSteps, by, at }`. Binding the
 * task, the gate, the gate's opening and the hash of what is decided on means a signature cannot be
 * replayed on another task, another gate, a later opening of the same gate or a superseded plan or
 * draft; binding the decision and the comment means neither can be changed.
 *
 * A decision made in the inbox is signed with a passkey instead (WebAuthn): the browser asks the
 * authenticator for an assertion whose challenge is the base64url of the sha256 of those bytes;
 * {@link passkeyRefusal} checks it as a relying party would (docs/approvals.md, "Passkeys").
 *
 * Pure and synchronous (no Node modules, no I/O): workflow code runs {@link verifyDecision} in the
 * `decide` Update's validator and in signal handlers, and replays it deterministically; the audit
 * runs {@link checkSignature} offline over the approvals a provenance records.
 */
import { ed25519 } from '@noble/curves/ed25519';
import { p256 } from '@noble/curves/p256';
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, bytesToUtf8, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils';
import { base64, base64nopad, base64urlnopad } from '@scure/base';
import { sshEd25519Blob, type Passkey, type Plan } from '../config/schema';
import { canonicalJson } from './canonical';
import type { DecisionPayload, DecisionSignature, Decision, Gate, SignerKey } from './messages';

/** What the signed bytes start with: names the format, so a signature over anything else never fits. */
export const STATEMENT_PREFIX = 'baton-decision-v1\n';

/** What a decision is bound to: the gate opening it is for, as the task's status shows it now. */
export interface OpenGate {
  workflowId: string;
  gate: Gate;
  /** `PendingGate.instance`. */
  instance: number;
  /** `PendingGate.subject`: `sha256:<hex>` of the plan ({@link planSubject}) or of the draft. */
  subject: string;
}

/** Everything an approver signs. */
export interface DecisionStatement extends OpenGate {
  decision: Decision;
  comment?: string;
  rerunSteps?: string[];
  by: string;
  /** When it was signed, ISO 8601. */
  at: string;
}

/** A decision payload with its statement and signature: what `baton sign` prints. */
export type SignedDecision = DecisionStatement & { signature: DecisionSignature };

/** The exact bytes an approver signs for `s` (fields other than the statement's are ignored). */
export function statementBytes(s: DecisionStatement): Uint8Array {
  const { workflowId, gate, instance, subject, decision, comment, rerunSteps, by, at } = s;
  const fields = { workflowId, gate, instance, subject, decision, comment, rerunSteps, by, at };
  return utf8ToBytes(STATEMENT_PREFIX + canonicalJson(fields));
}

/** `sha256:<hex>` of a value's canonical JSON. */
const subjectOf = (value: unknown): string =>
  `sha256:${bytesToHex(sha256(utf8ToBytes(canonicalJson(value))))}`;

/** What a decision on `plan` is about: `sha256:<hex>` of the plan's canonical JSON. */
export const planSubject = (plan: Plan): string => subjectOf(plan);

/**
 * What a decision on a research round's plan delta is about (workflows/rounds.ts): `sha256:<hex>`
 * of the canonical JSON of the plan it adds to (the approved plan's rationale and every step so
 * far) and of the delta (its round, the lead's reason as status shows it, and its new steps).
 */
export const deltaSubject = (
  plan: Plan,
  delta: { round: number; reason: string; steps: Plan['steps'] },
): string => subjectOf({ plan, delta });

/** What a decision at the tool gate is about: the exact call, its arguments whole, in this task's step. */
export const toolCallSubject = (call: {
  workflowId: string;
  step: string;
  callId: string;
  server: string;
  tool: string;
  arguments: Record<string, unknown>;
}): string => subjectOf(call);

/**
 * A public key's fingerprint as `ssh-keygen -l -E sha256` prints it: `SHA256:` and the base64,
 * unpadded, of the SHA-256 of the key's OpenSSH blob. `rawKey`: the 32 bytes, or 64 hex digits.
 */
export function keyFingerprint(rawKey: Uint8Array | string): string {
  const raw = typeof rawKey === 'string' ? hexToBytes(rawKey) : rawKey;
  return `SHA256:${base64nopad.encode(sha256(sshEd25519Blob(raw)))}`;
}

/** The verdict on a decision: whose it is, or why it is refused (a sentence for people and the audit). */
export type Verdict = { ok: true; person: string } | { ok: false; reason: string };

/** Each person's raw Ed25519 public keys, hex: a config snapshot's `approverKeys`. */
export type KeysByPerson = Readonly<Record<string, readonly string[]>>;

/** Each person's passkeys: a config snapshot's `approverPasskeys`. */
export type PasskeysByPerson = Readonly<Record<string, readonly Passkey[]>>;

/** Whether `signature` is a valid Ed25519 signature of `message` by `publicKey` (malformed: false). */
function validSignature(signature: string | Uint8Array, message: Uint8Array, publicKey: string): boolean {
  try {
    const sig = typeof signature === 'string' ? base64.decode(signature) : signature;
    return ed25519.verify(sig, message, hexToBytes(publicKey));
  } catch {
    return false;
  }
}

/** Whether `der` is a valid ECDSA P-256 signature (DER, as authenticators make it) of sha256(`message`). */
function validEs256(der: Uint8Array, message: Uint8Array, publicKey: string): boolean {
  try {
    // WebAuthn does not require low S: accept both halves, as a relying party must.
    return p256.verify(der, sha256(message), hexToBytes(publicKey), {
      prehash: false,
      lowS: false,
      format: 'der',
    });
  } catch {
    return false;
  }
}

/** base64url bytes, or undefined when the text is not base64url. */
function fromBase64url(text: string): Uint8Array | undefined {
  try {
    return base64urlnopad.decode(text);
  } catch {
    return undefined;
  }
}

/** The challenge a passkey signs for `statement`: the base64url (no padding) of sha256 of its bytes. */
export const statementChallenge = (statement: DecisionStatement): string =>
  base64urlnopad.encode(sha256(statementBytes(statement)));

/**
 * Whether `origin` (the client data's) may assert for `rpId`: https on the rp id's host or a
 * subdomain of it, any port; plain http only on localhost (browsers treat it as secure).
 */
function originFits(origin: unknown, rpId: string): boolean {
  if (typeof origin !== 'string') return false;
  const m = /^(https?):\/\/([a-z0-9.-]{1,253})(?::\d{1,5})?$/.exec(origin);
  if (!m) return false;
  const [, scheme, host] = m as unknown as [string, string, string];
  if (host !== rpId && !host.endsWith(`.${rpId}`)) return false;
  return scheme === 'https' || host === 'localhost';
}

/** The most of a WebAuthn assertion read here (bytes of client data), whatever the payload's schema allowed. */
const MAX_CLIENT_DATA_BYTES = 2048;

type WebAuthnSignature = Extract<DecisionSignature, { alg: 'webauthn' }>;

/**
 * Why a passkey's assertion does not hold for `statement`, or undefined when it does: checked as a
 * WebAuthn relying party checks an assertion (W3C WebAuthn Level 3, section 7.2), the challenge
 * being the statement's ({@link statementChallenge}).
 */
export function passkeyRefusal(
  statement: DecisionStatement,
  signature: WebAuthnSignature,
  passkey: Passkey,
): string | undefined {
  const authData = fromBase64url(signature.authenticatorData);
  const clientBytes = fromBase64url(signature.clientDataJSON);
  const value = fromBase64url(signature.value);
  if (
    !authData ||
    authData.length < 37 ||
    !clientBytes ||
    clientBytes.length > MAX_CLIENT_DATA_BYTES ||
    !value
  )
    return 'malformed passkey assertion: its fields are not base64url of the sizes WebAuthn gives them';
  const signed = concatBytes(authData, sha256(clientBytes));
  const valid =
    passkey.alg === 'es256'
      ? validEs256(value, signed, passkey.publicKey)
      : validSignature(value, signed, passkey.publicKey);
  if (!valid)
    return `bad signature: the passkey assertion does not verify with ${statement.by}'s passkey ${passkey.credential.slice(0, 16)}… (changed after signing, or forged)`;
  let client: Record<string, unknown>;
  try {
    client = JSON.parse(bytesToUtf8(clientBytes)) as Record<string, unknown>;
  } catch {
    return 'malformed passkey assertion: its client data is not JSON';
  }
  if (client === null || typeof client !== 'object')
    return 'malformed passkey assertion: its client data is not a JSON object';
  if (client.type !== 'webauthn.get')
    return `the passkey assertion is not a sign-in assertion (client data type ${JSON.stringify(String(client.type)).slice(0, 40)})`;
  if (client.challenge !== statementChallenge(statement))
    return 'the passkey assertion was made for another challenge: it does not sign this decision statement';
  if (!originFits(client.origin, passkey.rpId) || client.crossOrigin === true)
    return `the passkey assertion comes from origin ${JSON.stringify(String(client.origin)).slice(0, 100)}, which does not belong to the passkey's relying party ${passkey.rpId}`;
  const rpIdHash = sha256(utf8ToBytes(passkey.rpId));
  if (rpIdHash.some((b, i) => b !== authData[i]))
    return `the passkey assertion was made for another relying party than ${passkey.rpId} (authenticator data)`;
  // Flags (byte 32): bit 0, user present.
  if ((authData[32]! & 0x01) === 0)
    return 'the passkey assertion does not say a user was present (authenticator data flags)';
  return undefined;
}

/**
 * The key config lists for `by` that `signature` names: an Ed25519 key by fingerprint, a passkey by
 * credential id; or why there is none.
 */
export function signerKey(
  by: string,
  signature: DecisionSignature,
  keysByPerson: KeysByPerson,
  passkeysByPerson: PasskeysByPerson,
): { key: SignerKey } | { reason: string } {
  // Own properties only: a `by` of "constructor" must not find Object.prototype's.
  if (signature.alg === 'webauthn') {
    const passkeys = Object.hasOwn(passkeysByPerson, by) ? passkeysByPerson[by]! : [];
    const passkey = passkeys.find((p) => p.credential === signature.credential);
    if (passkey) return { key: passkey };
    const listed = passkeys.length
      ? `the credential ${signature.credential.slice(0, 16)}… is not one of them`
      : 'config lists none';
    return { reason: `no passkey of "${by}" matches: ${listed}` };
  }
  const keys = Object.hasOwn(keysByPerson, by) ? keysByPerson[by]! : [];
  const key = keys.find((k) => keyFingerprint(k) === signature.key);
  if (key) return { key: { alg: 'ssh-ed25519', publicKey: key } };
  const listed = keys.length ? `the signing key ${signature.key} is not one of them` : 'config lists none';
  return { reason: `no key of "${by}" matches: ${listed}` };
}

/** What identifies a signing key for "one key counts once": a fingerprint, or a passkey's credential id. */
export const signingKeyId = (signature: DecisionSignature): string =>
  signature.alg === 'webauthn' ? `passkey ${signature.credential}` : signature.key;

/**
 * Why `signature` by `key` does not hold over `statement`, or undefined when it does: the
 * signature alone, not what it is bound to. The audit runs it offline on recorded approvals.
 */
export function checkSignature(
  statement: DecisionStatement,
  signature: DecisionSignature,
  key: SignerKey,
): string | undefined {
  if (signature.alg === 'webauthn') {
    if (key.alg === 'ssh-ed25519') return 'a passkey assertion recorded with an Ed25519 key, not a passkey';
    return passkeyRefusal(statement, signature, key);
  }
  if (key.alg !== 'ssh-ed25519') return 'an Ed25519 signature recorded with a passkey, not an Ed25519 key';
  if (keyFingerprint(key.publicKey) !== signature.key)
    return `the key recorded is not the one the signature names (${signature.key})`;
  if (!validSignature(signature.value, statementBytes(statement), key.publicKey))
    return `bad signature: the decision does not verify with ${statement.by}'s key ${signature.key} (changed after signing, or forged)`;
  return undefined;
}

const STATEMENT_FIELDS = ['workflowId', 'gate', 'instance', 'subject', 'at'] as const;

/** A verdict that also says which key of config the decision verified with. */
export type KeyedVerdict = { ok: true; person: string; key: SignerKey } | { ok: false; reason: string };

/**
 * Checks a signed decision against the gate opening that is pending and the keys config lists:
 * signed, with a key or passkey of the person it names (`by`), validly over its own statement, and
 * for this task, this gate, this opening and this subject. For a signal, pass the signal's
 * decision in `payload.decision` (a signature over another decision then fails). Pure and
 * synchronous.
 */
export function verifyDecisionKey(
  payload: DecisionPayload & { decision: Decision },
  expected: OpenGate,
  keysByPerson: KeysByPerson,
  passkeysByPerson: PasskeysByPerson = {},
): KeyedVerdict {
  const { by, signature } = payload;
  if (!signature) return { ok: false, reason: `unsigned: the decision by "${by}" carries no signature` };
  const missing = STATEMENT_FIELDS.filter((f) => payload[f] === undefined);
  if (missing.length)
    return {
      ok: false,
      reason: `the signed decision does not say ${missing.join(', ')}: not a decision statement`,
    };
  const statement = payload as DecisionStatement & { signature: DecisionSignature };
  if (signature.alg !== 'ed25519' && signature.alg !== 'webauthn')
    return {
      ok: false,
      reason: `signature algorithm "${String((signature as { alg: unknown }).alg)}" is neither ed25519 nor webauthn`,
    };
  const found = signerKey(by, signature, keysByPerson, passkeysByPerson);
  if ('reason' in found) return { ok: false, reason: found.reason };
  const bad = checkSignature(statement, signature, found.key);
  if (bad !== undefined) return { ok: false, reason: bad };
  const binding = bindingRefusal(statement, expected);
  return binding === undefined ? { ok: true, person: by, key: found.key } : { ok: false, reason: binding };
}

/** {@link verifyDecisionKey}, saying whose decision it is (or why it is refused) and not the key. */
export function verifyDecision(
  payload: DecisionPayload & { decision: Decision },
  expected: OpenGate,
  keysByPerson: KeysByPerson,
  passkeysByPerson: PasskeysByPerson = {},
): Verdict {
  const verdict = verifyDecisionKey(payload, expected, keysByPerson, passkeysByPerson);
  return verdict.ok ? { ok: true, person: verdict.person } : verdict;
}

/** Why a validly signed statement is not for the gate opening `expected`, or undefined when it is. */
function bindingRefusal(statement: DecisionStatement, expected: OpenGate): string | undefined {
  if (statement.workflowId !== expected.workflowId)
    return `signed for another task (${statement.workflowId}), not ${expected.workflowId}`;
  if (statement.gate !== expected.gate)
    return `signed for another gate (${statement.gate}); the pending gate is ${expected.gate}`;
  if (statement.instance !== expected.instance) {
    const which = statement.instance < expected.instance ? 'an older' : 'another';
    return `signed for ${which} instance of the ${expected.gate} gate (${statement.instance}; open now: ${expected.instance})`;
  }
  if (statement.subject !== expected.subject) {
    const what = expected.gate === 'plan' ? 'plan' : expected.gate === 'tool' ? 'tool call' : 'draft';
    return `signed for another ${what} (superseded): ${statement.subject}, while the ${what} open for decision is ${expected.subject}`;
  }
  return undefined;
}
