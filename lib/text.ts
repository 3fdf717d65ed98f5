/**
 * Text for terminals and one-line summaries: made harmless (by the one sanitizer, contract/text.ts),
 * the columns a string takes, and clipping to a width. Pure functions, shared by the CLI's views
 * (cli/live.ts) and the task summaries shown in the Temporal Web UI (client/tasks.ts).
 */
import stringWidth from 'string-width';
import { safeText } from '../contract/text';

/**
 * `text` as one safe line (contract/text.ts): escape sequences removed, invisible and control
 * characters shown as `⟨U+XXXX⟩`, line breaks and tabs as spaces. Text a model or a person wrote can
 * then never move the cursor, restyle, reorder or hide part of a terminal's output.
 */
export const sanitize = (text: string): string => safeText(text);

/** User-perceived characters: a letter with its combining marks, or a whole emoji sequence, is one. */
const graphemes = new Intl.Segmenter('en', { granularity: 'grapheme' });

/** Columns `text` takes in a terminal (East Asian wide characters and emoji take two; escape sequences none). */
export const displayWidth = (text: string): number => stringWidth(text);

/** The start of `text` that fits in `width - 1` columns, and `…`. Never splits a character. */
export function cut(text: string, width: number): string {
  if (width <= 0) return '';
  let out = '';
  let used = 0;
  for (const { segment } of graphemes.segment(text)) {
    const w = stringWidth(segment);
    if (used + w > width - 1) break;
    out += segment;
    used += w;
  }
  return `${out}…`;
}

/** `text` cut to at most `width` columns, ending with `…` when cut. */
export const clip = (text: string, width: number): string =>
  displayWidth(text) <= width ? text : cut(text, width);

/** One line of text as a single line: {@link sanitize}d, whitespace runs collapsed. */
export const line = (text: string): string => sanitize(text).replace(/\s+/g, ' ').trim();

/** Text as a one-line summary of at most `max` columns, e.g. a task's question for the Temporal Web UI. */
export const summaryLine = (text: string, max = 200): string => clip(line(text), max);
