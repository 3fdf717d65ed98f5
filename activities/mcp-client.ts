/**
 * The MCP client Baton's workers and `npm run baton -- mcp pin` share (docs/tools.md#mcp-servers),
 * on the official MCP TypeScript SDK over Streamable HTTP: connecting to a declared server with its
 * bearer token from the environment ({@link withMcpServer}), listing its tools within bounds, and
 * checking declared tools against their pins ({@link checkPins}). Failures are Temporal failures,
 * retryable when the server or the network had trouble, not when it refused or changed.
 *
 * The token is read from the environment variable config names, and sent only to the server: never
 * logged, returned or put in a failure message (a server echoing it back is redacted).
 */
import { ApplicationFailure } from '@temporalio/common';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { LRUCache } from 'lru-cache';
import type { McpServer } from '../config/schema';
import { clip } from '../contract/bounds';
import { canonicalJson } from '../contract/canonical';
import { MCP_REQUEST_TIMEOUT_MS, McpFailureTypes, pinOf, type McpToolDefinition } from '../contract/mcp';
import { safeText } from '../contract/text';

/** Most bytes one HTTP response from an MCP server may have: a larger one is refused, never read whole. */
export const MAX_MCP_RESPONSE_BYTES = 4 * 1024 * 1024;
/** Most pages of a tool listing, and tools in all, read from one server. */
const MAX_LIST_PAGES = 20;
const MAX_LISTED_TOOLS = 1000;

/** Where a server is, and the variable its token is in: what connecting needs. */
export type McpEndpoint = Pick<McpServer, 'url' | 'tokenEnv'>;

export interface McpConnectOptions {
  /** Where the token's variable is read; the process's environment in a worker. */
  env: NodeJS.ProcessEnv;
  /** Aborts every request (the activity's cancellation). */
  signal?: AbortSignal;
  /** Each request's timeout; default {@link MCP_REQUEST_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/** One connected server. */
export interface McpSession {
  /** Every tool the server lists, as the pin covers them (bounded: {@link MAX_LISTED_TOOLS}). */
  list(): Promise<McpToolDefinition[]>;
  /** Calls a tool; the result as the server sent it. */
  call(name: string, args: Record<string, unknown>): Promise<CallToolResult>;
}

/** A failure not retried: the server refused, changed or broke the protocol. */
export const nonRetryable = (message: string, type: string, details?: unknown[]): ApplicationFailure =>
  ApplicationFailure.create({ message, type, nonRetryable: true, ...(details ? { details } : {}) });
const retryable = (message: string): ApplicationFailure =>
  ApplicationFailure.create({ message, type: McpFailureTypes.McpServerUnavailable, nonRetryable: false });

class ResponseTooLarge extends Error {
  override name = 'ResponseTooLarge';
}

/** `fetch`, refusing a response body past {@link MAX_MCP_RESPONSE_BYTES} as it streams in. */
async function boundedFetch(url: string | URL, init?: RequestInit): Promise<Response> {
  const response = await fetch(url, init);
  if (!response.body) return response;
  let seen = 0;
  const body = response.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > MAX_MCP_RESPONSE_BYTES)
          controller.error(
            new ResponseTooLarge(`its response is over the ${MAX_MCP_RESPONSE_BYTES} bytes Baton reads`),
          );
        else controller.enqueue(chunk);
      },
    }),
  );
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

/**
 * An error's message with its causes' (`fetch failed: connect ECONNREFUSED 127.0.0.1:9`), read by
 * shape: Node's fetch errors may come from another realm, where `instanceof Error` does not hold.
 */
function chainOf(err: unknown, depth = 0): string {
  const { message, cause } = (typeof err === 'object' && err !== null ? err : {}) as {
    message?: unknown;
    cause?: unknown;
  };
  const said = typeof message === 'string' ? message : String(err);
  return cause !== undefined && cause !== null && depth < 4 ? `${said}: ${chainOf(cause, depth + 1)}` : said;
}

/** JSON-RPC errors that say the server or the connection had trouble, not that the request was wrong. */
const TRANSIENT_ERRORS: number[] = [
  ErrorCode.RequestTimeout,
  ErrorCode.ConnectionClosed,
  ErrorCode.InternalError,
];

const isZodError = (err: unknown): boolean =>
  err instanceof Error && (err.name === 'ZodError' || err.name === '$ZodError');

/**
 * What went wrong talking to a server, as a Temporal failure: unreachable, 5xx, 429, a timeout or
 * a dropped connection are retryable; refused credentials and answers outside the protocol are not.
 * The token never appears in the message, even if the server echoed it.
 */
function failureOf(err: unknown, where: string, server: McpEndpoint, token: string | undefined): Error {
  if (err instanceof ApplicationFailure) return err;
  let said = safeText(chainOf(err));
  if (token) said = said.split(token).join('[token]');
  said = clip(said, 500);
  if (err instanceof McpError) {
    if (TRANSIENT_ERRORS.includes(err.code)) return retryable(`${where}: ${said}`);
    return nonRetryable(`${where}: answered outside the protocol: ${said}`, McpFailureTypes.McpProtocolError);
  }
  if (err instanceof StreamableHTTPError) {
    const status = err.code ?? -1;
    if (status === 401 || status === 403)
      return nonRetryable(
        `${where}: refused the worker's credentials (HTTP ${status}): ${
          server.tokenEnv
            ? `check the token in $${server.tokenEnv}`
            : 'it may need a token: name its variable with tokenEnv in config'
        }`,
        McpFailureTypes.McpAuthFailed,
      );
    if (status === 408 || status === 429 || status >= 500)
      return retryable(`${where}: HTTP ${status}: ${said}`);
    return nonRetryable(
      `${where}: does not answer as a Streamable HTTP MCP server (HTTP ${status}): ${said}`,
      McpFailureTypes.McpProtocolError,
    );
  }
  if (err instanceof ResponseTooLarge || isZodError(err))
    return nonRetryable(`${where}: answered outside the protocol: ${said}`, McpFailureTypes.McpProtocolError);
  // Anything else is retried: most likely the network (Node's fetch says "fetch failed").
  return retryable(`${where}: ${said.startsWith('fetch failed') ? 'cannot reach it: ' : ''}${said}`);
}

/**
 * Connects to a declared server (the token from `options.env[server.tokenEnv]`), hands `use` a
 * session, and closes it. Failures are Temporal failures ({@link failureOf}); a cancelled `signal`
 * rethrows its reason.
 */
export async function withMcpServer<T>(
  id: string,
  server: McpEndpoint,
  options: McpConnectOptions,
  use: (session: McpSession) => Promise<T>,
): Promise<T> {
  const where = `MCP server "${id}" (${server.url})`;
  const token = server.tokenEnv ? options.env[server.tokenEnv] : undefined;
  if (server.tokenEnv && !token)
    throw nonRetryable(
      `${where}: its token is read from $${server.tokenEnv}, which is not set on this worker`,
      McpFailureTypes.McpAuthFailed,
    );
  const requests = { signal: options.signal, timeout: options.timeoutMs ?? MCP_REQUEST_TIMEOUT_MS };
  const transport = new StreamableHTTPClientTransport(new URL(server.url), {
    fetch: boundedFetch,
    ...(token ? { requestInit: { headers: { authorization: `Bearer ${token}` } } } : {}),
  });
  const client = new Client({ name: 'baton', version: '1' });
  const session: McpSession = {
    async list() {
      const tools: McpToolDefinition[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < MAX_LIST_PAGES; page++) {
        const listed = await client.listTools(cursor === undefined ? {} : { cursor }, requests);
        for (const t of listed.tools)
          tools.push({
            name: t.name,
            ...(t.description === undefined ? {} : { description: t.description }),
            inputSchema: t.inputSchema,
          });
        if (tools.length > MAX_LISTED_TOOLS)
          throw nonRetryable(
            `${where}: lists over ${MAX_LISTED_TOOLS} tools`,
            McpFailureTypes.McpProtocolError,
          );
        cursor = listed.nextCursor;
        if (cursor === undefined) return tools;
      }
      throw nonRetryable(
        `${where}: its tool listing goes on past ${MAX_LIST_PAGES} pages`,
        McpFailureTypes.McpProtocolError,
      );
    },
    async call(name, args) {
      const result = await client.callTool({ name, arguments: args }, undefined, requests);
      // A server of the protocol's first version answers `toolResult` instead of content blocks.
      return 'content' in result
        ? (result as CallToolResult)
        : { content: [{ type: 'text', text: JSON.stringify(result.toolResult) }] };
    },
  };
  try {
    await client.connect(transport, requests);
    return await use(session);
  } catch (err) {
    if (options.signal?.aborted) throw options.signal.reason instanceof Error ? options.signal.reason : err;
    throw failureOf(err, where, server, token);
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** Which of a tool's description and schema differ between two listings. */
const changedParts = (before: McpToolDefinition, now: McpToolDefinition): string[] => [
  ...((before.description ?? '') === (now.description ?? '') ? [] : ['description']),
  ...(canonicalJson(before.inputSchema) === canonicalJson(now.inputSchema) ? [] : ['inputSchema']),
];

/**
 * Listings that matched their pin, by server URL, tool and pin: when a tool later stops matching,
 * what changed can be said (its description, its schema). Without one, the message says either.
 */
export type PinnedListings = LRUCache<string, McpToolDefinition>;
export const pinnedListings = (): PinnedListings => new LRUCache({ max: 256 });

/**
 * Checks the declared `tools` of server `id` against what it lists: each must be listed and hash to
 * its pin. Refuses with `ToolNotDeclared` (not listed) or `ToolPinMismatch` (naming the tool, both
 * hashes and what changed when known); answers the listed definitions of the declared tools.
 */
export function checkPins(
  id: string,
  server: McpServer,
  tools: readonly string[],
  listed: readonly McpToolDefinition[],
  seen?: PinnedListings,
): Map<string, McpToolDefinition> {
  const checked = new Map<string, McpToolDefinition>();
  for (const name of tools) {
    const pin = Object.hasOwn(server.tools, name) ? server.tools[name] : undefined;
    if (!pin)
      throw nonRetryable(
        `MCP tool "${name}" is not declared for server "${id}" in the task's config`,
        McpFailureTypes.ToolNotDeclared,
        [{ server: id, tool: name }],
      );
    const tool = listed.find((t) => t.name === name);
    if (!tool)
      throw nonRetryable(
        `MCP server "${id}" (${server.url}) no longer lists the declared tool "${name}"`,
        McpFailureTypes.ToolNotDeclared,
        [{ server: id, tool: name }],
      );
    const actual = pinOf(tool);
    const key = (hash: string): string => `${server.url}\n${name}\n${hash}`;
    if (actual !== pin.sha256) {
      const before = seen?.get(key(pin.sha256));
      const changed = before ? changedParts(before, tool) : undefined;
      throw nonRetryable(
        `MCP server "${id}" tool "${name}" is not the tool pinned in config: expected sha256 ${pin.sha256}, listed ${actual}; ${
          changed?.length ? `its ${changed.join(' and ')} changed` : 'its description or input schema changed'
        }. Review it and pin it again: npm run baton -- mcp pin ${id}`,
        McpFailureTypes.ToolPinMismatch,
        [{ server: id, tool: name, expected: pin.sha256, actual, changed }],
      );
    }
    seen?.set(key(actual), tool);
    checked.set(name, tool);
  }
  return checked;
}
