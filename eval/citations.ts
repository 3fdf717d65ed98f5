/**
 * Citation validity, computed without a judge: the share of an answer's cited sources that a tool
 * really returned during that run (issue 19, item 4). Mechanical, with Baton's own pieces:
 *
 * - Baton's modes: the counts of the task's citation pass, from its provenance (`citations`:
 *   verified and unverified cited sources, contract/citations.ts).
 * - The single agent: its answer's cited addresses (the sources it lists and every link in its
 *   text, as a Markdown renderer reads them) against the web search and fetch results in the
 *   response of that same call (`retrievals`, read from the server tool result blocks by
 *   activities/citations.ts), compared by the citation pass's own key ({@link citationKey}).
 * - One call has no tools: nothing it cites was retrieved, so its figure is 0% whenever it cites.
 *
 * As in the citation pass, a cited source is counted once per distinct address; a source listed
 * without an address, or with one that can never be verified (not http, https or mcp), is cited
 * and not backed.
 */
import { citedLinks } from '../activities/citations';
import { citationKey, type CitationSummary, type Retrieval } from '../contract/citations';
import type { Answer } from './modes';

/** What backed an answer's citations: the citation pass, the call's own tool results, or nothing (no tools). */
export const CITATION_BASES = ['citation-pass', 'tool-results', 'no-tools'] as const;
export type CitationBasis = (typeof CITATION_BASES)[number];

/** One answer's figure: distinct cited sources, how many a tool returned, and from what. */
export interface CitationValidity {
  cited: number;
  backed: number;
  basis: CitationBasis;
}

/** The share backed, 0 to 1; null when the answer cites nothing. */
export const citationShare = (c: CitationValidity | undefined): number | null =>
  c && c.cited > 0 ? c.backed / c.cited : null;

/** An answer's cited sources, each once: by citation key, else as cited (never backed). */
function citedSources(answer: Answer): Map<string, string | undefined> {
  const cited = new Map<string, string | undefined>();
  const add = (address: string): void => {
    const key = citationKey(address);
    cited.set(key ?? `raw:${address}`, key);
  };
  for (const s of answer.sources) {
    if (s.url) add(s.url);
    else cited.set(`title:${s.title}`, undefined);
  }
  for (const href of citedLinks(answer.text)) add(href);
  return cited;
}

/** An answer's figure against the sources its own call's tools returned (none: the one-call mode). */
export function citationValidity(
  answer: Answer,
  retrievals: readonly Retrieval[],
  basis: Exclude<CitationBasis, 'citation-pass'>,
): CitationValidity {
  const retrieved = new Set(retrievals.flatMap((r) => citationKey(r.url) ?? []));
  const cited = [...citedSources(answer).values()];
  return {
    cited: cited.length,
    backed: cited.filter((key) => key !== undefined && retrieved.has(key)).length,
    basis,
  };
}

/** A Baton task's figure: its citation pass's counts. */
export const citationValidityOfPass = (c: CitationSummary): CitationValidity => ({
  cited: c.verified + c.unverified,
  backed: c.verified,
  basis: 'citation-pass',
});
