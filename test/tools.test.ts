/**
 * Server tools from reviewed config (docs/tools.md): `web_search` and `web_fetch`, by name with the
 * registry's defaults or with their limits (domains allowed or blocked, uses per call, tokens of a
 * fetched page). The definitions Baton sends are the ones config says, and the stand-in refuses
 * what the Messages API refuses, through the real SDK.
 */
import Anthropic, { BadRequestError } from '@anthropic-ai/sdk';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createActivities } from '../activities';
import { toolsFor, TOOL_REGISTRY } from '../activities/tools';
import { startStandIn, type StandIn } from '../standin/server';
import { researchTask } from '../workflows';
import { FIXTURE_CONFIG, tempActivityOptions, uniqueId, useTestServer, withWorker } from './helpers';

const ctx = useTestServer();
let standIn: StandIn;
/** The tools each findings request carried, as sent. */
const sentTools: unknown[][] = [];

beforeAll(async () => {
  standIn = await startStandIn({
    respond: (req) => {
      if (req.toolName === 'submit_findings')
        sentTools.push((req.body.toolsAsSent ?? []).map((t) => JSON.parse(t.definition) as unknown));
      return undefined;
    },
  });
});
afterAll(async () => {
  await standIn?.close();
});

const FETCH = {
  name: 'web_fetch' as const,
  allowedDomains: ['docs.temporal.io', 'example.com/research'],
  maxUses: 2,
  maxContentTokens: 4000,
};
const SEARCH = { name: 'web_search' as const, blockedDomains: ['content-farm.example'], maxUses: 3 };

test('config names a tool with its limits; the definition sent to the API carries exactly them', () => {
  expect(toolsFor(['web_search', 'web_fetch'])).toEqual([TOOL_REGISTRY.web_search, TOOL_REGISTRY.web_fetch]);
  expect(toolsFor([SEARCH, FETCH])).toEqual([
    {
      type: 'web_search_20250305',
      name: 'web_search',
      max_uses: 3,
      blocked_domains: ['content-farm.example'],
    },
    {
      type: 'web_fetch_20250910',
      name: 'web_fetch',
      max_uses: 2,
      max_content_tokens: 4000,
      citations: { enabled: true },
      allowed_domains: ['docs.temporal.io', 'example.com/research'],
    },
  ]);
});

describe('the stand-in checks server tools as the API does', () => {
  const client = () => new Anthropic({ apiKey: 'test-key', baseURL: standIn.url, maxRetries: 0 });
  const ask = (tools: unknown[]) =>
    client().messages.create({
      model: 'claude-stand-in-test',
      max_tokens: 200,
      messages: [{ role: 'user', content: 'Read the page.' }],
      tools: tools as Anthropic.ToolUnion[],
    });

  test("it takes every definition Baton's config can produce", async () => {
    await expect(ask(toolsFor([SEARCH, FETCH]))).resolves.toMatchObject({ type: 'message' });
    await expect(ask(toolsFor(['web_search', 'web_fetch']))).resolves.toMatchObject({ type: 'message' });
  });

  test.each([
    [
      'allowed and blocked domains together',
      { ...TOOL_REGISTRY.web_fetch, allowed_domains: ['a.example'], blocked_domains: ['b.example'] },
      /tools\.0\.web_fetch_20250910: .*allowed_domains or blocked_domains/,
    ],
    [
      'a tool Baton never offers (code execution)',
      { type: 'code_execution_20250825', name: 'code_execution' },
      /tools\.0: Input tag 'code_execution_20250825'/,
    ],
    [
      'a server tool under another name',
      { ...TOOL_REGISTRY.web_search, name: 'search' },
      /tools\.0\.web_search_20250305\.name: Input should be 'web_search'/,
    ],
    [
      'an unknown field',
      { ...TOOL_REGISTRY.web_search, max_content_tokens: 10 },
      /web_search_20250305\.max_content_tokens: Extra inputs are not permitted/,
    ],
    [
      'zero uses',
      { ...TOOL_REGISTRY.web_fetch, max_uses: 0 },
      /web_fetch_20250910\.max_uses: Input should be greater than or equal to 1/,
    ],
  ])('it refuses %s with a 400', async (_what, tool, message) => {
    const refused = await ask([tool]).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(BadRequestError);
    expect((refused as BadRequestError).message).toMatch(message);
  });
});

test("a task's specialist calls carry the tools its agent is given in config, with their limits", async () => {
  const configDir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-tools-config-'));
  await fs.cp(FIXTURE_CONFIG, configDir, { recursive: true });
  const agents = path.join(configDir, 'agents.yaml');
  const yaml = await fs.readFile(agents, 'utf8');
  await fs.writeFile(
    agents,
    yaml.replace(
      '    systemPrompt: You research.\n',
      `    systemPrompt: You research.\n    tools:\n      - ${JSON.stringify(SEARCH)}\n      - ${JSON.stringify(FETCH)}\n`,
    ),
  );
  const options = { ...(await tempActivityOptions(configDir)), baseURL: standIn.url };
  sentTools.length = 0;
  await withWorker(ctx, createActivities(options), async (taskQueue) => {
    const result = await ctx.client.workflow.execute(researchTask, {
      taskQueue,
      workflowId: uniqueId('tools'),
      args: [{ question: 'What do the Temporal docs say about continue-as-new?', playbook: 'open' }],
    });
    expect(result.outcome).toBe('completed');
  });
  // The researcher's calls carry both tools as configured (beside the answer tool, which has no `type`).
  const serverTools = sentTools.map((tools) => tools.filter((t) => 'type' in (t as object)));
  expect(serverTools.filter((tools) => tools.length > 0).length).toBeGreaterThan(0);
  for (const tools of serverTools.filter((t) => t.length > 0))
    expect(tools).toEqual(toolsFor([SEARCH, FETCH]));
}, 120_000);
