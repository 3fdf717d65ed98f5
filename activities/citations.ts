/**
 * What tools really returned, and the citation pass (docs/architecture.md, "Citations").
 *
 * - {@link retrievalsIn}: the sources a model response's server tool results hold (web search
 *   results, fetched pages), read from the response's blocks, never from the model's text. A
 *   specialist's step stores them as its retrieval record ({@link putRetrievalRecord}).
 * - `checkCitations`: before the report gate, every source the draft cites (a link in the text, a
 *   step's source in its references) is looked up in the steps' retrieval records by its
 *   {@link citationKey}. Backed by a retrieval: verified, and listed at the end with its title,
 *   address and retrieval time. Not: its link becomes plain text marked `[unverified]`, it is
 *   removed from the step's sources, and it is counted. No model decides any of it.
 * - {@link citedLinks}: every address a Markdown renderer would make a link or image of (bare
 *   addresses included), read with markdown-it: what the pass checks its own output with, and what
 *   `npm run audit` re-checks a published report with.
 */
import type Anthropic from '@anthropic-ai/sdk';
import { ApplicationFailure } from '@temporalio/common';
import MarkdownIt from 'markdown-it';
import type { z } from 'zod';
import {
  citationKey,
  contentHashOf,
  mcpRetrieval,
  mcpSourceUrl,
  MAX_CHILD_RETRIEVAL_RECORDS,
  MAX_RETRIEVAL_RECORD_BYTES,
  MAX_RETRIEVAL_TITLE_CHARS,
  MAX_RETRIEVAL_URL_CHARS,
  MAX_RETRIEVALS_PER_STEP,
  MAX_UNVERIFIED_NAMED,
  RETRIEVAL_INDEX_FORMAT,
  RETRIEVAL_RECORD_FORMAT,
  RetrievalIndexSchema,
  RetrievalRecordSchema,
  type CheckCitationsInput,
  type CheckCitationsResult,
  type CitationActivities,
  type CitationStep,
  type Retrieval,
  type RetrievalRecord,
} from '../contract/citations';
import { MAX_SOURCE_BYTES_PER_STEP, StoredSourcesSchema } from '../contract/activities';
import { boundProblems } from '../contract/bounds';
import { FailureTypes } from '../contract/failures';
import type { PreparedTool } from '../contract/mcp';
import type { ArtifactRef, Source } from '../contract/messages';
import type { ToolLoopTurn } from '../contract/tool-loop';
import { getArtifact, putArtifact } from './artifacts';
import { neutraliseModelText } from './report';
import type { ObjectStore } from './store';

const clip = (text: string, max: number): string => [...text].slice(0, max).join('');
const oneLine = (text: string): string => text.replace(/\s+/g, ' ').trim();

/**
 * The sources a response's server tool results hold, each with `at` as its retrieval time (a
 * fetched page's own `retrieved_at` when it has one). Only results of a call, in the same
 * response, to a tool the agent was offered; an address over {@link MAX_RETRIEVAL_URL_CHARS} is
 * left out (clipped, it would name another page).
 */
export function retrievalsIn(
  content: readonly Anthropic.ContentBlock[],
  offered: readonly Anthropic.ToolUnion[],
  at: string,
): Retrieval[] {
  const offeredNames = new Set(offered.flatMap((t) => ('name' in t ? [t.name] : [])));
  const calls = new Map(
    content.flatMap((b): [string, string][] =>
      b.type === 'server_tool_use' && offeredNames.has(b.name) ? [[b.id, b.name]] : [],
    ),
  );
  const title = (t: string | null | undefined, url: string): string =>
    clip(oneLine(t ?? '') || url, MAX_RETRIEVAL_TITLE_CHARS);
  const found: Retrieval[] = [];
  for (const block of content) {
    if (block.type === 'web_search_tool_result' && calls.get(block.tool_use_id) === 'web_search') {
      if (!Array.isArray(block.content)) continue;
      for (const r of block.content) {
        if (typeof r.url !== 'string' || !r.url || r.url.length > MAX_RETRIEVAL_URL_CHARS) continue;
        found.push({
          kind: 'web_search',
          url: r.url,
          title: title(r.title, r.url),
          ...(r.page_age ? { pageAge: clip(oneLine(r.page_age), 100) } : {}),
          retrievedAt: at,
          ...(r.encrypted_content ? { contentHash: contentHashOf(r.encrypted_content) } : {}),
        });
      }
    } else if (block.type === 'web_fetch_tool_result' && calls.get(block.tool_use_id) === 'web_fetch') {
      const page = block.content;
      if (page.type !== 'web_fetch_result' || !page.url || page.url.length > MAX_RETRIEVAL_URL_CHARS)
        continue;
      const data = (page.content as Anthropic.DocumentBlock | undefined)?.source?.data;
      found.push({
        kind: 'web_fetch',
        url: page.url,
        title: title(page.content?.title, page.url),
        retrievedAt:
          page.retrieved_at && !Number.isNaN(Date.parse(page.retrieved_at))
            ? new Date(page.retrieved_at).toISOString()
            : at,
        ...(typeof data === 'string' ? { contentHash: contentHashOf(data) } : {}),
      });
    }
  }
  return found;
}

/**
 * Stores a step's retrieval record (at most {@link MAX_RETRIEVALS_PER_STEP} retrievals and
 * {@link MAX_RETRIEVAL_RECORD_BYTES}, the rest counted as dropped): its reference and how many retrievals it keeps, or undefined when there are
 * none. For the specialist step and, with the MCP results of a step, for the MCP tool loop.
 */
export async function putRetrievalRecord(
  store: ObjectStore,
  step: string,
  retrievals: Retrieval[],
): Promise<{ retrievedRef: ArtifactRef; retrieved: number } | undefined> {
  if (retrievals.length === 0) return undefined;
  // The first ones that fit the count and the bytes (an entry is at most a few KB; a record 1 MB).
  const kept: Retrieval[] = [];
  let bytes = 1024;
  for (const r of retrievals.slice(0, MAX_RETRIEVALS_PER_STEP)) {
    bytes += Buffer.byteLength(JSON.stringify(r), 'utf8') + 1;
    if (bytes > MAX_RETRIEVAL_RECORD_BYTES) break;
    kept.push(r);
  }
  const record: RetrievalRecord = {
    format: RETRIEVAL_RECORD_FORMAT,
    step: clip(step, 200),
    retrievals: kept,
    ...(retrievals.length > kept.length ? { dropped: retrievals.length - kept.length } : {}),
  };
  return { retrievedRef: await putArtifact(store, JSON.stringify(record)), retrieved: kept.length };
}

/**
 * The document an MCP call read, as its `mcp://` address names it: the call's `id` (or `uri`)
 * argument, as a tool that reads one document is given it, else the call's id (a search, a list).
 */
function mcpDocument(call: { callId: string; arguments: Record<string, unknown> }): string {
  const named = [call.arguments.id, call.arguments.uri].find((v) => typeof v === 'string' && v.trim() !== '');
  return typeof named === 'string' ? named : call.callId;
}

/** The `mcp://` address a step cites an MCP call's result by (what the model is told with the result). */
export const mcpCallAddress = (call: McpCall): string =>
  mcpSourceUrl(call.server, call.tool, mcpDocument(call));

/** One MCP tool call as the tool loop made it. */
export interface McpCall {
  server: string;
  tool: string;
  callId: string;
  arguments: Record<string, unknown>;
}

/**
 * What a tool loop's tools returned (workflows/tool-loop.ts): each model turn's web search and
 * fetch results, read from its stored reply, and each MCP call that returned a result (not an
 * error), by its {@link mcpCallAddress}, read from the reply's `tool_use` blocks and the stored
 * result, never from the model's text. `at` is the retrieval time of what carries none of its own.
 */
export async function toolLoopRetrievals(
  store: ObjectStore,
  turns: readonly ToolLoopTurn[],
  tools: readonly PreparedTool[],
  offered: readonly Anthropic.ToolUnion[],
  at: string,
): Promise<Retrieval[]> {
  const perTurn = await Promise.all(
    turns.map(async (turn) => {
      const reply = JSON.parse(await getArtifact(store, turn.assistant.id)) as Anthropic.ContentBlock[];
      const mcp = await Promise.all(
        turn.answers.map(async (a) => {
          const use = reply.find(
            (b): b is Anthropic.ToolUseBlock => b.type === 'tool_use' && b.id === a.callId,
          );
          const tool = use && tools.find((t) => t.modelName === use.name);
          if (!a.result || a.isError || !tool || typeof use.input !== 'object' || use.input === null)
            return [];
          const call = {
            server: tool.server,
            tool: tool.tool,
            callId: a.callId,
            arguments: use.input as Record<string, unknown>,
          };
          return [
            mcpRetrieval({
              ...call,
              document: mcpDocument(call),
              text: await getArtifact(store, a.result.id),
              retrievedAt: at,
            }),
          ];
        }),
      );
      return [...retrievalsIn(reply, offered, at), ...mcp.flat()];
    }),
  );
  return perTurn.flat();
}

/** Fails for good, naming the artifact: a record or sources that are not what a step stored. */
const malformed = (what: string, ref: ArtifactRef, why: string): never => {
  throw ApplicationFailure.nonRetryable(
    `${what} (artifact ${ref.id}) is malformed: ${why}`,
    FailureTypes.ArtifactMissing,
  );
};

/** Reads JSON from the store, within `maxBytes`, checked with `schema`. */
async function readJson<T>(
  store: ObjectStore,
  ref: ArtifactRef,
  maxBytes: number,
  schema: z.ZodType<T>,
  what: string,
): Promise<T> {
  const text = await getArtifact(store, ref.id);
  if (Buffer.byteLength(text, 'utf8') > maxBytes) malformed(what, ref, `over ${maxBytes} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    malformed(what, ref, 'not JSON');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success)
    return malformed(
      what,
      ref,
      boundProblems(parsed.error.issues.map((i) => `${i.path.map(String).join('.')}: ${i.message}`)).join(
        '; ',
      ),
    );
  return parsed.data;
}

/** A step's retrieval record, read and checked. */
export const readRetrievalRecord = (store: ObjectStore, ref: ArtifactRef, step: string) =>
  readJson(
    store,
    ref,
    MAX_RETRIEVAL_RECORD_BYTES,
    RetrievalRecordSchema,
    `the retrieval record of step "${step}"`,
  );

/**
 * Every retrieval of a task's record (the index the citation pass stored, and each step's record
 * it names), by citation key: the first retrieval of each address. For `npm run audit`.
 */
export async function retrievalsOfTask(
  store: ObjectStore,
  index: ArtifactRef,
): Promise<Map<string, Retrieval>> {
  const parsed = await readJson(
    store,
    index,
    32 * 1024 * 1024,
    RetrievalIndexSchema,
    'the retrieval record of the task',
  );
  const records = await Promise.all(parsed.steps.map((s) => readRetrievalRecord(store, s.record, s.step)));
  return byKey(records.flatMap((r) => r.retrievals));
}

function byKey(retrievals: Retrieval[]): Map<string, Retrieval> {
  const map = new Map<string, Retrieval>();
  for (const r of retrievals) {
    const key = citationKey(r.url);
    if (key !== undefined && !map.has(key)) map.set(key, r);
  }
  return map;
}

// ---------------------------------------------------------------------------------------------------------
// Reading links as a renderer does

/** A renderer that links bare addresses too (as GitHub does): the widest reading of what is a link. */
const reader = new MarkdownIt({ html: false, linkify: true });
// Addresses with a scheme (or `//`) only: `www.` ones are read by the pass itself ({@link BARE}), and
// a fuzzy reading would take every `example.com` of the prose for a link.
reader.linkify.set({ fuzzyLink: false, fuzzyEmail: false });

/**
 * Every link and image address a Markdown renderer makes of `markdown` (markdown-it, with bare
 * addresses linked): inline and reference links, autolinks, images, bare `https://…` and `www.…`.
 * Addresses the renderer refuses (`javascript:` and the like) are no links and are not listed.
 */
export function citedLinks(markdown: string): string[] {
  const found: string[] = [];
  let inLink = 0;
  const walk = (tokens: ReturnType<typeof reader.parse>): void => {
    for (const t of tokens) {
      if (t.type === 'link_open') {
        inLink++;
        found.push(String(t.attrGet('href') ?? ''));
      }
      if (t.type === 'link_close') inLink--;
      if (t.type === 'image') found.push(String(t.attrGet('src') ?? ''));
      // `www.…` in text, which renderers that link bare addresses link too (as https).
      if (t.type === 'text' && !inLink)
        for (const [www] of t.content.matchAll(BARE_WWW)) found.push(`https://${trimAddress(www)}`);
      if (t.children) walk(t.children);
    }
  };
  walk(reader.parse(markdown, {}));
  return found;
}

// ---------------------------------------------------------------------------------------------------------
// The pass

/** What the pass found: cited sources by key (or, without one, as cited), verified or not. */
export interface Tally {
  verified: Map<string, Retrieval>;
  unverified: Map<string, string>;
  removed: number;
}

/** The mark after an unverified source: `[unverified]` as text, escaped so no definition makes it a link. */
const UNVERIFIED = '\\[unverified\\]';

/** An address as shown once unverified: one line, in a code span (never a link), no backtick. */
function shown(address: string): string {
  let text = address;
  try {
    // The host as the browser would go to: an IDN homograph shows as its punycode.
    text = new URL(address.trim()).href;
  } catch {
    // not an absolute URL: shown as written
  }
  return `\`${clip(oneLine(text).replace(/`/g, "'"), 300) || '(empty)'}\``;
}

/** Text that Markdown shows as written (no link, emphasis or code can start in it). */
const literal = (text: string): string => oneLine(text).replace(/([\\`*_[\]()<>#!|~])/g, '\\$1');

/** Inline link or image: `[text](dest "title")`, the destination in angle brackets or balanced parentheses. */
const INLINE_LINK =
  /(!?)\[((?:\\.|[^\]\\\n])*)\]\(\s*(<[^<>\n]*>|(?:[^\s()\\]|\\.|\((?:[^\s()\\]|\\.)*\))*)(?:\s+(?:"[^"\n]*"|'[^'\n]*'|\([^)\n]*\)))?\s*\)/g;
/** An autolink: `<scheme:…>`. */
const AUTOLINK = /<([a-z][a-z0-9+.-]{1,31}:[^\s<>]*)>/;
/** A bare address a linkifying renderer would link. */
const BARE = /(?:\b[a-z][a-z0-9+.-]{1,31}:\/\/|\bwww\.)[^\s<>`"]+/gi;
/** Whichever comes first: a link or image (groups 1-3), an autolink (group 4), a bare address. */
const LINK_OR_ADDRESS = new RegExp(`${INLINE_LINK.source}|${AUTOLINK.source}|${BARE.source}`, 'gi');
/** A bare `www.` address (which linkifying renderers link as https). */
const BARE_WWW = /\bwww\.[^\s<>`"]+/gi;

/** Trailing punctuation ends a sentence, not the address (as linkifying renderers read it). */
const trimAddress = (found: string): string => found.replace(/[.,;:!?'")\]*_~]+$/, '');

/** A reference definition: `[label]: dest "title"`. */
const DEFINITION = /^( {0,3})\[((?:\\.|[^\]\\])+)\]:\s*(<[^<>\n]*>|\S+)(.*)$/;

export function citationActivities(store: ObjectStore): CitationActivities {
  const sourcesOf = (s: CitationStep): Promise<Source[]> =>
    s.sourcesRef
      ? readJson(
          store,
          s.sourcesRef,
          MAX_SOURCE_BYTES_PER_STEP,
          StoredSourcesSchema,
          `the sources of step "${s.id}"`,
        )
      : Promise.resolve(s.sources ?? []);

  return {
    async checkCitations(input: CheckCitationsInput): Promise<CheckCitationsResult> {
      // Each step's record, and a decomposed step's child's records (named `<step>/<child's step>`).
      const refs = input.steps.flatMap((s) => [
        ...(s.retrievedRef ? [{ step: s.id, ref: s.retrievedRef, child: false }] : []),
        ...(s.retrievedRefs ?? [])
          .slice(0, MAX_CHILD_RETRIEVAL_RECORDS)
          .map((ref) => ({ step: s.id, ref, child: true })),
      ]);
      const [draft, sources, records] = await Promise.all([
        getArtifact(store, input.report.id),
        Promise.all(input.steps.map(sourcesOf)),
        Promise.all(
          refs.map((r) => readRetrievalRecord(store, r.ref, r.child ? `${r.step}'s child` : r.step)),
        ),
      ]);
      const retrieved = byKey(records.flatMap((r) => r.retrievals));
      const sourcesByStep = new Map(input.steps.map((s, i) => [s.id, sources[i]!]));
      const { text, tally } = checkedReportText(draft, sourcesByStep, retrieved);
      const index = {
        format: RETRIEVAL_INDEX_FORMAT,
        steps: refs.map((r, i) => ({
          step: r.child ? clip(`${r.step}/${records[i]!.step}`, 200) : r.step,
          record: r.ref,
          count: records[i]!.retrievals.length,
        })),
      };
      const [report, retrievalRecord] = await Promise.all([
        putArtifact(store, text),
        putArtifact(store, JSON.stringify(index)),
      ]);
      const unverified = [...tally.unverified.values()];
      return {
        report,
        citations: {
          verified: tally.verified.size,
          unverified: unverified.length,
          removed: tally.removed,
          ...(unverified.length
            ? {
                unverifiedSources: unverified
                  .slice(0, MAX_UNVERIFIED_NAMED)
                  .map((u) => clip(oneLine(u), 200)),
              }
            : {}),
          retrievals: retrieved.size,
          retrievalRecord,
        },
      };
    },
  };
}

/** The checked report: the draft's citations checked ({@link checkBody}), ending with the verified sources. */
export function checkedReportText(
  draft: string,
  sourcesByStep: Map<string, Source[]>,
  retrieved: Map<string, Retrieval>,
): { text: string; tally: Tally } {
  const { body, tally } = checkBody(draft, sourcesByStep, retrieved);
  return { text: neutraliseModelText(`${body}\n\n${referencesSection(tally)}`), tally };
}

/**
 * The draft with every citation checked: links and images in the text, autolinks, reference
 * definitions and bare addresses (outside code), and each step's `Sources:` line under its
 * reference entry (rewritten from the step's own sources: the verified ones stay sources, the
 * others are named as unverified). Checked again as a renderer reads it; if a link still escaped
 * the rewriting, every link outside the references is made plain text.
 */
export function checkBody(
  draft: string,
  sourcesByStep: Map<string, Source[]>,
  retrieved: Map<string, Retrieval>,
): { body: string; tally: Tally } {
  const tally: Tally = { verified: new Map(), unverified: new Map(), removed: 0 };
  /** Whether `address` is backed by a retrieval; counts it either way. */
  const check = (address: string, asCited = address): boolean => {
    const key = citationKey(address);
    const retrieval = key === undefined ? undefined : retrieved.get(key);
    if (retrieval) tally.verified.set(key!, retrieval);
    else tally.unverified.set(key ?? `raw:${address}`, asCited);
    return retrieval !== undefined;
  };
  const mark = (text: string, address: string): string =>
    `${text ? `${text} ` : ''}(unverified source, not retrieved by any tool: ${shown(address)}) ${UNVERIFIED}`;

  const lines = draft.split('\n');
  let fence: string | undefined;
  let step: string | undefined;
  const out = lines.map((line) => {
    const opened = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence) {
      if (opened && opened[0] === fence[0] && opened.length >= fence.length) fence = undefined;
      return line;
    }
    if (opened) {
      fence = opened;
      return line;
    }
    const entry = /^- \*\*\[step:([A-Za-z0-9_-]{1,32})\]\*\* /.exec(line)?.[1];
    if (entry) {
      step = entry;
      return proseLine(line);
    }
    const sourcesLine = step !== undefined && line.startsWith('  Sources: ');
    const of = step;
    step = undefined;
    if (sourcesLine) return stepSources(sourcesByStep.get(of!) ?? []);
    return proseLine(line);
  });

  /** A step's `Sources:` line: its verified sources as links; the others named as unverified. */
  function stepSources(sources: Source[]): string {
    const kept: string[] = [];
    const dropped: string[] = [];
    for (const s of sources) {
      if (s.url && check(s.url, `${s.title} <${s.url}>`))
        kept.push(`[${literal(s.title)}](<${linkTarget(s.url)}>)`);
      else {
        if (!s.url) tally.unverified.set(`title:${s.title}`, s.title);
        tally.removed++;
        dropped.push(`${literal(s.title)}${s.url ? ` ${shown(s.url)}` : ''} ${UNVERIFIED}`);
      }
    }
    return [
      ...(kept.length ? [`  Sources: ${kept.join('; ')}`] : []),
      ...(dropped.length ? [`  Not sources (no tool retrieved them): ${dropped.join('; ')}`] : []),
    ].join('\n');
  }

  /** A line of text: its links checked outside code spans. */
  function proseLine(line: string): string {
    const definition = DEFINITION.exec(line);
    if (definition) {
      const dest = definition[3]!.replace(/^<|>$/g, '');
      if (check(dest)) return line;
      return `${definition[1]}\\[${definition[2]}\\]: ${mark('', dest)}`;
    }
    return outsideCode(line, (text) =>
      text.replace(LINK_OR_ADDRESS, (found, bang?: string, label?: string, dest?: string, auto?: string) => {
        if (dest !== undefined || auto !== undefined) {
          const address = (dest ?? auto!).replace(/^<|>$/g, '');
          return check(address) ? found : mark(`${bang ? 'image: ' : ''}${label ?? ''}`, address);
        }
        const address = trimAddress(found);
        const rest = found.slice(address.length);
        return check(address.startsWith('www.') ? `https://${address}` : address, address)
          ? found
          : `${mark('', address)}${rest}`;
      }),
    );
  }

  let body = out.join('\n');
  // The renderer's reading, once more: nothing unverified may still be a link.
  const escaped = citedLinks(body).filter((href) => !isBacked(href, retrieved));
  if (escaped.length) {
    for (const href of escaped) tally.unverified.set(citationKey(href) ?? `raw:${href}`, href);
    body = body
      .split('\n')
      .map((line) =>
        outsideCode(line, (text) =>
          text.replace(/(?<!\\)([[\]<>])/g, '\\$1').replace(BARE, (u) => `\`${u}\``),
        ),
      )
      .join('\n');
    const still = citedLinks(body).filter((href) => !isBacked(href, retrieved));
    if (still.length)
      throw ApplicationFailure.nonRetryable(
        `the citation pass could not make these addresses plain text: ${still.slice(0, 5).join(', ')}`,
        FailureTypes.ModelOutputInvalid,
      );
  }
  return { body, tally };
}

/** Whether a rendered link's address is backed by a retrieval (a link to a reference entry is no citation). */
const isBacked = (href: string, retrieved: Map<string, Retrieval>): boolean => {
  const key = citationKey(href);
  return key !== undefined && retrieved.has(key);
};

/** `text` with `fn` applied outside its inline code spans. */
function outsideCode(text: string, fn: (plain: string) => string): string {
  const parts = text.split(/(`+[^`]*`+)/);
  return parts.map((p, i) => (i % 2 === 1 ? p : fn(p))).join('');
}

/** An address as a link's target in angle brackets: as the URL parser writes it (no space, no `<` or `>`). */
function linkTarget(address: string): string {
  try {
    return new URL(address).href.replace(/[<>\s]/g, encodeURIComponent);
  } catch {
    return encodeURI(address);
  }
}

/** What a retrieval was, for the references. */
function retrievalNote(r: Retrieval): string {
  const when = `retrieved ${r.retrievedAt}`;
  if (r.kind === 'document') return `document \`${literal(r.document)}\` given with the task, ${when}`;
  if (r.kind === 'mcp')
    return `document \`${literal(r.document)}\` from MCP server \`${literal(r.server)}\` (tool \`${literal(r.tool)}\`), ${when}`;
  if (r.kind === 'web_fetch') return `page fetched, ${when}`;
  return `web search result${r.pageAge ? ` (page age: ${literal(r.pageAge)})` : ''}, ${when}`;
}

/** The report's last section: the verified sources it cites, and what was not verified. */
function referencesSection(tally: Tally): string {
  const verified = [...tally.verified.values()];
  const lines = verified.map(
    (r, i) =>
      `${i + 1}. [${literal(r.title) || literal(r.url)}](<${linkTarget(r.url)}>): ${retrievalNote(r)}`,
  );
  const unverified = tally.unverified.size;
  return [
    '## References: verified sources',
    `Every source below was returned by a tool (web search, web fetch or MCP) while the task ran, or given with the task as a document, as its retrieval record shows. ${
      unverified
        ? `${unverified} cited source(s) no tool returned are marked ${UNVERIFIED} in the text and are not sources of this report.`
        : 'Every source the report cites is among them.'
    }`,
    ...(lines.length ? [lines.join('\n')] : ['_The report cites no retrieved source._']),
  ].join('\n\n');
}
