/**
 * Live words: what a model call in flight shows of itself to the people watching (the live view of
 * `npm start` and `npm run baton -- watch`, the inbox). The activity sends them as its heartbeat's
 * details (activities/model.ts), throttled by Temporal's heartbeat throttling, so they are never
 * part of workflow history's events as the task runs; bounded, and sanitized before they leave the
 * worker. Readers take them from the pending activities `describe` lists, decoded with the data
 * converter (so with payload encryption they travel encrypted). A finished step shows its summary.
 */
import { safeText } from './text';

/** The last characters of a call's text that are shown. */
export const MAX_LIVE_CHARS = 600;

/** A running call's live words: whose call, the tail of what it has written, and how much. */
export interface LiveWords {
  agent: string;
  /** The plan step the call is for (a specialist's); absent for the lead's calls. */
  step?: string;
  words: string;
  /** Characters written so far (the answer's JSON, as streamed). */
  chars: number;
}

/** `{"summary":"…","findings":"…` as prose: keys, braces, quotes and escapes dropped. */
const readable = (json: string): string =>
  json
    .replace(/\\u[0-9a-fA-F]{4}/g, ' ')
    .replace(/\\[nrt]/g, ' ')
    .replace(/\\(["\\/])/g, '$1')
    .replace(/"[A-Za-z_][A-Za-z0-9_]*"\s*:/g, ' ')
    .replace(/[{}[\]"]/g, ' ')
    .replace(/\s*,\s*(?=\s)/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();

/** The live words of a call that has streamed `text` so far: readable, sanitized, its last {@link MAX_LIVE_CHARS} characters. */
export function liveWords(text: string, who: Pick<LiveWords, 'agent' | 'step'>): LiveWords {
  const chars = [...safeText(readable(text))];
  const tail =
    chars.length > MAX_LIVE_CHARS ? `…${chars.slice(-(MAX_LIVE_CHARS - 1)).join('')}` : chars.join('');
  return { agent: who.agent, ...(who.step ? { step: who.step } : {}), words: tail, chars: text.length };
}

/** Live words as a reader decodes them from heartbeat details: checked, bounded and sanitized again. */
export function liveWordsOf(details: unknown): LiveWords | undefined {
  const first = Array.isArray(details) ? (details[0] as unknown) : details;
  if (!first || typeof first !== 'object') return undefined;
  const { agent, step, words, chars } = first as Partial<LiveWords>;
  if (typeof agent !== 'string' || typeof words !== 'string') return undefined;
  if (typeof chars !== 'number' || !Number.isFinite(chars)) return undefined;
  const clipped = (text: string, max: number) => [...safeText(text)].slice(-max).join('');
  return {
    agent: clipped(agent, 40),
    ...(typeof step === 'string' ? { step: clipped(step, 40) } : {}),
    words: clipped(words, MAX_LIVE_CHARS),
    chars: Math.max(0, Math.floor(chars)),
  };
}
