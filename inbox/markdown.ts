/**
 * Reports as the inbox shows them: model-written Markdown rendered to HTML, with nothing of the
 * model's own HTML left.
 *
 * Two steps, each enough on its own for what the other misses. markdown-it renders the text with raw
 * HTML off (a `<script>` in the text stays the text "<script>") and its link check (no
 * `javascript:`, `vbscript:`, `file:` or `data:` links); citations `[step:<id>]` become links to
 * their entries under "References". sanitize-html then keeps only an allow-list: headings,
 * paragraphs, lists, tables, quotes, code, emphasis and links; links only to http(s) addresses (they
 * open in a new tab, without referrer) or to a reference entry on the page. No element keeps a
 * style, an event handler or an id other than a reference entry's; images, frames, forms and
 * scripts are dropped. The text first goes through the one text sanitizer (contract/text.ts), as
 * every string the inbox shows does. The page's CSP (./app.ts) stays as strict as before: nothing
 * here needs a script or an inline style.
 */
import { raw } from 'hono/html';
import MarkdownIt from 'markdown-it';
import sanitizeHtml from 'sanitize-html';
import { BODY_END, BODY_START } from '../activities/report';
import { safeBlock } from '../contract/text';
import type { Html } from './views';

/** A citation as the synthesis writes it (activities/index.ts checks the same form). */
const CITATION = /^\[step:([A-Za-z0-9_-]{1,32})\]/;

/** The element id of a step's reference entry. */
const referenceId = (step: string): string => `ref-step-${step}`;
const REFERENCE_ID = /^ref-step-[A-Za-z0-9_-]{1,32}$/;
const LINK = /^(https?:\/\/|#ref-step-[A-Za-z0-9_-]{1,32}$)/i;

const markdown = new MarkdownIt({ html: false, linkify: false, typographer: false });

// `[step:s1]` → a link to s1's reference entry (outside links only: links do not nest).
markdown.inline.ruler.before('link', 'citation', (state, silent) => {
  if (state.src.charCodeAt(state.pos) !== 0x5b /* [ */ || state.linkLevel > 0) return false;
  const match = CITATION.exec(state.src.slice(state.pos, state.pos + 48));
  if (!match) return false;
  if (!silent) {
    const open = state.push('link_open', 'a', 1);
    open.attrs = [
      ['href', `#${referenceId(match[1]!)}`],
      ['class', 'cite'],
    ];
    state.push('text', '', 0).content = match[0];
    state.push('link_close', 'a', -1);
  }
  state.pos += match[0].length;
  return true;
});

// Under a "References" heading, a list item that starts with a citation is that step's entry: it
// gets the id the citations link to (the first entry of a step only).
markdown.core.ruler.push('reference_entries', (state) => {
  const tokens = state.tokens;
  const seen = new Set<string>();
  let inReferences = false;
  tokens.forEach((token, i) => {
    if (token.type === 'heading_open') inReferences = tokens[i + 1]?.content.trim() === 'References';
    if (!inReferences || token.type !== 'list_item_open') return;
    const inline = tokens.slice(i + 1).find((t) => t.type === 'inline');
    // The item's first tokens, empty text left out: the citation, bold or not.
    const lead = (inline?.children ?? []).filter((t) => t.content || t.type !== 'text').slice(0, 2);
    const cite = lead.find((t) => t.type === 'link_open' && t.attrGet('class') === 'cite');
    const id = String(cite?.attrGet('href') ?? '').slice(1);
    if (id && !seen.has(id)) {
      seen.add(id);
      token.attrSet('id', id);
    }
  });
  return true;
});

const SANITIZE: sanitizeHtml.IOptions = {
  allowedTags: [
    'h1',
    'h2',
    'h3',
    'h4',
    'h5',
    'h6',
    'p',
    'br',
    'hr',
    'blockquote',
    'ul',
    'ol',
    'li',
    'strong',
    'em',
    's',
    'code',
    'pre',
    'a',
    'span',
    'table',
    'thead',
    'tbody',
    'tr',
    'th',
    'td',
  ],
  allowedAttributes: { a: ['href', 'class', 'rel', 'target'], li: ['id'], ol: ['start'] },
  allowedClasses: { a: ['cite'] },
  allowedSchemes: ['http', 'https'],
  allowedSchemesAppliedToAttributes: ['href'],
  allowProtocolRelative: false,
  // Dropped with their content: what must never be shown as text either.
  nonTextTags: ['script', 'style', 'textarea', 'noscript', 'iframe', 'object', 'title'],
  transformTags: {
    // Only http(s) links and links to a reference entry stay links; anything else is its text.
    a: (_tag, attribs): sanitizeHtml.Tag => {
      const href = attribs.href ?? '';
      if (!LINK.test(href)) return { tagName: 'span', attribs: {} };
      return href.startsWith('#')
        ? { tagName: 'a', attribs: { href, class: 'cite' } }
        : { tagName: 'a', attribs: { href, rel: 'noopener noreferrer nofollow', target: '_blank' } };
    },
    li: (_tag, attribs): sanitizeHtml.Tag => ({
      tagName: 'li',
      attribs: attribs.id && REFERENCE_ID.test(attribs.id) ? { id: attribs.id } : {},
    }),
  },
};

/** Model-written Markdown as sanitized HTML. */
export function renderMarkdown(text: string): Html {
  return raw(sanitizeHtml(markdown.render(safeBlock(text)), SANITIZE));
}

/**
 * A published report's parts: the label above the body, the body, and what follows it (the label
 * with the content hash, and the provenance record). A text without Baton's markers is all body.
 */
export function reportParts(text: string): { label: string; body: string; tail: string } {
  const start = text.indexOf(`\n${BODY_START}\n`);
  const end = text.lastIndexOf(`\n${BODY_END}\n`);
  if (start < 0 || end < start) return { label: '', body: text, tail: '' };
  return {
    label: text.slice(0, start),
    body: text.slice(start + BODY_START.length + 2, end),
    tail: text.slice(end + BODY_END.length + 2),
  };
}
