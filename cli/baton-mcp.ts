/**
 * `npm run baton -- mcp pin <server> [--url <url>] [--token-env <NAME>]`: lists the tools of an MCP
 * server and prints the `mcpServers` lines of agents.yaml that pin them, each tool's description and
 * input schema above its pin as YAML comments, for a reviewer to read and commit (docs/tools.md).
 * The server's URL and token variable come from config (`$BATON_CONFIG_DIR/agents.yaml`), or from
 * `--url` and `--token-env` for a server not yet there. Tools config already declares keep their
 * `approval`; a tool whose listing no longer matches its pin, or that the server stopped listing, is
 * pointed out. Connecting, listing and pinning are the worker's own (activities/mcp-client.ts).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { withMcpServer } from '../activities/mcp-client';
import { PROJECT_ROOT } from '../activities/options';
import {
  formatPath,
  McpServerIdSchema,
  McpServerSchema,
  McpToolNameSchema,
  McpUrlSchema,
  TokenEnvSchema,
  type McpServer,
} from '../config/schema';
import { jsonBytes } from '../contract/bounds';
import { MAX_TOOL_SCHEMA_BYTES, pinOf, type McpToolDefinition } from '../contract/mcp';
import { safeText } from '../contract/text';
import { parseCommandLine, UsageError } from '../lib/cli';

/** The `mcp` lines of `npm run baton -- --help`. */
export const MCP_USAGE = `  mcp pin <server> [--url <url>] [--token-env <NAME>]
                                     list an MCP server's tools and print the agents.yaml lines that
                                     pin them, for review; the server's url and token variable from
                                     config, or --url and --token-env for a server not yet in it`;

export interface McpCliDeps {
  out: (line: string) => void;
  /** Where `BATON_CONFIG_DIR` and the token's variable are read. */
  env: NodeJS.ProcessEnv;
}

/** The first problem zod found, as `<path>: <message>`. */
const firstIssue = (error: {
  issues: readonly { path: readonly PropertyKey[]; message: string }[];
}): string => {
  const issue = error.issues[0];
  return issue ? `${issue.path.length ? `${formatPath(issue.path)}: ` : ''}${issue.message}` : 'invalid';
};

/** The server's declaration in agents.yaml, undefined when config does not declare it. @throws Error */
async function declared(file: string, id: string): Promise<McpServer | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  const servers = (doc as { mcpServers?: unknown } | null)?.mcpServers;
  if (typeof servers !== 'object' || servers === null || !Object.hasOwn(servers, id)) return undefined;
  const parsed = McpServerSchema.safeParse((servers as Record<string, unknown>)[id]);
  if (!parsed.success) throw new Error(`${file}: mcpServers.${id}.${firstIssue(parsed.error)}`);
  return parsed.data;
}

/** A tool name as a YAML key: plain when it reads back as the same string, else quoted. */
const yamlKey = (name: string): string =>
  /^[A-Za-z_][A-Za-z0-9_-]*$/.test(name) && !/^(true|false|null)$/i.test(name) ? name : JSON.stringify(name);

/** The lines for one listed tool: its description and schema as comments, then its pin. */
function toolLines(tool: McpToolDefinition, config: McpServer | undefined): string[] {
  const name = safeText(tool.name);
  const description = safeText(tool.description ?? '(no description)', { multiline: true }).split('\n');
  const lines = [
    `      # ${name}: ${description[0]}`,
    ...description.slice(1).map((line) => `      #   ${line}`.trimEnd()),
    `      #   input schema: ${safeText(JSON.stringify(tool.inputSchema))}`,
  ];
  if (!McpToolNameSchema.safeParse(tool.name).success)
    return [
      ...lines,
      '      #   cannot be declared: a name of letters, digits, "_" and "-" (at most 64) only',
    ];
  const bytes = jsonBytes(tool.inputSchema);
  if (bytes > MAX_TOOL_SCHEMA_BYTES)
    return [
      ...lines,
      `      #   cannot be offered: its input schema is ${bytes} bytes of JSON, over the ${MAX_TOOL_SCHEMA_BYTES} a tool may have`,
    ];
  const pin = pinOf(tool);
  const before = config && Object.hasOwn(config.tools, tool.name) ? config.tools[tool.name] : undefined;
  if (before && before.sha256 !== pin)
    lines.push(
      `      #   CHANGED: config pins ${before.sha256}; the server lists something else now: review it before committing`,
    );
  const approval = before?.approval ? `, approval: ${before.approval}` : '';
  return [...lines, `      ${yamlKey(tool.name)}: { sha256: ${pin}${approval} }`];
}

/** `mcp <subcommand> …`; answers the exit code. @throws UsageError, Error */
export async function mcpCommand(argv: readonly string[], deps: McpCliDeps): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'pin')
    throw new UsageError(
      sub === undefined ? 'mcp needs a subcommand: pin' : `unknown mcp subcommand "${sub}"`,
    );
  const { help, values, positionals } = parseCommandLine(
    {
      name: 'npm run baton -- mcp pin',
      usage: MCP_USAGE,
      options: { url: { type: 'string' }, 'token-env': { type: 'string' } },
      allowPositionals: true,
      unknownOption: (option) => `unknown option ${option} for mcp pin`,
    },
    rest,
  );
  if (help) {
    deps.out(`usage: npm run baton -- ${MCP_USAGE.trimStart()}`);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('mcp pin needs the id of a server');
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}" for mcp pin`);
  const id = positionals[0]!;
  if (!McpServerIdSchema.safeParse(id).success)
    throw new UsageError(`"${id}" is not a server id: ${firstIssue(McpServerIdSchema.safeParse(id).error!)}`);
  if (values.url !== undefined) {
    const url = McpUrlSchema.safeParse(values.url);
    if (!url.success) throw new UsageError(`--url ${firstIssue(url.error)}`);
  }
  const tokenEnv = values['token-env'];
  if (tokenEnv !== undefined && !TokenEnvSchema.safeParse(tokenEnv).success)
    throw new UsageError(`--token-env ${firstIssue(TokenEnvSchema.safeParse(tokenEnv).error!)}`);

  const file = path.join(deps.env.BATON_CONFIG_DIR || path.join(PROJECT_ROOT, 'config'), 'agents.yaml');
  const config =
    values.url === undefined ? await declared(file, id) : await declared(file, id).catch(() => undefined);
  if (!config && values.url === undefined)
    throw new Error(
      `no MCP server "${id}" is declared under mcpServers in ${file}: give --url <url> (and --token-env <NAME> if it needs a token) to pin a server not yet in config`,
    );
  const endpoint = {
    url: values.url ?? config!.url,
    ...((tokenEnv ?? config?.tokenEnv) ? { tokenEnv: tokenEnv ?? config?.tokenEnv } : {}),
  };
  const listed = await withMcpServer(id, endpoint, { env: deps.env }, (session) => session.list());
  const tools = [...listed].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const gone = Object.keys(config?.tools ?? {}).filter((name) => !listed.some((t) => t.name === name));

  deps.out(
    `# MCP server "${id}" at ${endpoint.url} lists ${tools.length} tool${tools.length === 1 ? '' : 's'}.`,
  );
  deps.out('# Read each description and input schema below: the pin covers them. Commit under mcpServers');
  deps.out('# in agents.yaml the tools agents may call (delete the others); agents name them in their');
  deps.out(`# tools as { mcp: ${id}, tool: <name> }.`);
  deps.out('mcpServers:');
  deps.out(`  ${id}:`);
  deps.out(`    url: ${endpoint.url}`);
  if (endpoint.tokenEnv) deps.out(`    tokenEnv: ${endpoint.tokenEnv}`);
  deps.out(tools.length ? '    tools:' : '    tools: {}');
  for (const tool of tools) for (const line of toolLines(tool, config)) deps.out(line);
  for (const name of gone)
    deps.out(`      # ${safeText(name)}: declared in config, but the server no longer lists it`);
  return 0;
}
