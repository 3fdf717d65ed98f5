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
 * Pure and synchronous (no Node modules, no I/O): workflow code runs {@link verifyDecision} in the
 * `decide` Update's validator and in signal handlers, and replays it deterministically.
 */
import { ed25519 } from '@noble/curves/ed25519';
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils';
import { base64, base64nopad } from '@scure/base';
import { sshEd25519Blob, type Plan } from '../config/schema';
import { canonicalJson } from './canonical';
import type { DecisionPayload, DecisionSignature, Decision, Gate } from './messages';

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

/** Whether `signature` is a valid Ed25519 signature of `message` by `publicKey` (malformed: false). */
function validSignature(signature: string, message: Uint8Array, publicKey: string): boolean {
  try {
    return ed25519.verify(base64.decode(signature), message, hexToBytes(publicKey));
  } catch {
    return false;
  }
}

const STATEMENT_FIELDS = ['workflowId', 'gate', 'instance', 'subject', 'at'] as const;

/**
 * Checks a signed decision against the gate opening that is pending and the keys config lists:
 * signed, with a key of the person it names (`by`), validly over its own statement, and for this
 * task, this gate, this opening and this subject. For a signal, pass the signal's decision in
 * `payload.decision` (a signature over another decision then fails). Pure and synchronous.
 */
export function verifyDecision(
  payload: DecisionPayload & { decision: Decision },
  expected: OpenGate,
  keysByPerson: KeysByPerson,
): Verdict {
  const { by, signature } = payload;
  if (!signature) return { ok: false, reason: `unsigned: the decision by "${by}" carries no signature` };
  const missing = STATEMENT_FIELDS.filter((f) => payload[f] === undefined);
  if (missing.length)
    return {
      ok: false,
      reason: `the signed decision does not say ${missing.join(', ')}: not a decision statement`,
    };
  const statement = payload as DecisionStatement & { signature: DecisionSignature };
  if (signature.alg !== 'ed25519')
    return { ok: false, reason: `signature algorithm "${String(signature.alg)}" is not ed25519` };
  // Own properties only: a `by` of "constructor" must not find Object.prototype's.
  const keys = Object.hasOwn(keysByPerson, by) ? keysByPerson[by]! : [];
  const key = keys.find((k) => keyFingerprint(k) === signature.key);
  if (!key) {
    const listed = keys.length ? `the signing key ${signature.key} is not one of them` : 'config lists none';
    return { ok: false, reason: `no key of "${by}" matches: ${listed}` };
  }
  if (!validSignature(signature.value, statementBytes(statement), key))
    return {
      ok: false,
      reason: `bad signature: the decision does not verify with ${by}'s key ${signature.key} (changed after signing, or forged)`,
    };
  if (statement.workflowId !== expected.workflowId)
    return {
      ok: false,
      reason: `signed for another task (${statement.workflowId}), not ${expected.workflowId}`,
    };
  if (statement.gate !== expected.gate)
    return {
      ok: false,
      reason: `signed for another gate (${statement.gate}); the pending gate is ${expected.gate}`,
    };
  if (statement.instance !== expected.instance) {
    const which = statement.instance < expected.instance ? 'an older' : 'another';
    return {
      ok: false,
      reason: `signed for ${which} instance of the ${expected.gate} gate (${statement.instance}; open now: ${expected.instance})`,
    };
  }
  if (statement.subject !== expected.subject) {
    const what = expected.gate === 'plan' ? 'plan' : 'draft';
    return {
      ok: false,
      reason: `signed for another ${what} (superseded): ${statement.subject}, while the ${what} open for decision is ${expected.subject}`,
    };
  }
  return { ok: true, person: by };
}
