/**
 * A content-addressed store for large texts (step findings, reports), so workflow history only
 * carries small references. The texts live in the artifact store (./store.ts): a local folder, or a
 * bucket every worker shares. Writing is idempotent: a retried activity that stores the same text
 * gets the same id and finds the object already there.
 */
import { ApplicationFailure } from '@temporalio/common';
import { createHash } from 'node:crypto';
import type { ArtifactRef } from '../contract/messages';
import { FailureTypes } from '../contract/failures';
import type { ObjectStore } from './store';

const ID_PATTERN = /^sha256:([0-9a-f]{64})$/;

export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** An artifact's key in the store: `ab/<hex>.md`, as the local folder has always laid it out. */
const keyOf = (hex: string): string => `${hex.slice(0, 2)}/${hex}.md`;

/** Stores `text` and returns its reference. */
export async function putArtifact(store: ObjectStore, text: string): Promise<ArtifactRef> {
  const hex = sha256(text);
  // Content-addressed: an object already under this key holds this very text.
  await store.create(keyOf(hex), Buffer.from(text, 'utf8'));
  return { id: `sha256:${hex}`, bytes: Buffer.byteLength(text, 'utf8') };
}

/**
 * Reads the text behind a reference. A malformed id, a missing object or one that does not match its
 * hash fails for good ({@link FailureTypes.ArtifactMissing}, naming the key): every worker reads the
 * same store, so a retry would find the same.
 */
export async function getArtifact(store: ObjectStore, id: string): Promise<string> {
  const match = ID_PATTERN.exec(id);
  if (!match) {
    throw ApplicationFailure.nonRetryable(
      `malformed artifact id "${id.slice(0, 80)}" (expected sha256:<64 hex digits>)`,
      FailureTypes.ArtifactMissing,
    );
  }
  const hex = match[1]!;
  const body = await store.get(keyOf(hex));
  if (body === undefined) {
    throw ApplicationFailure.nonRetryable(
      `artifact ${id} is missing from the store (key ${keyOf(hex)}): check that every worker uses the same BATON_STORE (or BATON_ARTIFACT_DIR)`,
      FailureTypes.ArtifactMissing,
    );
  }
  const text = body.toString('utf8');
  if (sha256(text) !== hex) {
    throw ApplicationFailure.nonRetryable(
      `artifact ${id} in the store (key ${keyOf(hex)}) does not match its hash: it was changed or damaged`,
      FailureTypes.ArtifactMissing,
    );
  }
  return text;
}
