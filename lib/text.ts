/**
 * Text for terminals and one-line summaries: control characters made harmless, the columns a string
 * takes, and clipping to a width. Pure functions, shared by the CLI's views (cli/live.ts) and the
 * task summaries shown in the Temporal Web UI (client/tasks.ts).
 */

/**
 * `text` with control characters (C0, DEL, C1) and bidirectional overrides replaced by spaces: text
 * a model or a person wrote can then never move the cursor, restyle or reorder a terminal's output.
 */
export function sanitize(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const control =
      cp < 0x20 ||
      (cp >= 0x7f && cp <= 0x9f) ||
      (cp >= 0x202a && cp <= 0x202e) ||
      (cp >= 0x2066 && cp <= 0x2069);
    out += control ? ' ' : ch;
  }
  return out;
}

/** Code points that take no column: combining marks, zero-width characters, variation selectors. */
function isZeroWidth(cp: number): boolean {
  return (
    (cp >= 0x300 && cp <= 0x36f) ||
    (cp >= 0x1ab0 && cp <= 0x1aff) ||
    (cp >= 0x1dc0 && cp <= 0x1dff) ||
    (cp >= 0x20d0 && cp <= 0x20ff) ||
    (cp >= 0xfe20 && cp <= 0xfe2f) ||
    (cp >= 0x200b && cp <= 0x200f) ||
    (cp >= 0xfe00 && cp <= 0xfe0f) ||
    cp === 0x2060 ||
    cp === 0xfeff
  );
}

/** Code points a terminal draws two columns wide: CJK, Hangul, full-width forms, most emoji. */
function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f680 && cp <= 0x1f6ff) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  );
}

const charWidth = (ch: string): number => {
  const cp = ch.codePointAt(0)!;
  return isZeroWidth(cp) ? 0 : isWide(cp) ? 2 : 1;
};

/** Columns `text` takes in a terminal (text without escape sequences). */
export function displayWidth(text: string): number {
  let width = 0;
  for (const ch of text) width += charWidth(ch);
  return width;
}

/** The start of `text` that fits in `width - 1` columns, and `…`. */
export function cut(text: string, width: number): string {
  if (width <= 0) return '';
  let out = '';
  let used = 0;
  for (const ch of text) {
    const w = charWidth(ch);
    if (used + w > width - 1) break;
    out += ch;
    used += w;
  }
  return `${out}…`;
}

/** `text` cut to at most `width` columns, ending with `…` when cut. */
export const clip = (text: string, width: number): string =>
  displayWidth(text) <= width ? text : cut(text, width);

/** One line of text as a single line: whitespace runs collapsed, control characters replaced. */
export const line = (text: string): string => sanitize(text).replace(/\s+/g, ' ').trim();

/** Text as a one-line summary of at most `max` columns, e.g. a task's question for the Temporal Web UI. */
export const summaryLine = (text: string, max = 200): string => clip(line(text), max);
