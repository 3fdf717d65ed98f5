/**
 * Prompt caching and cost estimates.
 *
 * End to end on the real Temporal dev server, with the real config, the real activities and the real
 * Anthropic SDK against the stand-in: every model call marks its system prompt and tools as cache
 * breakpoints (and nothing untrusted goes there), the second and later calls of the same agent read
 * the cache, and the usage in status and provenance carries the cache figures and a cost that is the
 * config's price table applied to them. Then the pure cost functions, one rule at a time.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createActivities } from '../activities';
import { type Activities, type StepInput, type StepResult } from '../contract/activities';
import { loadConfig } from '../activities/config';
import { costSentence } from '../activities/report';
import {
  addUsageInto,
  estimateCost,
  formatUsd,
  tokensOf,
  unpricedModels,
  usageCostUsd,
} from '../contract/usage';
import type { ConfigSnapshot, ModelPrice, Plan, PriceTable } from '../config/schema';
import { startStandIn, type StandIn, type StandInRequest } from '../standin/server';
import { researchTask } from '../workflows';
import {
  approve,
  requestChanges,
  status as statusQuery,
  type Provenance,
  type TokenUsage,
} from '../contract/messages';
import { tempActivityOptions, uniqueId, useTestServer, waitForStatus, withWorker } from './helpers';

const CONFIG_DIR = path.join(__dirname, '..', 'config');
const QUESTION = 'How do heat pumps compare with gas boilers for heating a terraced house?';

/**
 * The plan the stand-in's lead answers with: a chain, so that each agent's calls come one after the
 * other and which call writes the cache and which read it is certain.
 */
const PLAN: Plan = {
  rationale: 'Three gathering steps, then two analyses, one after the other.',
  steps: [
    {
      id: 's1',
      agent: 'researcher',
      question: 'Running costs of heat pumps.',
      dependsOn: [],
      decompose: false,
    },
    {
      id: 's2',
      agent: 'researcher',
      question: 'Running costs of gas boilers.',
      dependsOn: ['s1'],
      decompose: false,
    },
    {
      id: 's3',
      agent: 'researcher',
      question: 'Installation costs of both.',
      dependsOn: ['s2'],
      decompose: false,
    },
    { id: 's4', agent: 'analyst', question: 'Weigh the running costs.', dependsOn: ['s3'], decompose: false },
    {
      id: 's5',
      agent: 'analyst',
      question: 'Weigh the installation costs.',
      dependsOn: ['s4'],
      decompose: false,
    },
  ],
};

const ctx = useTestServer();
let standIn: StandIn;
const seen: StandInRequest[] = [];
beforeAll(async () => {
  standIn = await startStandIn({
    respond: (req) => {
      seen.push(req);
      return req.toolName === 'submit_plan' ? { kind: 'tool', input: PLAN } : undefined;
    },
  });
});
afterAll(async () => {
  await standIn?.close();
});

/** The price table applied by hand: uncached input, output, cache writes and cache reads at their rates. */
const byHand = (u: TokenUsage, p: ModelPrice): number =>
  (u.inputTokens * p.input +
    u.outputTokens * p.output +
    (u.cacheCreationInputTokens ?? 0) * p.cacheWrite +
    (u.cacheReadInputTokens ?? 0) * p.cacheRead) /
  1_000_000;

describe('a task through the real activities and the stand-in', () => {
  test('system prompt and tools are cache breakpoints; later calls of an agent read the cache; cost is the price table applied', async () => {
    const config = await loadConfig(CONFIG_DIR);
    const agents = new Map(config.agents.agents.map((a) => [a.id, a]));
    const options = {
      ...(await tempActivityOptions(CONFIG_DIR)),
      apiKey: 'sk-test-caching',
      baseURL: standIn.url,
    };
    seen.length = 0;
    standIn.resetStats();

    await withWorker(ctx, createActivities(options), async (taskQueue) => {
      const handle = await ctx.client.workflow.start(researchTask, {
        taskQueue,
        workflowId: uniqueId('caching'),
        args: [{ question: QUESTION }],
      });
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
      await handle.signal(approve, { by: 'reviewer@example.com', gate: 'plan' });
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'report', 'the report gate', 60_000);
      // A second synthesis with the same tools and system prompt: the lead reads its own cache too.
      await handle.signal(requestChanges, { by: 'editor@example.com', comment: 'Shorter, please.' });
      await waitForStatus(
        handle,
        (s) => s.pendingGate?.gate === 'report' && s.revisions.report === 1,
        'the revised report at the gate',
        60_000,
      );
      await handle.signal(approve, { by: 'editor@example.com', gate: 'report' });
      const result = await handle.result();
      const status = await handle.query(statusQuery);
      expect(result.outcome).toBe('completed');
      expect(standIn.stats().byTool).toEqual({ submit_plan: 1, submit_findings: 5, submit_report: 2 });

      // The requests: one system block, the agent's own prompt, marked; the last registry tool
      // marked; the question (untrusted) only in the user message, which carries no breakpoint.
      const prompts = new Set([...agents.values()].map((a) => a.systemPrompt));
      expect(seen).toHaveLength(8);
      for (const r of seen) {
        expect(r.body.system).toEqual([
          { type: 'text', text: expect.any(String), cache_control: { type: 'ephemeral' } },
        ]);
        const system = (r.body.system as { text: string }[])[0]!.text;
        expect(prompts.has(system)).toBe(true);
        expect(system).not.toContain(QUESTION);
        // Registry tools (the researcher's web search), when an agent has them: the last one marked.
        const tools = r.body.toolsAsSent ?? [];
        if (tools.length) expect(tools.at(-1)!.cache_control).toEqual({ type: 'ephemeral' });
        expect(tools.slice(0, -1).every((t) => t.cache_control === undefined)).toBe(true);
        expect(r.body.messages).toEqual([{ role: 'user', content: expect.any(String) }]);
        expect(r.userText).toContain(QUESTION);
      }

      // Per step, in the chain's order: the first call of each agent writes its prefix, the
      // later ones read exactly that prefix and write nothing.
      const step = (id: string): TokenUsage => status.steps.find((s) => s.id === id)!.usage!;
      for (const [first, ...later] of [
        ['s1', 's2', 's3'],
        ['s4', 's5'],
      ] as const) {
        expect(step(first).cacheCreationInputTokens).toBeGreaterThan(0);
        expect(step(first).cacheReadInputTokens).toBe(0);
        for (const id of later) {
          expect(step(id).cacheReadInputTokens).toBe(step(first).cacheCreationInputTokens);
          expect(step(id).cacheCreationInputTokens).toBe(0);
        }
      }
      const { usage } = status;
      // The lead: its first call (planning) writes its system prompt's prefix; its syntheses read it.
      expect(usage.byAgent.lead!.cacheCreationInputTokens).toBeGreaterThan(0);
      expect(usage.byAgent.lead!.cacheReadInputTokens).toBeGreaterThan(0);
      expect(usage.cacheReadInputTokens).toBe(
        Object.values(usage.byAgent).reduce((n, u) => n + (u.cacheReadInputTokens ?? 0), 0),
      );
      expect(usage.cacheReadInputTokens).toBeGreaterThan(0);
      expect(usage.cacheCreationInputTokens).toBeGreaterThan(0);
      // The provenance carries the same usage, cache figures and cost included.
      expect(result.provenance.usage).toEqual(usage);

      // The cost: per agent, the price table of the config applied by hand to the recorded usage.
      const prices = config.agents.prices!;
      const priceOfAgent = (id: string): ModelPrice => prices[agents.get(id)!.model]!;
      let total = 0;
      for (const [id, u] of Object.entries(usage.byAgent)) {
        expect(u.costUsd).toBeCloseTo(byHand(u, priceOfAgent(id)), 8);
        total += byHand(u, priceOfAgent(id));
      }
      expect(usage.costUsd).toBeCloseTo(total, 8);
      const estimate = estimateCost(usage.byAgent, (id) => agents.get(id)?.model, prices);
      expect(estimate.totalUsd).toBeCloseTo(usage.costUsd!, 8);
      expect(estimate.unpricedModels).toEqual([]);
      // And caching made it cheaper than the same tokens all at the base input price.
      const uncached = Object.entries(usage.byAgent).reduce((sum, [id, u]) => {
        const p = priceOfAgent(id);
        return (
          sum +
          ((u.inputTokens + u.cacheReadInputTokens! + u.cacheCreationInputTokens!) * p.input +
            u.outputTokens * p.output) /
            1e6
        );
      }, 0);
      expect(usage.costUsd!).toBeLessThan(uncached);

      // The report's label line below the body states the estimate.
      const text = await fs.readFile(result.reportPath!, 'utf8');
      expect(text).toContain(`Estimated model cost: ${formatUsd(usage.costUsd!)} (USD,`);
    });
  });

  test('an agent without a price (a snapshot from before prices, or an unlisted model) costs unknown, not 0', async () => {
    const options = { ...(await tempActivityOptions(CONFIG_DIR)), baseURL: standIn.url };
    const activities = createActivities(options);
    const env = new MockActivityEnvironment();
    const snapshot = await env.run<[string], ConfigSnapshot, Activities['loadConfigSnapshot']>(
      activities.loadConfigSnapshot.bind(activities),
      'research-brief',
    );
    const researcher = snapshot.specialists.researcher!;
    expect(researcher.price).toEqual({ input: 2, output: 10, cacheWrite: 2.5, cacheRead: 0.2 });
    const unpriced = { ...researcher, price: undefined };
    const run = (agent: StepInput['agent'], id: string) =>
      env.run<[StepInput], StepResult, Activities['runSpecialist']>(
        activities.runSpecialist.bind(activities),
        {
          overallQuestion: QUESTION,
          step: { id, agent: 'researcher', question: 'Running costs of heat pumps.' },
          agent,
          context: [],
        },
      );
    const priced = await run(researcher, 'p1');
    expect(priced.usage.costUsd).toBeCloseTo(byHand(priced.usage, researcher.price!), 9);
    const old = await run(unpriced, 'p2');
    expect(old.usage.costUsd).toBeNull();
    expect(old.usage.cacheReadInputTokens).toBeGreaterThan(0); // the cache works all the same
  });
});

// ---------------------------------------------------------------------------------------------------------
// The cost functions

const SONNET: ModelPrice = { input: 2, output: 10, cacheWrite: 2.5, cacheRead: 0.2 };
const OPUS: ModelPrice = { input: 4, output: 20, cacheWrite: 5, cacheRead: 0.2 };
const TABLE: PriceTable = { 'claude-sonnet-5-5': SONNET, 'claude-opus-5-5': OPUS };

describe('usageCostUsd', () => {
  test('prices each kind of token at its own rate, per million', () => {
    const usage = {
      inputTokens: 1000,
      outputTokens: 500,
      cacheReadInputTokens: 10_000,
      cacheCreationInputTokens: 2000,
    };
    // 1000 × $2 + 500 × $10 + 2000 × $2.50 + 10000 × $0.20, per million tokens.
    expect(usageCostUsd(usage, SONNET)).toBeCloseTo(0.014, 12);
    // A cache read costs a tenth of base input here; a write a quarter more.
    expect(usageCostUsd({ inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 1e6 }, SONNET)).toBe(0.2);
    expect(usageCostUsd({ inputTokens: 0, outputTokens: 0, cacheCreationInputTokens: 1e6 }, SONNET)).toBe(
      2.5,
    );
  });

  test('usage recorded before cache fields existed is priced as plain input and output', () => {
    expect(usageCostUsd({ inputTokens: 1e6, outputTokens: 1e6 }, OPUS)).toBe(24);
  });

  test('no price: unknown (null), never 0; no tokens: 0 whatever the price', () => {
    expect(usageCostUsd({ inputTokens: 1, outputTokens: 0 }, undefined)).toBeNull();
    expect(usageCostUsd({ inputTokens: 0, outputTokens: 0 }, undefined)).toBe(0);
    expect(usageCostUsd({ inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 0 }, SONNET)).toBe(0);
  });
});

describe('estimateCost', () => {
  test('applies the table per agent and sums, with the models it used', () => {
    const estimate = estimateCost(
      {
        lead: { inputTokens: 1e6, outputTokens: 0, cacheReadInputTokens: 1e6 },
        researcher: { inputTokens: 0, outputTokens: 1e6, cacheCreationInputTokens: 1e6 },
      },
      (id) => (id === 'lead' ? 'claude-opus-5-5' : 'claude-sonnet-5-5'),
      TABLE,
    );
    expect(estimate).toEqual({
      currency: 'USD',
      totalUsd: 4.2 + 12.5,
      byAgent: {
        lead: { model: 'claude-opus-5-5', usd: 4.2 },
        researcher: { model: 'claude-sonnet-5-5', usd: 12.5 },
      },
      unpricedModels: [],
    });
  });

  test('a model the table does not list makes that agent and the total unknown, and is named', () => {
    const estimate = estimateCost(
      {
        lead: { inputTokens: 10, outputTokens: 10 },
        writer: { inputTokens: 10, outputTokens: 10 },
        idle: { inputTokens: 0, outputTokens: 0 },
        ghost: { inputTokens: 5, outputTokens: 0 },
      },
      (id) => ({ lead: 'claude-opus-5-5', writer: 'claude-haiku-5-5', idle: 'claude-haiku-5-5' })[id],
      TABLE,
    );
    expect(estimate.totalUsd).toBeNull();
    expect(estimate.byAgent.lead!.usd).toBeCloseTo(0.00024, 12);
    expect(estimate.byAgent.writer).toEqual({ model: 'claude-haiku-5-5', usd: null });
    expect(estimate.byAgent.idle).toEqual({ model: 'claude-haiku-5-5', usd: 0 }); // used nothing: 0
    expect(estimate.byAgent.ghost).toEqual({ model: null, usd: null }); // no model known for it
    expect(estimate.unpricedModels).toEqual(['claude-haiku-5-5']);
  });

  test('no table at all: every cost that used tokens is unknown; zero usage is 0', () => {
    expect(
      estimateCost({ lead: { inputTokens: 1, outputTokens: 1 } }, () => 'claude-opus-5-5', undefined),
    ).toEqual({
      currency: 'USD',
      totalUsd: null,
      byAgent: { lead: { model: 'claude-opus-5-5', usd: null } },
      unpricedModels: ['claude-opus-5-5'],
    });
    expect(estimateCost({}, () => undefined, undefined).totalUsd).toBe(0);
  });

  test('only the table’s own entries count as prices', () => {
    expect(
      estimateCost({ a: { inputTokens: 1, outputTokens: 1 } }, () => 'constructor', TABLE).totalUsd,
    ).toBeNull();
  });
});

describe('addUsageInto (how the workflow sums usage)', () => {
  const fresh = (): TokenUsage => ({ inputTokens: 0, outputTokens: 0 });

  test('sums tokens, cache reads and writes, and cost', () => {
    const total = fresh();
    addUsageInto(total, {
      inputTokens: 10,
      outputTokens: 5,
      cacheReadInputTokens: 0,
      cacheCreationInputTokens: 100,
      costUsd: 0.5,
    });
    addUsageInto(total, {
      inputTokens: 12,
      outputTokens: 6,
      cacheReadInputTokens: 100,
      cacheCreationInputTokens: 0,
      costUsd: 0.25,
    });
    expect(total).toEqual({
      inputTokens: 22,
      outputTokens: 11,
      cacheReadInputTokens: 100,
      cacheCreationInputTokens: 100,
      costUsd: 0.75,
    });
    expect(tokensOf(total)).toBe(233);
  });

  test('usage recorded before caching and costs keeps its old shape (old histories replay unchanged)', () => {
    const total = fresh();
    addUsageInto(total, { inputTokens: 10, outputTokens: 5 });
    addUsageInto(total, { inputTokens: 1, outputTokens: 1 });
    expect(total).toEqual({ inputTokens: 11, outputTokens: 6 });
  });

  test('one unknown part makes the total unknown, in either order, and it stays unknown', () => {
    const priced = { inputTokens: 10, outputTokens: 5, costUsd: 0.1 };
    for (const parts of [
      [priced, { inputTokens: 10, outputTokens: 5, costUsd: null }],
      [{ inputTokens: 10, outputTokens: 5, costUsd: null }, priced],
      [{ inputTokens: 10, outputTokens: 5 }, priced], // a call recorded without an estimate
      [priced, { inputTokens: 10, outputTokens: 5 }],
    ]) {
      const total = fresh();
      for (const part of parts) addUsageInto(total, part);
      addUsageInto(total, priced);
      expect(total.costUsd).toBeNull();
    }
  });

  test('a part without an estimate that used nothing changes nothing', () => {
    const total = fresh();
    addUsageInto(total, { inputTokens: 10, outputTokens: 5, costUsd: 0.1 });
    addUsageInto(total, { inputTokens: 0, outputTokens: 0 });
    expect(total.costUsd).toBe(0.1);
  });
});

describe('showing a cost', () => {
  test('formatUsd keeps small model bills readable', () => {
    expect(formatUsd(0)).toBe('$0');
    expect(formatUsd(0.00004)).toBe('< $0.0001');
    expect(formatUsd(0.01234)).toBe('$0.0123');
    expect(formatUsd(12.345)).toBe('$12.35');
  });

  test('the report label states the estimate, says unknown with the unpriced models, or says nothing for old usage', () => {
    const provenance = (usage: Provenance['usage']): Pick<Provenance, 'usage' | 'agents'> => ({
      usage,
      agents: [
        { id: 'lead', model: 'claude-opus-5-5', role: 'Leads.' },
        { id: 'writer', model: 'claude-haiku-5-5', role: 'Writes.' },
      ],
    });
    const known = { inputTokens: 1, outputTokens: 1, costUsd: 0.0421 };
    expect(costSentence(provenance({ ...known, byAgent: { lead: known } }))).toBe(
      ' Estimated model cost: $0.0421 (USD, the price table in config applied to the reported tokens; an estimate, not a bill).',
    );
    expect(
      costSentence(
        provenance({
          ...known,
          costUsd: null,
          byAgent: { lead: known, writer: { ...known, costUsd: null } },
        }),
      ),
    ).toBe(' Estimated model cost: unknown (no price in config for claude-haiku-5-5).');
    expect(costSentence(provenance({ inputTokens: 1, outputTokens: 1, byAgent: {} }))).toBe('');
  });

  test('unpricedModels names the models agents use that the table lacks', () => {
    const agent = (model: string) => ({ model }) as never;
    expect(
      unpricedModels({ agents: [agent('claude-opus-5-5'), agent('x'), agent('x')], prices: TABLE }),
    ).toEqual(['x']);
    expect(unpricedModels({ agents: [agent('b'), agent('a')] })).toEqual(['a', 'b']);
  });
});
