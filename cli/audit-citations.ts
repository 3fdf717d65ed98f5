/**
 * The audit's citation re-check (issue 19): every source the published report cites — each
 * address a Markdown renderer makes a link or image of, bare addresses included — is looked up in
 * the task's retrieval record, read from the artifact store by the reference Temporal recorded in
 * the task's provenance (never the report file's own, which whoever edited the file could change).
 * A cited source no tool returned is named; the audit then exits 3.
 */
import { citationKey } from '../contract/citations';
import { failureMessage } from '../contract/failures';
import type { ResearchTaskResult, TaskStatus } from '../contract/messages';
import { citedLinks, retrievalsOfTask } from '../activities/citations';
import type { ObjectStore } from '../activities/store';
import type { Answer } from './audit-record';
import { reportBody } from './audit-verify';

/** What the re-check found: each cited address backed or not, or why it could not run. */
export type CitationCheck =
  | {
      checked: true;
      /** The task's retrieval record (its index in the artifact store). */
      retrievalRecord: string;
      /** Distinct addresses the report cites. */
      cited: number;
      /** Those no retrieval in the record backs, as the report writes them. */
      unbacked: string[];
    }
  | { checked: false; reason: string };

/**
 * Re-checks the report file's citations against the task's retrieval record, each source once (by
 * its citation key); undefined when there is no report to check. A task from before the citation pass has no record: not checked, said so.
 */
export async function recheckCitations(input: {
  status: Answer<TaskStatus>;
  result: Answer<ResearchTaskResult>;
  reportText: Answer<string> | undefined;
  artifacts: () => ObjectStore;
}): Promise<CitationCheck | undefined> {
  if (!input.reportText?.ok) return undefined;
  const record =
    (input.result.ok ? input.result.value.provenance.citations : undefined) ??
    (input.status.ok ? input.status.value.citations : undefined);
  if (!record)
    return {
      checked: false,
      reason: 'the task has no retrieval record (it ran before the citation pass, or has no report yet)',
    };
  let retrieved;
  try {
    retrieved = await retrievalsOfTask(input.artifacts(), record.retrievalRecord);
  } catch (err) {
    return {
      checked: false,
      reason: `the retrieval record ${record.retrievalRecord.id} cannot be read from the artifact store (check BATON_STORE or BATON_ARTIFACT_DIR, and the payload keys): ${failureMessage(err)}`,
    };
  }
  const text = input.reportText.value;
  const body = reportBody(text);
  // Each source once: addresses with the same citation key are the same source.
  const cited = new Map<string, string>();
  for (const address of citedLinks(body.ok ? body.body : text)) {
    const key = citationKey(address) ?? `raw:${address}`;
    if (!cited.has(key)) cited.set(key, address);
  }
  const unbacked = [...cited].flatMap(([key, address]) => (retrieved.has(key) ? [] : [address]));
  return { checked: true, retrievalRecord: record.retrievalRecord.id, cited: cited.size, unbacked };
}
