/**
 * The published form of a report: an explicit AI-generated label at the top and the bottom, the
 * body between markers (its sha256 is the provenance's `contentHash`), and the provenance record
 * as machine-readable JSON (the implicit label).
 */
import { formatUsd } from '../contract/usage';
import type { Provenance } from '../contract/messages';

export const BODY_START = '<!-- baton:body:start -->';
export const BODY_END = '<!-- baton:body:end -->';

/**
 * The estimated model cost, as a sentence for the label below the body; empty when the usage carries
 * no estimate (recorded before Baton estimated costs).
 */
export function costSentence(provenance: Pick<Provenance, 'usage' | 'agents'>): string {
  const { costUsd } = provenance.usage;
  if (costUsd === undefined) return '';
  if (costUsd !== null) {
    return ` Estimated model cost: ${formatUsd(costUsd)} (USD, the price table in config applied to the reported tokens; an estimate, not a bill).`;
  }
  const unpriced = [
    ...new Set(
      provenance.agents.filter((a) => provenance.usage.byAgent[a.id]?.costUsd === null).map((a) => a.model),
    ),
  ];
  return ` Estimated model cost: unknown${unpriced.length ? ` (no price in config for ${unpriced.join(', ')})` : ''}.`;
}

export function renderReport(body: string, provenance: Provenance): string {
  const models = [...new Set(provenance.agents.map((a) => a.model))].join(', ');
  const signOff = provenance.approvals.length
    ? provenance.approvals.map((a) => `${a.gate} approved by ${a.by} at ${a.at}`).join('; ')
    : provenance.reportKind === 'final'
      ? 'no human sign-off was required by the playbook'
      : 'none yet';
  const status =
    provenance.reportKind === 'draft'
      ? ' **DRAFT awaiting sign-off: not final.**'
      : provenance.reportKind === 'partial'
        ? ' **PARTIAL: the task stopped before the report was signed off; parts are missing.**'
        : '';
  const label = `> **AI-generated content.**${status} This report was written by AI agents (models: ${models}) orchestrated by Baton, workflow \`${provenance.workflowId}\`. It may contain errors: check the cited sources before relying on it. Sign-off: ${signOff}.`;
  return [
    label,
    BODY_START,
    body,
    BODY_END,
    '---',
    `${label}\n> Content hash (sha256 of the text between the body markers): \`${provenance.contentHash ?? 'n/a'}\`. Config digest: \`${provenance.configDigest}\`.${costSentence(provenance)}`,
    '## Provenance',
    '```json',
    JSON.stringify(provenance, null, 2),
    '```',
    '',
  ].join('\n\n');
}
