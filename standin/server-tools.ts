/**
 * The server tools the stand-in knows, checked as the Messages API checks them: the versioned
 * `type`, the fixed `name`, only the documented fields, `max_uses` and `max_content_tokens` at least
 * 1, and never both `allowed_domains` and `blocked_domains` (the web search and web fetch tool docs:
 * one list or the other, not both). Field lists follow the SDK's `WebSearchTool20250305` and
 * `WebFetchTool20250910` types. The real API runs these tools; the stand-in checks the definitions
 * and otherwise ignores them.
 */

/** Each server tool type the stand-in accepts: its name and the fields it takes besides `type` and `name`. */
const SERVER_TOOLS: Record<string, { name: string; fields: readonly string[] }> = {
  web_search_20250305: {
    name: 'web_search',
    fields: [
      'allowed_domains',
      'blocked_domains',
      'max_uses',
      'user_location',
      'cache_control',
      'allowed_callers',
      'defer_loading',
      'strict',
    ],
  },
  web_fetch_20250910: {
    name: 'web_fetch',
    fields: [
      'allowed_domains',
      'blocked_domains',
      'max_uses',
      'max_content_tokens',
      'citations',
      'cache_control',
      'allowed_callers',
      'defer_loading',
      'strict',
      'url_sources',
    ],
  },
};

const positiveInt = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 1;

const domainList = (v: unknown): boolean =>
  v === null || (Array.isArray(v) && v.every((d) => typeof d === 'string' && d.length > 0));

/** Why the API would refuse tool `i` (a server tool: it has a `type`), or undefined when it takes it. */
export function serverToolProblem(tool: Record<string, unknown>, i: number): string | undefined {
  const type = String(tool.type);
  const known = SERVER_TOOLS[type];
  if (!known)
    return `tools.${i}: Input tag '${type}' found using 'type' does not match any of the expected tags: 'custom', ${Object.keys(
      SERVER_TOOLS,
    )
      .map((t) => `'${t}'`)
      .join(', ')}`;
  const at = `tools.${i}.${type}`;
  if (tool.name !== known.name) return `${at}.name: Input should be '${known.name}'`;
  for (const field of Object.keys(tool)) {
    if (field !== 'type' && field !== 'name' && !known.fields.includes(field))
      return `${at}.${field}: Extra inputs are not permitted`;
  }
  for (const field of ['max_uses', 'max_content_tokens']) {
    if (tool[field] !== undefined && tool[field] !== null && !positiveInt(tool[field]))
      return `${at}.${field}: Input should be greater than or equal to 1`;
  }
  for (const field of ['allowed_domains', 'blocked_domains']) {
    if (tool[field] !== undefined && !domainList(tool[field]))
      return `${at}.${field}: Input should be a valid list of strings`;
  }
  if (Array.isArray(tool.allowed_domains) && Array.isArray(tool.blocked_domains))
    return `${at}: Use either allowed_domains or blocked_domains, but not both in the same request`;
  return undefined;
}
