/**
 * The citation pass (v16, `citation-pass`; docs/architecture.md "Citations"): between synthesis and
 * the report gate, the draft goes through `checkCitations`, which checks every source it cites
 * against the steps' retrieval records (what their tools really returned) and gives back the report
 * with unverified sources marked and removed, ending with the verified ones. No model decides what
 * is verified. The counts go into the status (the report gate shows them) and the provenance.
 */
import { patched } from '@temporalio/workflow';
import {
  MAX_CHILD_RETRIEVAL_RECORDS,
  type CitationActivities,
  type CitationStep,
} from '../contract/citations';
import type { ArtifactRef, StepStatus, TaskStatus } from '../contract/messages';
import { bookkeepingProxy, summaryText } from './calls';

/** v16: the draft's citations are checked against the retrieval record before the report gate. */
export const CITATION_PASS = 'citation-pass';

/** Bookkeeping, as publishing: local reads and writes of the store, no model call (local since v18). */
const bookkeeping = bookkeepingProxy<CitationActivities>();

/** What the pass reads of each finished step: its sources and its retrieval record, by reference where it can. */
const citationSteps = (status: TaskStatus): CitationStep[] =>
  status.steps.flatMap((s) =>
    s.result
      ? [
          {
            id: s.id,
            ...(s.sourcesRef ? { sourcesRef: s.sourcesRef } : { sources: s.sources ?? [] }),
            ...(s.retrievedRef ? { retrievedRef: s.retrievedRef } : {}),
            ...(s.retrievedRefs?.length ? { retrievedRefs: s.retrievedRefs } : {}),
          },
        ]
      : [],
  );

/**
 * The synthesized report with its citations checked (v16), recorded in `status` as the latest
 * report with the counts; a task started before v16 keeps the report as synthesized.
 */
export async function checkedReport(status: TaskStatus, report: ArtifactRef): Promise<ArtifactRef> {
  if (!patched(CITATION_PASS)) return report;
  const checked = await bookkeeping().checkCitations.executeWithOptions(
    { summary: summaryText('citations · check the draft against the retrieval record') },
    [{ report, steps: citationSteps(status) }],
  );
  status.citations = checked.citations;
  status.report = { artifact: checked.report };
  return checked.report;
}

/**
 * The retrieval records of a child's steps (a decomposed step's grandchildren's too), in plan order,
 * at most {@link MAX_CHILD_RETRIEVAL_RECORDS}: what a `researchSubtask` hands its parent, whose
 * citation pass checks the decomposed step's sources against them. Payload only: no command.
 */
export const childRetrievals = (steps: readonly StepStatus[]): ArtifactRef[] =>
  steps
    .flatMap((s) => [...(s.retrievedRef ? [s.retrievedRef] : []), ...(s.retrievedRefs ?? [])])
    .slice(0, MAX_CHILD_RETRIEVAL_RECORDS);
