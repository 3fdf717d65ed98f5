/**
 * The retrieval record and the citation pass (issue 19, docs/architecture.md "Citations"): what a
 * tool really returned during a step, and how a cited address is compared with it. Pure code:
 * workflows import it for types, activities and the audit for the schemas and the comparison.
 *
 * A step's retrieval record is made by the activity that sees the model's response, from the
 * response's tool result blocks (web search results, fetched pages) or from an MCP tool's result,
 * never from what the model writes. It is stored in the artifact store; history carries its
 * reference and a count.
 */
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import { z } from 'zod';
import type { ArtifactRef } from './messages';

/** Most retrievals one step's record keeps (the first ones); past them the record counts the rest. */
export const MAX_RETRIEVALS_PER_STEP = 200;
/** Most bytes of one step's record (JSON); a record never gets past it (entries are bounded below). */
export const MAX_RETRIEVAL_RECORD_BYTES = 1024 * 1024;
/** Most characters of a retrieved source's title and address kept in the record. */
export const MAX_RETRIEVAL_TITLE_CHARS = 300;
export const MAX_RETRIEVAL_URL_CHARS = 2000;
/** Most retrieval records a decomposed step carries from its child (its steps', then theirs'): the first ones. */
export const MAX_CHILD_RETRIEVAL_RECORDS = 100;
/** Unverified sources named one by one in the provenance (the count covers them all). */
export const MAX_UNVERIFIED_NAMED = 20;

const Sha256Id = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be "sha256:" and 64 hex digits');
const Title = z.string().max(MAX_RETRIEVAL_TITLE_CHARS);
const Url = z.string().min(1).max(MAX_RETRIEVAL_URL_CHARS);
const At = z.iso.datetime({ offset: true });

/**
 * One source a tool returned: a web search result (its page's age when the search gave one), a
 * fetched page, or an MCP tool's result (its server, tool and document id, and an `mcp://` address
 * for citing it: {@link mcpSourceUrl}). `contentHash` is the sha256 of what the tool returned for
 * it, when it returned content: a search result's encrypted content, a page's text (or PDF as
 * base64), an MCP result's text.
 */
/** What every retrieval records of its source: where, what it is called, when, and a hash of it. */
const RETRIEVED = {
  url: Url,
  title: Title,
  retrievedAt: At,
  contentHash: Sha256Id.optional(),
};

export const RetrievalSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('web_search'),
      ...RETRIEVED,
      pageAge: z.string().max(100).optional(),
    })
    .strict(),
  z.object({ kind: z.literal('web_fetch'), ...RETRIEVED }).strict(),
  z
    .object({
      kind: z.literal('mcp'),
      server: z.string().min(1).max(64),
      tool: z.string().min(1).max(128),
      document: z.string().min(1).max(500),
      ...RETRIEVED,
    })
    .strict(),
  // A document given with the task (docs/tools.md, "Documents"): in the step's request as a
  // document block; cited at its `document://` address ({@link documentSourceUrl}). Its hash is
  // always known: it is the document's id in the store.
  z
    .object({
      kind: z.literal('document'),
      document: z.string().min(1).max(120),
      ...RETRIEVED,
      contentHash: Sha256Id,
    })
    .strict(),
]);
export type Retrieval = z.infer<typeof RetrievalSchema>;

export const RETRIEVAL_RECORD_FORMAT = 'baton-retrievals/1';

/** A step's retrieval record as stored: its retrievals, and how many more there were past the cap. */
export const RetrievalRecordSchema = z
  .object({
    format: z.literal(RETRIEVAL_RECORD_FORMAT),
    step: z.string().min(1).max(200),
    retrievals: z.array(RetrievalSchema).max(MAX_RETRIEVALS_PER_STEP),
    /** Retrievals past {@link MAX_RETRIEVALS_PER_STEP}, not kept: a citation of one is unverified. */
    dropped: z.number().int().min(1).optional(),
  })
  .strict();
export type RetrievalRecord = z.infer<typeof RetrievalRecordSchema>;

export const RETRIEVAL_INDEX_FORMAT = 'baton-retrieval-index/1';

/** The task's retrieval record: each step's record by reference (what the citation pass read). */
export const RetrievalIndexSchema = z
  .object({
    format: z.literal(RETRIEVAL_INDEX_FORMAT),
    steps: z
      .array(
        z
          .object({
            step: z.string().min(1).max(200),
            record: z.object({ id: Sha256Id, bytes: z.number().int().min(0) }).strict(),
            count: z.number().int().min(0),
          })
          .strict(),
      )
      .max(100_000),
  })
  .strict();
export type RetrievalIndex = z.infer<typeof RetrievalIndexSchema>;

/** `sha256:<hex>` of a text, as the record names content. */
export const contentHashOf = (text: string): string => `sha256:${bytesToHex(sha256(utf8ToBytes(text)))}`;

/** Text clipped to `max` characters, by code point. */
const clip = (text: string, max: number): string => [...text].slice(0, max).join('');

/** The address a citation of an MCP result uses: `mcp://<server>/<tool>/<document id>`, each part URI-encoded. */
export const mcpSourceUrl = (server: string, tool: string, document: string): string =>
  `mcp://${encodeURIComponent(server)}/${encodeURIComponent(tool)}/${encodeURIComponent(document)}`;

/**
 * The address a citation of a task document uses: `document://<sha256 of its bytes>/<name>`, the
 * name URI-encoded. A page cited is the title's (`<name>, p. 3`), not the address's: one document,
 * one source.
 */
export const documentSourceUrl = (doc: { name: string; ref: { id: string } }): string =>
  `document://${doc.ref.id.replace(/^sha256:/, '')}/${encodeURIComponent(doc.name)}`;

/**
 * The retrieval an MCP tool call's result makes (the tool loop's, issue 18): its server, tool and
 * document id (the call's `id` or `uri` argument; the call's id when it has none:
 * activities/citations.ts `mcpCallAddress`), the result's title if any, when it was retrieved, and
 * the sha256 of its text.
 */
export function mcpRetrieval(result: {
  server: string;
  tool: string;
  document: string;
  title?: string;
  text: string;
  retrievedAt: string;
}): Retrieval {
  return {
    kind: 'mcp',
    server: clip(result.server, 64),
    tool: clip(result.tool, 128),
    document: clip(result.document, 500),
    url: clip(mcpSourceUrl(result.server, result.tool, result.document), MAX_RETRIEVAL_URL_CHARS),
    title: clip(result.title ?? result.document, MAX_RETRIEVAL_TITLE_CHARS),
    retrievedAt: result.retrievedAt,
    contentHash: contentHashOf(result.text),
  };
}

/**
 * The key a cited address is compared by, or undefined when it can never be verified. Two
 * addresses are the same source when their keys are equal:
 *
 * - parsed as a WHATWG URL: scheme and host in lower case, an internationalised host in its
 *   ASCII (punycode) form, a default port dropped; so an IDN homograph (`exаmple.com` with a
 *   Cyrillic `а`) has another key than `example.com`;
 * - the fragment dropped (the same document), and one trailing `/` of the path;
 * - the path and the query kept exactly: `/Report` is not `/report`, `?id=2` is not `?id=1`;
 * - only `http:`, `https:`, `mcp:` and `document:` addresses, and never one with a user name or password
 *   (`https://trusted.example@evil.example/` is evil.example pretending).
 */
export function citationKey(address: string): string | undefined {
  let url: URL;
  try {
    url = new URL(address.trim());
  } catch {
    return undefined;
  }
  if (!['http:', 'https:', 'mcp:', 'document:'].includes(url.protocol)) return undefined;
  if (url.username || url.password || !url.host) return undefined;
  const path = url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;
  return `${url.protocol}//${url.host}${path}${url.search}`;
}

/** What the report's provenance says of its citations (status too, so the report gate shows it). */
export interface CitationSummary {
  /** Distinct cited sources backed by a retrieval. */
  verified: number;
  /** Distinct cited sources no tool returned: marked `[unverified]` in the text, never listed. */
  unverified: number;
  /** Steps' sources removed from the report's references for being unverified. */
  removed: number;
  /** The first unverified sources, as cited (clipped): the count covers them all. */
  unverifiedSources?: string[];
  /** Retrievals in the task's record. */
  retrievals: number;
  /** The task's retrieval record: the index of every step's record, in the artifact store. */
  retrievalRecord: ArtifactRef;
}

/** One finished step as the citation pass reads it: its sources and its retrieval record, by reference. */
export interface CitationStep {
  id: string;
  /** The step's sources, inline (a decomposed step's) or by reference (a specialist's, since v12). */
  sources?: { title: string; url?: string }[];
  sourcesRef?: ArtifactRef;
  /** The step's retrieval record; absent when its tools returned nothing (or it ran before records). */
  retrievedRef?: ArtifactRef;
  /** A decomposed step's: its child's steps' records (at most {@link MAX_CHILD_RETRIEVAL_RECORDS}). */
  retrievedRefs?: ArtifactRef[];
}

export interface CheckCitationsInput {
  report: ArtifactRef;
  steps: CitationStep[];
}

export interface CheckCitationsResult {
  /** The report with unverified citations marked and the verified sources listed at its end. */
  report: ArtifactRef;
  citations: CitationSummary;
}

export interface CitationActivities {
  /**
   * The citation pass (no model call): every source the draft cites is checked against the steps'
   * retrieval records; an unverified one is marked in the text and removed from the references,
   * and the report ends with the verified sources.
   */
  checkCitations(input: CheckCitationsInput): Promise<CheckCitationsResult>;
}
