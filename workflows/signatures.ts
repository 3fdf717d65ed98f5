/**
 * Signed decisions at a gate (docs/approvals.md, "Signed decisions"): which opening of a gate is
 * pending and what it decides on, whether a decision's signature holds for it, and what an accepted
 * decision records. Pure and synchronous: the `decide` Update's validator runs it.
 */
import type { ConfigSnapshot } from '../config/schema';
import { signerKey, signingKeyId, verifyDecisionKey } from '../contract/decision';
import type { Approval, AuditEntry, Decision, DecisionPayload, PendingGate } from '../contract/messages';

/** The keys a task verifies decisions with: its config snapshot's Ed25519 keys and passkeys. */
export type TaskKeys = Pick<ConfigSnapshot, 'approverKeys' | 'approverPasskeys'>;

/**
 * The gate opening about to open: one more than the gates opened so far in this task (plan and
 * report alike), so a re-opened gate never has the instance of an earlier opening.
 */
export const nextInstance = (audit: readonly AuditEntry[]): number =>
  audit.filter((e) => e.event === 'gate-opened').length + 1;

/**
 * Why a decision's signature does not hold for the gate open now, or undefined when it does: signed
 * with a key of the person it names, for this task, gate, opening and plan or draft, and with a key
 * no approval of this opening was counted under already (one key counts once).
 */
export function signatureRefusal(
  decision: Decision,
  payload: DecisionPayload,
  workflowId: string,
  open: PendingGate,
  keys: TaskKeys,
): string | undefined {
  if (open.instance === undefined || open.subject === undefined)
    return `the ${open.gate} gate has nothing to sign for (no draft was published): signed decisions cannot be taken`;
  const expected = { workflowId, gate: open.gate, instance: open.instance, subject: open.subject };
  const verdict = verifyDecisionKey(
    { ...payload, decision },
    expected,
    keys.approverKeys ?? {},
    keys.approverPasskeys ?? {},
  );
  if (!verdict.ok) return verdict.reason;
  const key = signingKeyId(payload.signature!);
  // The same person again is refused as such by the gate; another person under a counted key here.
  const counted = open.approvals.find(
    (a) => a.statement && signingKeyId(a.statement.signature) === key && a.by !== payload.by,
  );
  if (decision === 'approve' && counted)
    return `the key ${key} already counted for "${counted.by}" at the ${open.gate} gate`;
  return undefined;
}

/**
 * An accepted approval as the gate records it: signed with its statement, its signature and the
 * public key that verified it (so an audit can verify it again offline), or marked unsigned.
 */
export function approvalOf(payload: DecisionPayload, at: string, signed: boolean, keys: TaskKeys): Approval {
  const { by, comment } = payload;
  if (!signed) return { by, at, comment, signed: false };
  const { workflowId, instance, subject, signature } = payload;
  const found = signerKey(by, signature!, keys.approverKeys ?? {}, keys.approverPasskeys ?? {});
  return {
    by,
    at,
    comment,
    signed: true,
    statement: {
      workflowId: workflowId!,
      instance: instance!,
      subject: subject!,
      at: payload.at!,
      signature: signature!,
      ...('key' in found ? { key: found.key } : {}),
    },
  };
}
