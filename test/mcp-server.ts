/**
 * A real MCP server for tests, built with the official SDK's server API (`McpServer` and
 * `StreamableHTTPServerTransport`, stateless, JSON responses) on 127.0.0.1 at a random port. It
 * serves the small corpus in test/fixtures/mcp-corpus/ (one document a `.md` file; its id is the
 * file's name without `.md`, its title the first line) through two tools:
 *
 *   search_documents { query }   the documents whose text has a word of the query: "<id>: <title>" lines
 *   read_document { id }         one document's text; an id not in the corpus is an error result
 *
 * Usage:
 *
 *   const mcp = await startMcpServer({ token: 'secret' });   // token: require `Authorization: Bearer secret`
 *   startMcpServer({ documents: { extra: '# Title\n…' } })  // serves more documents, by id, besides the corpus
 *   mcp.url                                  // http://127.0.0.1:<port>/mcp
 *   mcp.changeTool('read_document', { description: '…' })   // a rug pull: listed differently from now on
 *   mcp.changeTool('search_documents', { inputSchema: { query: z.string(), limit: z.number() } })
 *   mcp.removeTool('read_document')          // no longer listed nor served
 *   mcp.callCount('search_documents')        // how many calls of the tool reached its handler
 *   mcp.calls                                // every such call, in order: { tool, arguments }
 *   mcp.failNext(2, 503)                     // the next 2 HTTP requests get that status, unserved
 *   const release = mcp.holdCalls()          // calls reach their handler (counted) and wait there
 *   release()                                //   until released: a call in flight, to cancel or kill
 *   await mcp.close()
 *
 * Each HTTP request gets a fresh McpServer built from the tools' current state, so a change shows
 * in the next listing at once. Nothing here reads a path a caller names: ids are looked up in the
 * corpus only.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { promises as fs, readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { withMcpServer } from '../activities/mcp-client';
import { pinOf } from '../contract/mcp';

/** Where the fixture corpus is. */
export const MCP_CORPUS_DIR = path.join(__dirname, 'fixtures', 'mcp-corpus');

export type FixtureToolName = 'search_documents' | 'read_document';

/** How a tool is listed: what its pin covers besides its name. */
export interface FixtureToolListing {
  description: string;
  inputSchema: z.ZodRawShape;
}

/** The tools as the server lists them when it starts. */
export const FIXTURE_TOOLS: Readonly<Record<FixtureToolName, FixtureToolListing>> = {
  search_documents: {
    description:
      'Searches the document corpus. Returns one line per matching document: its id, a colon and its title.',
    inputSchema: { query: z.string().min(1).max(200).describe('Words to look for') },
  },
  read_document: {
    description: 'Reads one document of the corpus by its id (as search_documents returns it).',
    inputSchema: { id: z.string().min(1).max(100).describe('The id of a document') },
  },
};

export interface McpFixtureOptions {
  /** Require `Authorization: Bearer <token>` on every request (else 401). */
  token?: string;
  /** Documents served besides the corpus, by id: their text (its first line the title). */
  documents?: Readonly<Record<string, string>>;
}

export interface McpFixture {
  /** The Streamable HTTP endpoint: `http://127.0.0.1:<port>/mcp`. */
  url: string;
  /** Lists the tool differently from the next request on: its description, its input schema, or both. */
  changeTool(name: FixtureToolName, change: Partial<FixtureToolListing>): void;
  /** Stops listing and serving the tool. */
  removeTool(name: FixtureToolName): void;
  /** Calls that reached a tool's handler, in order. */
  readonly calls: readonly { tool: FixtureToolName; arguments: Record<string, unknown> }[];
  /** How many calls reached the tool's handler. */
  callCount(name: FixtureToolName): number;
  /** The next `count` HTTP requests are answered with `status` (default 503) and not served. */
  failNext(count: number, status?: number): void;
  /** Calls from now on reach their handler (and are counted) but wait there until the returned function is called. */
  holdCalls(): () => void;
  close(): Promise<void>;
}

interface Doc {
  id: string;
  title: string;
  text: string;
}

function readCorpus(extra: Readonly<Record<string, string>> = {}): Map<string, Doc> {
  const texts: [string, string][] = readdirSync(MCP_CORPUS_DIR)
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((file) => [file.replace(/\.md$/, ''), readFileSync(path.join(MCP_CORPUS_DIR, file), 'utf8')]);
  const docs = new Map<string, Doc>();
  for (const [id, text] of [...texts, ...Object.entries(extra)])
    docs.set(id, { id, title: (text.split('\n')[0] ?? '').replace(/^#\s*/, ''), text });
  return docs;
}

const textResult = (text: string, isError = false): CallToolResult => ({
  content: [{ type: 'text', text }],
  ...(isError ? { isError } : {}),
});

export async function startMcpServer(options: McpFixtureOptions = {}): Promise<McpFixture> {
  const corpus = readCorpus(options.documents);
  const tools = new Map<FixtureToolName, FixtureToolListing>(
    Object.entries(FIXTURE_TOOLS) as [FixtureToolName, FixtureToolListing][],
  );
  const calls: { tool: FixtureToolName; arguments: Record<string, unknown> }[] = [];
  let failing = { count: 0, status: 503 };
  let held: Promise<void> = Promise.resolve();

  const handlers: Record<FixtureToolName, (args: Record<string, unknown>) => CallToolResult> = {
    search_documents: (args) => {
      const words = String(args.query)
        .toLowerCase()
        .split(/\W+/)
        .filter((w) => w.length > 2);
      const found = [...corpus.values()].filter((d) => words.some((w) => d.text.toLowerCase().includes(w)));
      return textResult(
        found.length ? found.map((d) => `${d.id}: ${d.title}`).join('\n') : 'No document matches.',
      );
    },
    read_document: (args) => {
      const doc = corpus.get(String(args.id));
      return doc ? textResult(doc.text) : textResult(`No document has the id "${String(args.id)}".`, true);
    },
  };

  /** A server listing the tools as they are now. */
  const build = (): McpServer => {
    const server = new McpServer({ name: 'baton-fixture-corpus', version: '1.0.0' });
    for (const [name, listing] of tools) {
      server.registerTool(
        name,
        { description: listing.description, inputSchema: listing.inputSchema },
        async (args: Record<string, unknown>) => {
          calls.push({ tool: name, arguments: args });
          await held;
          return handlers[name](args);
        },
      );
    }
    return server;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (failing.count > 0) {
      failing.count -= 1;
      res.writeHead(failing.status, { 'content-type': 'text/plain' }).end('failing as the test asked');
      return;
    }
    if (req.url !== '/mcp') {
      res.writeHead(404).end();
      return;
    }
    if (options.token !== undefined && req.headers.authorization !== `Bearer ${options.token}`) {
      res
        .writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' })
        .end(JSON.stringify({ error: 'invalid_token' }));
      return;
    }
    if (req.method !== 'POST') {
      // Stateless: no standalone event stream, no session to delete.
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    const server = build();
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res);
  };

  const http = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/mcp`,
    changeTool: (name, change) => {
      const listing = tools.get(name);
      if (!listing) throw new Error(`the fixture no longer has the tool ${name}`);
      tools.set(name, { ...listing, ...change });
    },
    removeTool: (name) => {
      tools.delete(name);
    },
    calls,
    callCount: (name) => calls.filter((c) => c.tool === name).length,
    failNext: (count, status = 503) => {
      failing = { count, status };
    },
    holdCalls: () => {
      let release = (): void => undefined;
      held = new Promise<void>((resolve) => (release = resolve));
      return () => {
        held = Promise.resolve();
        release();
      };
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        http.close((err) => (err ? reject(err) : resolve()));
        http.closeAllConnections();
      }),
  };
}

/**
 * The playbook tests run tool calls that need approval on: the fixture's `open` playbook (no gates)
 * with alice and bob named as the plan gate's approvers, whom the tool gate takes. On a playbook
 * that takes anyone (`open` itself) such a call is refused without a gate.
 */
export const TOOL_APPROVALS_PLAYBOOK = 'tool-approvals';

/** Writes {@link TOOL_APPROVALS_PLAYBOOK} into a copy of the fixture config. */
export async function writeToolApprovalsPlaybook(configDir: string): Promise<void> {
  await fs.writeFile(
    path.join(configDir, 'playbooks', `${TOOL_APPROVALS_PLAYBOOK}.yaml`),
    [
      `id: ${TOOL_APPROVALS_PLAYBOOK}`,
      'description: No gate of its own; alice or bob approve tool calls.',
      'agents: [researcher, analyst]',
      'limits: { maxSteps: 5, maxDepth: 1, maxParallel: 2, maxPlanAttempts: 2 }',
      'gates:',
      '  plan: { required: false, approvers: [alice, bob] }',
      '',
    ].join('\n'),
  );
}

/** Each tool's pin as the server at `url` lists it now (as `baton mcp pin` reads it: the worker's own client). */
export async function pinsOf(url: string): Promise<Record<string, string>> {
  const listed = await withMcpServer('fixture', { url }, { env: {} }, (s) => s.list());
  return Object.fromEntries(listed.map((t) => [t.name, pinOf(t)]));
}
