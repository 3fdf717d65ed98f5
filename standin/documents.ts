/**
 * Document content blocks as the Messages API checks them, and as the stand-in model cites them.
 * Each rule, and where the documentation says it:
 *
 * - A document's `source` is `base64` with `media_type` `application/pdf`, `text` with `media_type`
 *   `text/plain` and string `data`, `content`, `url` or `file` (API reference, DocumentBlockParam:
 *   Base64PDFSource, PlainTextSource, ContentBlockSource, URLPDFSource, FileDocumentSource).
 * - A PDF is a standard PDF, without password or encryption ("PDF support", PDF requirements): the
 *   stand-in refuses base64 data that does not decode to `%PDF-…`, or that has an `/Encrypt` entry.
 * - Citations are enabled on all of a request's documents or on none ("Citations": "citations must
 *   be enabled on all or none of the documents within a request").
 * - Citations and structured outputs are incompatible: a document with `citations.enabled` in a
 *   request with `output_config.format` is a 400 ("Citations", the warning under Feature
 *   compatibility; "Structured outputs": incompatible with citations). The message below says it in
 *   the documentation's words; the live API's exact sentence is not documented.
 */
import type { MessageParam } from './server';

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The 400 message for the request's document blocks, or undefined when they are as the API takes them. */
export function documentsProblem(
  messages: readonly MessageParam[],
  structuredOutput: boolean,
): string | undefined {
  const cited: boolean[] = [];
  for (const [i, m] of messages.entries()) {
    if (typeof m.content === 'string') continue;
    for (const [j, block] of m.content.entries()) {
      if (block.type !== 'document') continue;
      const where = `messages.${i}.content.${j}`;
      const { source, citations } = block;
      if (!isRecord(source)) return `${where}.source: Field required`;
      if (source.type === 'base64') {
        if (source.media_type !== 'application/pdf')
          return `${where}.source.media_type: Input should be 'application/pdf'`;
        if (typeof source.data !== 'string') return `${where}.source.data: Field required`;
        const pdf = Buffer.from(source.data, 'base64').toString('latin1');
        if (!pdf.startsWith('%PDF-')) return `${where}.source: The PDF specified was not valid.`;
        if (/\/Encrypt\b/.test(pdf))
          return `${where}.source: The PDF specified is password-protected or encrypted.`;
      } else if (source.type === 'text') {
        if (source.media_type !== 'text/plain')
          return `${where}.source.media_type: Input should be 'text/plain'`;
        if (typeof source.data !== 'string') return `${where}.source.data: Field required`;
      } else if (!['content', 'url', 'file'].includes(String(source.type))) {
        return `${where}.source.type: Input should be 'base64', 'text', 'content', 'url' or 'file'`;
      }
      cited.push(isRecord(citations) && citations.enabled === true);
    }
  }
  if (cited.some((c) => c) && !cited.every((c) => c)) {
    return 'Citations must be enabled on all or none of the documents within a request.';
  }
  if (structuredOutput && cited.some((c) => c)) {
    return 'Citations are not supported with structured outputs: citations on a document cannot be combined with output_config.format, because citations interleave citation blocks with text output, which is incompatible with the strict JSON schema constraints of structured outputs.';
  }
  return undefined;
}

/** The titles of the request's document blocks, in order (untitled ones as `Document n`). */
export function documentTitles(messages: readonly MessageParam[]): string[] {
  return messages
    .flatMap((m) => (typeof m.content === 'string' ? [] : m.content.filter((b) => b.type === 'document')))
    .map((b, n) => (typeof b.title === 'string' && b.title ? b.title : `Document ${n + 1}`));
}

/** Findings citing each document the request gave, by name and page, as Baton's prompt asks. */
export function withDocumentSources<T extends { sources: object[] }>(
  findings: T,
  messages: readonly MessageParam[],
): T {
  const titles = documentTitles(messages);
  if (!titles.length) return findings;
  return {
    ...findings,
    sources: [...findings.sources, ...titles.map((name) => ({ title: `${name}, p. 1`, document: name }))],
  };
}
