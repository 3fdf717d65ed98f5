/**
 * The published form of a report: an explicit AI-generated label at the top and the bottom, the
 * body between markers (its sha256 is the provenance's `contentHash`), and the provenance record
 * as machine-readable JSON (the implicit label), signed by the publishing worker when it has a key.
 *
 * Everything but the body is a function of the provenance ({@link reportFrame}), so a verifier
 * re-renders it and compares: it never searches the body, which holds model text. That text is
 * neutralised before it is stored ({@link neutraliseModelText}), so it cannot hold a marker or pass
 * for a label line either.
 */
import { ApplicationFailure } from '@temporalio/common';
import { FailureTypes } from '../contract/failures';
import { formatUsd } from '../contract/usage';
import type { Provenance, ReportKind, TaskStatus } from '../contract/messages';
import { getArtifact } from './artifacts';
import type { SignedProvenance } from './signing';
import type { ObjectStore, Stores } from './store';

/** A workflow id as it may appear in a file name (the run id beside it keeps names distinct). */
export const safeName = (workflowId: string): string => workflowId.replace(/[^A-Za-z0-9._-]+/g, '_');

const RUN_ID = /^[A-Za-z0-9-]{1,64}$/;

/**
 * A report's key in the report store: `<workflow id>.<run id>.md` when final, `….draft.md` or
 * `….partial.md` otherwise. The run id makes every run's name its own, whatever its workflow id.
 */
export function reportKey(workflowId: string, runId: string, kind: ReportKind): string {
  if (!RUN_ID.test(runId)) throw new Error(`run id "${runId.slice(0, 80)}" is not a Temporal run id`);
  return `${safeName(workflowId)}.${runId}${kind === 'final' ? '' : `.${kind}`}.md`;
}

/** The `.provenance.json` written beside a report. */
export const provenancePathOf = (reportPath: string): string =>
  /\.md$/.test(reportPath)
    ? reportPath.replace(/\.md$/, '.provenance.json')
    : `${reportPath}.provenance.json`;

/**
 * Writes a report and its provenance record to the report store. A draft is replaced by the next
 * draft; a final or partial report is written once ({@link ObjectStore.create}): a retry that writes
 * the same bytes finds them there and succeeds, anything else is refused for good
 * ({@link FailureTypes.ReportExists}). Answers where the report is ({@link ObjectStore.locate}).
 */
export async function storeReport(
  store: ObjectStore,
  report: { key: string; kind: ReportKind; text: string; provenance: SignedProvenance },
): Promise<string> {
  const objects: [string, Buffer][] = [
    [report.key, Buffer.from(report.text, 'utf8')],
    [provenancePathOf(report.key), Buffer.from(`${JSON.stringify(report.provenance, null, 2)}\n`, 'utf8')],
  ];
  for (const [key, body] of objects) {
    if (report.kind === 'draft') {
      await store.put(key, body);
    } else if (!(await store.create(key, body)) && !(await store.get(key))?.equals(body)) {
      throw ApplicationFailure.nonRetryable(
        `the ${report.kind} report ${key} is already published with other content, and a published report is never replaced (write-once): this run has published it before`,
        FailureTypes.ReportExists,
      );
    }
  }
  return store.locate(report.key);
}

/**
 * A report's location as people are shown it: an `s3://` address as it is (anyone with access reads
 * it there), a worker's file path only by its name (the folder is on the worker's disk, not theirs).
 */
export const shownLocation = (location: string): string =>
  location.startsWith('s3://') ? location : location.slice(location.lastIndexOf('/') + 1);

/**
 * A published report's text, read through the report store from the location its publish answered
 * (`status.report.draftPath` or `.path`). Throws an error that says which report cannot be read and
 * why, without the worker's file path.
 */
export async function readPublished(store: ObjectStore, location: string): Promise<string> {
  let key: string;
  try {
    key = store.keyAt(location);
  } catch {
    throw new Error(`the report location "${location.slice(0, 120)}" is not a report name`);
  }
  let body: Buffer | undefined;
  try {
    body = await store.get(key);
  } catch (err) {
    throw new Error(`report ${key} cannot be read from the report store: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (body === undefined) {
    throw new Error(
      `report ${key} is not in the report store this process reads (check that it uses the workers' BATON_STORE, or BATON_REPORT_DIR)`,
    );
  }
  return body.toString('utf8');
}

/**
 * The draft a person decides on at the report gate: the labelled draft as published, or, for a task
 * from before drafts were published, the synthesized body. No decision is taken on a draft nobody can
 * read: this throws, saying what cannot be read, and the task waits at its gate.
 */
export async function readDraft(stores: Stores, report: NonNullable<TaskStatus['report']>): Promise<string> {
  try {
    return report.draftPath
      ? await readPublished(stores.reports, report.draftPath)
      : await getArtifact(stores.artifacts, report.artifact.id);
  } catch (err) {
    throw new Error(
      `the draft report cannot be read, so no decision is taken on it (the task waits at the report gate): ${(err as Error).message}`,
      { cause: err },
    );
  }
}

export const BODY_START = '<!-- baton:body:start -->';
export const BODY_END = '<!-- baton:body:end -->';

/** What a model-written line that reads like Baton's label starts with once neutralised. */
export const MODEL_TEXT_MARK = '(model text) ';

/** An HTML comment opener followed by `baton:`, in any case and spacing a renderer reads as one. */
const MARKER_LIKE = /<!--(?=\s*baton\s*:)/giu;
/** The phrases of Baton's label, with any spacing or dashes between the words. */
const LABEL_LIKE = /ai[\s\p{Pd}]*generated[\s\p{Pd}]*content|sign[\s\p{Pd}]*off\s*:|content[\s\p{Pd}]*hash/iu;

/**
 * Model text as it may appear in a report: a comment that could read as Baton's marker has its `<`
 * escaped (shown as text, never a comment), and a line that imitates the label (`AI-generated
 * content`, `Sign-off:`, `Content hash`) is marked with {@link MODEL_TEXT_MARK}, which also ends a
 * quote the line opened. Idempotent.
 */
export function neutraliseModelText(text: string): string {
  return text
    .replace(MARKER_LIKE, '&lt;!--')
    .split('\n')
    .map((line) =>
      !line.startsWith(MODEL_TEXT_MARK) && LABEL_LIKE.test(line.normalize('NFKC'))
        ? MODEL_TEXT_MARK + line
        : line,
    )
    .join('\n');
}

/** A value put into a label: one line, no comment opener. */
const inLabel = (value: string): string => value.replace(/\s+/g, ' ').replace(/<!--/g, '&lt;!--');

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

/** How an approval's signing reads in the label: signed, unsigned (taken as given), or not recorded (older tasks). */
const signedNote = (signed: boolean | undefined): string =>
  signed === undefined ? '' : signed ? ' (signed)' : ' (unsigned)';

/**
 * Everything of a report but its body: the text before it (the label and the start marker) and
 * after it (the end marker, the label with the content hash, the provenance block). The provenance
 * JSON escapes `<`, so no text in it (an approver's comment, a question) reads as a marker.
 */
export function reportFrame(provenance: SignedProvenance): { head: string; tail: string } {
  const models = [...new Set(provenance.agents.map((a) => a.model))].join(', ');
  const signOff = provenance.approvals.length
    ? provenance.approvals
        .map((a) => `${a.gate} approved by ${inLabel(a.by)} at ${a.at}${signedNote(a.signed)}`)
        .join('; ')
    : provenance.reportKind === 'final'
      ? 'no human sign-off was required by the playbook'
      : 'none yet';
  // A task the token budget stopped early is partial whatever its kind: its label says so, and why.
  const budgetStop = provenance.budget?.stopped;
  const budgetNote =
    budgetStop && provenance.reportKind !== 'partial'
      ? ` **PARTIAL: the token budget stopped the task before every planned step ran; the Gaps section names what is missing.** Stopped because: ${inLabel(budgetStop.reason)}.`
      : '';
  const status =
    provenance.reportKind === 'draft'
      ? ` **DRAFT awaiting sign-off: not final.**${budgetNote}`
      : provenance.reportKind === 'partial'
        ? ` **PARTIAL: the task stopped before the report was signed off; parts are missing.**${provenance.stoppedBecause ? ` Stopped because: ${inLabel(provenance.stoppedBecause)}.` : ''}`
        : budgetNote;
  const unsigned = provenance.signature
    ? ''
    : ' **Unsigned provenance: the worker had no publisher key, so nothing shows that Baton published this file.**';
  const signed = provenance.signature
    ? ` Provenance signed by publisher key \`${inLabel(provenance.signature.keyId)}\` (${inLabel(provenance.signature.alg)}).`
    : ' Provenance unsigned.';
  const label = `> **AI-generated content.**${status}${unsigned} This report was written by AI agents (models: ${inLabel(models)}) orchestrated by Baton, workflow \`${inLabel(provenance.workflowId)}\`. It may contain errors: check the cited sources before relying on it. Sign-off: ${signOff}.`;
  const bottom = `${label}\n> Content hash (sha256 of the text between the body markers): \`${provenance.contentHash ?? 'n/a'}\`. Config digest: \`${inLabel(provenance.configDigest)}\`.${costSentence(provenance)}${signed}`;
  const json = JSON.stringify(provenance, null, 2).replace(/</g, '\\u003c');
  return {
    head: [label, BODY_START, ''].join('\n\n'),
    tail: ['', BODY_END, '---', bottom, '## Provenance', '```json', json, '```', ''].join('\n\n'),
  };
}

export function renderReport(body: string, provenance: SignedProvenance): string {
  const { head, tail } = reportFrame(provenance);
  return head + body + tail;
}
