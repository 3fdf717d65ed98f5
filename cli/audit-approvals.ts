/**
 * The approvers' signatures in a provenance, verified again offline (docs/approvals.md, "What the
 * audit checks"): each signed approval's statement is rebuilt from what the provenance records (the
 * task, the gate, its opening and subject, `approve`, the comment, the person, the time) and its
 * signature checked with the public key recorded beside it (contract/decision.ts, `checkSignature`:
 * Ed25519, or a passkey's WebAuthn assertion). Unsigned approvals are said to be unsigned.
 *
 * Pure: given the provenance, so every rule is tested directly.
 */
import { checkSignature, keyFingerprint } from '../contract/decision';
import type { Provenance, SignerKey } from '../contract/messages';

/** One approval of a provenance, as the audit judged it. */
export interface ApprovalCheck {
  gate: string;
  by: string;
  /** How it was given: signed (with a key or a passkey), `unsigned` (taken as given), or not recorded. */
  signing: 'ed25519 key' | 'passkey' | 'unsigned' | 'not recorded';
  /** Whether its signature verified; null when it has none to verify. */
  verified: boolean | null;
  reason: string;
}

/** What names a key in a reason: its fingerprint, or the passkey's relying party and credential. */
const keyName = (key: SignerKey): string =>
  key.alg === 'ssh-ed25519'
    ? `key ${keyFingerprint(key.publicKey)}`
    : `passkey ${key.credential.slice(0, 16)}… (${key.alg}, relying party ${key.rpId})`;

/** Each approval of `provenance`, its signature verified again with the key recorded with it. */
export function checkApprovals(provenance: Provenance): ApprovalCheck[] {
  return provenance.approvals.map((a): ApprovalCheck => {
    const base = { gate: String(a.gate), by: String(a.by) };
    if (a.signed === false)
      return {
        ...base,
        signing: 'unsigned',
        verified: null,
        reason: 'unsigned: the playbook took decisions unsigned, so the name was taken as given',
      };
    if (a.signed === undefined)
      return {
        ...base,
        signing: 'not recorded',
        verified: null,
        reason: "no signing recorded (the system's approval, or one recorded before decisions were signed)",
      };
    const s = a.statement;
    if (!s)
      return {
        ...base,
        signing: 'unsigned',
        verified: false,
        reason: 'marked signed, but no signed statement is recorded',
      };
    const signing = s.signature.alg === 'webauthn' ? 'passkey' : 'ed25519 key';
    const fail = (reason: string): ApprovalCheck => ({ ...base, signing, verified: false, reason });
    if (!s.key) return fail('signed, but the provenance does not record the public key to verify it with');
    if (s.workflowId !== provenance.workflowId)
      return fail(`signed for another task (${s.workflowId}), not ${provenance.workflowId}`);
    const statement = {
      workflowId: s.workflowId,
      gate: a.gate,
      instance: s.instance,
      subject: s.subject,
      decision: 'approve' as const,
      comment: a.comment,
      by: a.by,
      at: s.at,
    };
    let refusal: string | undefined;
    try {
      refusal = checkSignature(statement, s.signature, s.key);
    } catch (err) {
      refusal = `its signature or key is malformed (${(err as Error).message})`;
    }
    return refusal === undefined
      ? { ...base, signing, verified: true, reason: `signed with ${keyName(s.key)}: verified` }
      : fail(refusal);
  });
}

/** An approval check as one line: `plan approval by alice: signed with passkey …: verified`. */
export const approvalLine = (c: ApprovalCheck): string => `${c.gate} approval by ${c.by}: ${c.reason}`;

/** A provenance's approvals, each with the audit's verdict on its signature: what the export records. */
export const approvalsWithChecks = (
  provenance: Provenance,
): (Provenance['approvals'][number] & { check: Omit<ApprovalCheck, 'gate' | 'by'> })[] =>
  checkApprovals(provenance).map(({ gate: _gate, by: _by, ...check }, i) => ({
    ...provenance.approvals[i]!,
    check,
  }));

/**
 * The lines to print for `checks`: each approval with its verdict, once any is signed (a task whose
 * approvals are all unsigned or unrecorded says so in the export's JSON only); and the failed ones.
 */
export function approvalReport(checks: ApprovalCheck[]): { lines: string[]; failed: string[] } {
  const shown = checks.some((c) => c.verified !== null);
  return {
    lines: shown ? checks.filter((c) => c.verified !== false).map(approvalLine) : [],
    failed: checks.filter((c) => c.verified === false).map(approvalLine),
  };
}
