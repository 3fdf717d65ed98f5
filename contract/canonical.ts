/**
 * Canonical JSON: one text for one value, so a hash or a signature over it does not depend on key
 * order or formatting. Pure code: the config digest (activities/config.ts), the plan a decision is
 * about and the statement an approver signs (contract/decision.ts) all use it.
 */

/** JSON with object keys sorted (by UTF-16 code units), no whitespace, `undefined` members left out. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
