/**
 * What the model activities share: the refusals of an answer as its result and its failure message
 * say them, and the findings of earlier steps read from the store.
 */
import type { RefusedToolCall, Refusals } from '../contract/activities';
import type { ArtifactRef } from '../contract/messages';
import { getArtifact } from './artifacts';
import type { ContextItem } from './prompts';
import type { ObjectStore } from './store';

/** The refusals of one model answer, as an optional field (absent when there were none). */
export const refusals = (answer: { refusedToolCalls: RefusedToolCall[] }): Refusals =>
  answer.refusedToolCalls.length ? { refusedToolCalls: answer.refusedToolCalls } : {};

/** Names refused tool calls in a failure message, so the record survives the failed attempt. */
export const refusedNote = (refused: RefusedToolCall[]): string =>
  refused.length ? ` (refused tool calls: ${refused.map((r) => r.tool).join(', ')})` : '';

/** Reads the findings of the steps a call works from (by reference), as the prompts take them. */
export const contextReader =
  (store: ObjectStore) =>
  (items: { id: string; agent: string; result: ArtifactRef }[]): Promise<ContextItem[]> =>
    Promise.all(
      items.map(async (c) => ({ id: c.id, agent: c.agent, text: await getArtifact(store, c.result.id) })),
    );
