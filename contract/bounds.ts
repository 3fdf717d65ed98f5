/**
 * Measuring and clipping what enters a task, so that nothing anyone sends or any model answers can
 * push a payload past Temporal's limits (2 MB a payload, 50 MB a history by default). Pure and
 * workflow-safe: `TextEncoder` is a global in Node and in the workflow sandbox, and the hash is
 * @noble/hashes (no Node modules). docs/security.md ("Bounded input") lists the limits.
 */
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex } from '@noble/hashes/utils';

const utf8 = new TextEncoder();

/** The UTF-8 size of a value's JSON, as Temporal's JSON payload converter carries it. */
export const jsonBytes = (value: unknown): number => utf8.encode(JSON.stringify(value) ?? 'null').length;

/** A payload as the audit trail keeps a refused one: its JSON's size in UTF-8 bytes and its sha256. */
export interface Measured {
  bytes: number;
  sha256: string;
}

/**
 * The size and hash of a payload's JSON (UTF-8), or undefined when it has none: nested too deeply
 * for `JSON.stringify`.
 */
export function measure(value: unknown): Measured | undefined {
  let text: string;
  try {
    text = JSON.stringify(value) ?? 'null';
  } catch {
    return undefined;
  }
  const data = utf8.encode(text);
  return { bytes: data.length, sha256: `sha256:${bytesToHex(sha256(data))}` };
}

/** Text cut to at most `max` UTF-16 units, an ellipsis marking the cut. */
export const clip = (text: string, max: number): string =>
  text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;

/** Text cut so that its JSON string weighs at most `maxBytes` of UTF-8, an ellipsis marking the cut. */
export function clipBytes(text: string, maxBytes: number): string {
  if (jsonBytes(text) <= maxBytes) return text;
  let used = jsonBytes('…');
  let end = 0;
  for (const char of text) {
    const bytes = jsonBytes(char) - 2;
    if (used + bytes > maxBytes) break;
    used += bytes;
    end += char.length;
  }
  return `${text.slice(0, end)}…`;
}
