/**
 * A content-addressed store for large texts (step findings, reports), so workflow history only
 * carries small references. Files live under the artifact folder; several workers share it
 * through a shared volume (see docker-compose.yml). Writing is idempotent: a retried activity
 * that stores the same text gets the same id.
 */
import { createHash, randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ArtifactRef } from '../contract/messages';

const ID_PATTERN = /^sha256:([0-9a-f]{64})$/;

export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Stores `text` and returns its reference. */
export async function putArtifact(dir: string, text: string): Promise<ArtifactRef> {
  const hex = sha256(text);
  const file = path.join(dir, hex.slice(0, 2), `${hex}.md`);
  await fs.mkdir(path.dirname(file), { recursive: true });
  // Write to a temporary name first so a reader never sees half a file. The name is unique per
  // write: two activities storing the same text at once (same process or not) must not share it.
  const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  await fs.writeFile(tmp, text, 'utf8');
  await fs.rename(tmp, file);
  return { id: `sha256:${hex}`, bytes: Buffer.byteLength(text, 'utf8') };
}

/** Reads the text behind a reference; fails clearly when the id is malformed or the file is missing. */
export async function getArtifact(dir: string, id: string): Promise<string> {
  const match = ID_PATTERN.exec(id);
  if (!match) throw new Error(`malformed artifact id "${id}" (expected sha256:<64 hex digits>)`);
  const hex = match[1]!;
  const file = path.join(dir, hex.slice(0, 2), `${hex}.md`);
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`artifact ${id} is missing from ${dir}: ${(err as Error).message}`, { cause: err });
  }
}
