/**
 * Refused decisions, bounded (docs/security.md, "Bounded input"): a payload's size is checked before
 * anything from it is stored, a refused signal is audited by its size and sha256 with clipped fields
 * only, and past {@link MAX_REFUSED_DECISION_ENTRIES} refusals one running summary entry counts the
 * rest, so no sender can grow the audit trail (which travels in the provenance) without limit.
 */
import { clip, type Measured } from '../contract/bounds';
import {
  MAX_DECISION_PAYLOAD_BYTES,
  MAX_REFUSAL_REASON_CHARS,
  MAX_REFUSED_BY_CHARS,
  MAX_REFUSED_DECISION_ENTRIES,
  type AuditEntry,
  type Decision,
  type Gate,
} from '../contract/messages';
import { now } from './status';

/** Why a payload is refused for its size, or undefined when it is within {@link MAX_DECISION_PAYLOAD_BYTES}. */
export function sizeRefusal(size: Measured | undefined): string | undefined {
  if (!size) return 'payload too large: nested too deeply to measure';
  if (size.bytes > MAX_DECISION_PAYLOAD_BYTES)
    return `payload too large: ${size.bytes} bytes (max ${MAX_DECISION_PAYLOAD_BYTES})`;
  return undefined;
}

/**
 * The audit entry of a refused signal: who it claims to be from (clipped), the gate it names or the
 * one pending, the reason (clipped), the payload's size and hash; never its comment.
 */
export function refusedEntry(
  decision: Decision,
  payload: unknown,
  reason: string,
  size: Measured | undefined,
  pending: Gate | null,
): Omit<AuditEntry, 'at'> {
  const p = (payload && typeof payload === 'object' ? payload : {}) as { by?: unknown; gate?: unknown };
  return {
    gate: p.gate === 'plan' || p.gate === 'report' ? p.gate : pending,
    event: 'decision',
    decision,
    by: typeof p.by === 'string' ? clip(p.by, MAX_REFUSED_BY_CHARS) : '(unknown)',
    via: 'signal',
    accepted: false,
    reason: clip(reason, MAX_REFUSAL_REASON_CHARS),
    payload: size,
  };
}

/**
 * Adds a refused signal's entry to the audit trail: one entry each for the first
 * {@link MAX_REFUSED_DECISION_ENTRIES}, then one running summary of the rest (how many, their
 * bytes in all).
 */
export function recordRefusal(audit: AuditEntry[], entry: Omit<AuditEntry, 'at'>): void {
  const refusals = audit.filter((e) => e.event === 'decision' && e.accepted === false);
  if (refusals.length < MAX_REFUSED_DECISION_ENTRIES) {
    audit.push({ at: now(), ...entry });
    return;
  }
  const bytes = entry.payload?.bytes ?? 0;
  const summary = refusals.find((e) => e.more);
  const more = summary?.more
    ? { count: summary.more.count + 1, bytes: summary.more.bytes + bytes }
    : { count: 1, bytes };
  const reason = `${more.count} more refused decisions, ${more.bytes} bytes in all`;
  if (summary) Object.assign(summary, { at: now(), gate: entry.gate, reason, more });
  else
    audit.push({
      at: now(),
      gate: entry.gate,
      event: 'decision',
      via: 'signal',
      accepted: false,
      reason,
      more,
    });
}
