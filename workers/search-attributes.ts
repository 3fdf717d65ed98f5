/**
 * Baton's custom search attributes must exist on the namespace before a task upserts them
 * (otherwise the workflow task fails until they do). Workers and `npm start` check at start and
 * register what is missing; where they lack the rights (Temporal Cloud, a locked-down cluster)
 * they stop with the command an administrator must run.
 */
import type { Connection } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../contract/messages';

const IndexedValueType = temporal.api.enums.v1.IndexedValueType;

const INDEXED: Record<string, temporal.api.enums.v1.IndexedValueType> = {
  [SearchAttributeType.KEYWORD]: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  [SearchAttributeType.KEYWORD_LIST]: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
};

/** The `temporal` commands that register the attributes by hand. */
export function registrationCommands(namespace: string): string[] {
  return SEARCH_ATTRIBUTES.map(
    (k) =>
      `temporal operator search-attribute create --namespace ${namespace} --name ${k.name} --type ${k.type === SearchAttributeType.KEYWORD_LIST ? 'KeywordList' : 'Keyword'}`,
  );
}

/** Registers whichever of Baton's search attributes are missing; returns their names. */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = SEARCH_ATTRIBUTES.filter((k) => !(k.name in (customAttributes ?? {})));
  if (missing.length === 0) return [];
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((k) => [k.name, INDEXED[k.type]!])),
    });
  } catch (err) {
    throw new Error(
      `the search attributes ${missing.map((k) => k.name).join(', ')} are not registered on namespace "${namespace}" and could not be added (${(err as Error).message}). Ask an administrator to run:\n  ${registrationCommands(namespace).join('\n  ')}`,
      { cause: err },
    );
  }
  return missing.map((k) => k.name);
}
