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

/**
 * A server tool's call and its result as the API returns them in a reply, which a test scripts in
 * a `blocks` reply (./server.ts): the stand-in runs no search and fetches nothing, it sends what
 * it is given, in the API's shapes (the SDK's `ServerToolUseBlock`, `WebSearchToolResultBlock`,
 * `WebFetchToolResultBlock`).
 */
export type ServerToolBlock =
  | { type: 'server_tool_use'; id: string; name: 'web_search' | 'web_fetch'; input: Record<string, unknown> }
  | {
      type: 'web_search_tool_result';
      tool_use_id: string;
      content: {
        type: 'web_search_result';
        url: string;
        title: string;
        encrypted_content: string;
        page_age: string | null;
      }[];
    }
  | {
      type: 'web_fetch_tool_result';
      tool_use_id: string;
      content: {
        type: 'web_fetch_result';
        url: string;
        retrieved_at: string | null;
        content: {
          type: 'document';
          source: { type: 'text'; media_type: 'text/plain'; data: string };
          title: string | null;
          citations: null;
        };
      };
    };

/** A web search the model made (`id`: the call's id, unique in the reply) and the results it got. */
export function webSearchBlocks(
  id: string,
  query: string,
  results: { url: string; title: string; pageAge?: string; content?: string }[],
): ServerToolBlock[] {
  return [
    { type: 'server_tool_use', id, name: 'web_search', input: { query } },
    {
      type: 'web_search_tool_result',
      tool_use_id: id,
      content: results.map((r) => ({
        type: 'web_search_result',
        url: r.url,
        title: r.title,
        encrypted_content: Buffer.from(r.content ?? `stand-in page ${r.url}`).toString('base64'),
        page_age: r.pageAge ?? null,
      })),
    },
  ];
}

/** A page the model fetched (`id`: the call's id) and its text. */
export function webFetchBlocks(
  id: string,
  page: { url: string; title: string; text: string; retrievedAt?: string },
): ServerToolBlock[] {
  return [
    { type: 'server_tool_use', id, name: 'web_fetch', input: { url: page.url } },
    {
      type: 'web_fetch_tool_result',
      tool_use_id: id,
      content: {
        type: 'web_fetch_result',
        url: page.url,
        retrieved_at: page.retrievedAt ?? null,
        content: {
          type: 'document',
          source: { type: 'text', media_type: 'text/plain', data: page.text },
          title: page.title,
          citations: null,
        },
      },
    },
  ];
}
