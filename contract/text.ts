/**
 * The one sanitizer for text a person reads that a model, a tool or a signal wrote: plan rationales
 * and step questions, findings, reports, errors, approvers' names and comments. Pure and
 * workflow-safe (no Node modules, no dependencies), so activities, workflows, the CLIs and the inbox
 * all apply the same rule.
 *
 * The policy: **what would act is removed; what would hide is shown.**
 *  - Terminal escape sequences are removed whole, with their parameters and payloads: CSI
 *    (`ESC [` or C1 `0x9B`: cursor moves, erasing, colours), OSC (`ESC ]`: titles, OSC 8 hyperlinks,
 *    OSC 52 clipboard writes) and DCS, SOS, PM and APC strings up to their terminator (BEL or ST) or the
 *    end of the line, and two-character escapes (`ESC 7`, `ESC c`…). No tail such as `[2J` is left.
 *  - Every other character that is invisible or acts instead of showing is made visible as
 *    `⟨U+XXXX⟩`: the remaining C0 and C1 controls and DEL (a backspace, a lone ESC, NEL), bidi
 *    overrides, embeddings, isolates and marks (U+202A–U+202E, U+2066–U+2069, U+200E/F, U+061C),
 *    Unicode tag characters (U+E0000–U+E007F), zero-width characters (U+200B–U+200D, U+2060, U+FEFF)
 *    and every other default-ignorable code point (Hangul fillers, variation selectors, soft hyphen…),
 *    format characters, lone surrogates and noncharacters. Two exceptions keep ordinary emoji whole: a
 *    single variation selector U+FE0E/U+FE0F right after an emoji, and a zero-width joiner between
 *    two emoji.
 *  - Line breaks: `\r\n`, a lone `\r` (which would return the cursor and let the rest of the line
 *    overwrite what came before), U+2028 and U+2029 are new lines. With `multiline`, new lines stay
 *    `\n` and a tab becomes four spaces; otherwise each is one space.
 *
 * Applied where text enters (activities/index.ts: what the lead and the specialists return, so the
 * plan a person approves is the plan specialists get) and again on every surface that shows it.
 * Sanitizing is idempotent: sanitized text comes back unchanged.
 */

export interface SafeTextOptions {
  /** Keep new lines (as `\n`) and turn tabs into four spaces; otherwise both become one space. */
  multiline?: boolean;
}

/**
 * Whole terminal escape sequences: CSI (7-bit or C1) with its parameter, intermediate and final
 * bytes; OSC, DCS, SOS, PM and APC strings with their payload, up to BEL or ST (`ESC \` or C1
 * `0x9C`), or else up to the end of the line; and two-character escapes with any intermediates.
 */
const ESCAPE_SEQUENCE =
  // eslint-disable-next-line no-control-regex -- finding control characters is what this is for
  /(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?|\x1b[\x20-\x2f]*[\x30-\x7e]/g;

/**
 * Line breaks, and every character that is invisible or acts instead of showing: controls (Cc),
 * format characters (Cf: bidi controls, zero-width characters, tags), lone surrogates (Cs), line and
 * paragraph separators, default-ignorable code points and noncharacters.
 */
const HIDDEN =
  /\r\n?|[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]/gu;

const EMOJI = /^\p{Emoji}$/u;
const PICTOGRAPH = /^\p{Extended_Pictographic}$/u;

/** A code point as people can see it: `⟨U+202E⟩`. */
const visibleCodePoint = (codePoint: number): string =>
  `⟨U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}⟩`;

/** The code point that ends just before `index` (a surrogate pair counts as one). */
function codePointBefore(text: string, index: number): string {
  const low = text.charCodeAt(index - 1);
  const pair = low >= 0xdc00 && low <= 0xdfff && index >= 2;
  return String.fromCodePoint(text.codePointAt(pair ? index - 2 : index - 1) ?? 0);
}

/** Whether the hidden character `ch` at `index` is part of an ordinary emoji (and so is kept). */
function partOfEmoji(text: string, ch: string, index: number): boolean {
  if (index === 0) return false;
  const before = codePointBefore(text, index);
  if (ch === '\ufe0e' || ch === '\ufe0f') return EMOJI.test(before);
  if (ch !== '\u200d') return false;
  const after = String.fromCodePoint(text.codePointAt(index + 1) ?? 0);
  return (EMOJI.test(before) || before === '\ufe0f') && PICTOGRAPH.test(after);
}

/**
 * `text` safe to show to a person on a terminal or a web page, by the policy above: escape sequences
 * removed whole, invisible and control characters shown as `⟨U+XXXX⟩`, line breaks normalised (kept
 * with `multiline`, spaces otherwise).
 */
export function safeText(text: string, options: SafeTextOptions = {}): string {
  const newline = options.multiline ? '\n' : ' ';
  const tab = options.multiline ? '    ' : ' ';
  return text.replace(ESCAPE_SEQUENCE, '').replace(HIDDEN, (ch: string, index: number, all: string) => {
    if (ch === '\n' || ch === '\r' || ch === '\r\n' || ch === '\u2028' || ch === '\u2029') return newline;
    if (ch === '\t') return tab;
    if (partOfEmoji(all, ch, index)) return ch;
    return visibleCodePoint(ch.codePointAt(0)!);
  });
}

/** Multi-line text (a rationale, findings, a report, a comment) through {@link safeText}. */
export const safeBlock = (text: string): string => safeText(text, { multiline: true });

/**
 * JSON text whose string values keep their data exactly but print harmlessly: every character
 * {@link safeText} would remove or show is written as a `\uXXXX` escape instead (JSON.stringify
 * escapes only U+0000–U+001F inside strings). Tabs, new lines and carriage returns are left alone:
 * outside strings they are JSON's own whitespace, and inside strings JSON.stringify escaped them
 * already. `JSON.parse` of the result equals `JSON.parse` of `json`.
 */
export const safeJson = (json: string): string =>
  json.replace(
    /(?![\t\n\r])[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]/gu,
    (ch: string) =>
      Array.from(
        { length: ch.length },
        (_, i) => `\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`,
      ).join(''),
  );
