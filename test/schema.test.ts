/**
 * The config and plan schemas: every rule a plan, an agents file or a playbook must obey, each with a
 * case that breaks it and the exact problem people will read.
 */
import {
  AgentsFileSchema,
  checkPlan,
  checkPlaybookAgainstAgents,
  DurationSchema,
  formatPath,
  PlanSchema,
  PlaybookSchema,
  type AgentsFile,
  type Plan,
  type PlanLimits,
  type PlanStep,
  type Playbook,
} from '../config/schema';

const DURATION_MESSAGE = 'must be a whole number followed by ms, s, m, h or d, e.g. "30s" or "10m"';

/** One parsed plan step; `dependsOn` and `decompose` as the lead would leave them unless given. */
function step(id: string, agent = 'researcher', dependsOn: string[] = [], decompose = false): PlanStep {
  return { id, agent, question: `Question of ${id}?`, dependsOn, decompose };
}

function plan(...steps: PlanStep[]): Plan {
  return { rationale: 'Because.', steps };
}

/** `value`, or a thrown error naming `what` when it is missing. */
function must<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`expected ${what}`);
  return value;
}

const LIMITS: PlanLimits = { allowedAgents: ['researcher', 'analyst'], maxSteps: 4, depth: 0, maxDepth: 1 };

/** The issues of a failed parse as `[path, message]`, the way config:check prints them. */
function issues(result: {
  success: boolean;
  error?: { issues: readonly { path: readonly PropertyKey[]; message: string }[] };
}): [string, string][] {
  expect(result.success).toBe(false);
  return (result.error?.issues ?? []).map((i) => [formatPath(i.path), i.message]);
}

// ---------------------------------------------------------------------------------------------------------

describe('checkPlan', () => {
  test('a valid DAG (fan-out then fan-in) has no problems', () => {
    const dag = plan(
      step('s1'),
      step('s2'),
      step('s3', 'analyst', ['s1', 's2']),
      step('s4', 'analyst', ['s3', 's1'], true),
    );
    expect(checkPlan(dag, LIMITS)).toEqual([]);
  });

  test.each<[string, Plan, PlanLimits, string[]]>([
    [
      'more steps than maxSteps',
      plan(step('s1'), step('s2'), step('s3')),
      { ...LIMITS, maxSteps: 2 },
      ['plan has 3 steps; the playbook allows at most 2'],
    ],
    [
      'a duplicate step id',
      plan(step('s1'), step('s1', 'analyst')),
      LIMITS,
      ['steps[1] ("s1"): duplicate step id'],
    ],
    [
      'an agent that is not allowed (the message lists the allowed ones)',
      plan(step('s1'), step('s2', 'coder')),
      LIMITS,
      ['steps[1] ("s2"): agent "coder" is not allowed here; use one of: researcher, analyst'],
    ],
    [
      'decompose when depth == maxDepth',
      plan(step('s1', 'researcher', [], true)),
      { ...LIMITS, depth: 1, maxDepth: 1 },
      ['steps[0] ("s1"): decompose is true but the depth budget is spent (depth 1 of max 1)'],
    ],
    [
      'decompose when maxDepth is 0',
      plan(step('s1'), step('s2', 'analyst', ['s1'], true)),
      { ...LIMITS, depth: 0, maxDepth: 0 },
      ['steps[1] ("s2"): decompose is true but the depth budget is spent (depth 0 of max 0)'],
    ],
    [
      'a dependency on itself',
      plan(step('s1'), step('s2', 'analyst', ['s1', 's2'])),
      LIMITS,
      ['steps[1] ("s2"): depends on itself'],
    ],
    [
      'a dependency on an unknown step',
      plan(step('s1', 'researcher', ['s9'])),
      LIMITS,
      ['steps[0] ("s1"): depends on unknown step "s9"'],
    ],
    [
      'a cycle of 2',
      plan(step('a', 'researcher', ['b']), step('b', 'analyst', ['a'])),
      LIMITS,
      ['dependency cycle: a -> b -> a'],
    ],
    [
      'a cycle of 3 behind an acyclic step',
      plan(
        step('s0'),
        step('a', 'researcher', ['s0', 'b']),
        step('b', 'analyst', ['c']),
        step('c', 'analyst', ['a']),
      ),
      LIMITS,
      ['dependency cycle: a -> b -> c -> a'],
    ],
  ])('refuses %s', (_name, bad, limits, expected) => {
    expect(checkPlan(bad, limits)).toEqual(expected);
  });

  test('allows decompose while depth < maxDepth', () => {
    const p = plan(step('s1', 'researcher', [], true));
    expect(checkPlan(p, { ...LIMITS, depth: 0, maxDepth: 1 })).toEqual([]);
    expect(checkPlan(p, { ...LIMITS, depth: 1, maxDepth: 2 })).toEqual([]);
  });

  test('reports every problem of a plan at once, not just the first', () => {
    const bad = plan(step('s1', 'coder', ['s1']), step('s1'), step('s2', 'analyst', ['nope']));
    expect(checkPlan(bad, { ...LIMITS, maxSteps: 2 })).toEqual([
      'plan has 3 steps; the playbook allows at most 2',
      'steps[0] ("s1"): agent "coder" is not allowed here; use one of: researcher, analyst',
      'steps[1] ("s1"): duplicate step id',
      'steps[0] ("s1"): depends on itself',
      'steps[2] ("s2"): depends on unknown step "nope"',
    ]);
  });
});

describe('PlanSchema', () => {
  const goodStep = { id: 's1', agent: 'researcher', question: 'What?' };

  test('accepts a minimal plan and fills dependsOn and decompose', () => {
    const parsed = PlanSchema.parse({ rationale: 'r', steps: [goodStep] });
    expect(parsed.steps).toEqual([{ ...goodStep, dependsOn: [], decompose: false }]);
  });

  test.each<[string, unknown, [string, string][]]>([
    [
      'an extra field on the plan',
      { rationale: 'r', steps: [goodStep], notes: 'x' },
      [['', 'Unrecognized key: "notes"']],
    ],
    [
      'an extra field on a step',
      { rationale: 'r', steps: [{ ...goodStep, tool: 'bash' }] },
      [['steps[0]', 'Unrecognized key: "tool"']],
    ],
    [
      'empty steps',
      { rationale: 'r', steps: [] },
      [['steps', 'Too small: expected array to have >=1 items']],
    ],
    [
      'a step id with a space',
      { rationale: 'r', steps: [{ ...goodStep, id: 'step one' }] },
      [['steps[0].id', 'must be 1-32 letters, digits, "_" or "-"']],
    ],
    [
      'a step id longer than 32',
      { rationale: 'r', steps: [{ ...goodStep, id: 'x'.repeat(33) }] },
      [['steps[0].id', 'must be 1-32 letters, digits, "_" or "-"']],
    ],
    [
      'a step with no question',
      { rationale: 'r', steps: [{ id: 's1', agent: 'researcher' }] },
      [['steps[0].question', 'Invalid input: expected string, received undefined']],
    ],
  ])('refuses %s', (_name, input, expected) => {
    expect(issues(PlanSchema.safeParse(input))).toEqual(expected);
  });
});

// ---------------------------------------------------------------------------------------------------------

const agent = (id: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  id,
  role: `The ${id}.`,
  model: 'claude-test',
  systemPrompt: `You are the ${id}.`,
  maxTokens: 1000,
  ...extra,
});

describe('AgentsFileSchema', () => {
  test('fills in tools, timeouts and retry defaults', () => {
    const parsed = AgentsFileSchema.parse({ lead: 'lead', agents: [agent('lead'), agent('researcher')] });
    expect(must(parsed.agents[1], 'agent 1')).toEqual({
      ...agent('researcher'),
      tools: [],
      timeouts: { startToClose: '10m', heartbeat: '30s' },
      retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 5 },
    });
  });

  test('fills the rest of a partly given retry policy and timeouts', () => {
    const parsed = AgentsFileSchema.parse({
      lead: 'lead',
      agents: [agent('lead', { retry: { maximumAttempts: 9 }, timeouts: { heartbeat: '5s' } }), agent('b')],
    });
    expect(must(parsed.agents[0], 'agent 0').retry).toEqual({
      initialInterval: '2s',
      backoffCoefficient: 2,
      maximumInterval: '1m',
      maximumAttempts: 9,
    });
    expect(must(parsed.agents[0], 'agent 0').timeouts).toEqual({ startToClose: '10m', heartbeat: '5s' });
  });

  test('refuses duplicate agent ids, at the second one', () => {
    const result = AgentsFileSchema.safeParse({
      lead: 'lead',
      agents: [agent('lead'), agent('a'), agent('a')],
    });
    expect(issues(result)).toEqual([['agents[2].id', 'duplicate agent id "a"']]);
  });

  test('refuses a lead that is not declared', () => {
    const result = AgentsFileSchema.safeParse({ lead: 'boss', agents: [agent('lead'), agent('a')] });
    expect(issues(result)).toEqual([['lead', 'no agent with id "boss" is declared']]);
  });

  test('refuses tools that are not in the registry', () => {
    const result = AgentsFileSchema.safeParse({
      lead: 'lead',
      agents: [agent('lead'), agent('a', { tools: ['web_search', 'bash', 'code_execution'] })],
    });
    expect(issues(result)).toEqual([
      ['agents[1].tools[1]', 'Invalid input: expected "web_search"'],
      ['agents[1].tools[2]', 'Invalid input: expected "web_search"'],
    ]);
  });

  test('accepts web_search, the one registered tool', () => {
    const parsed = AgentsFileSchema.parse({
      lead: 'lead',
      agents: [agent('lead'), agent('a', { tools: ['web_search'] })],
    });
    expect(must(parsed.agents[1], 'agent 1').tools).toEqual(['web_search']);
  });

  test.each(['10 minutes', '5', '-1s', '1.5s', '10M', ''])('refuses the duration %j', (bad) => {
    const result = AgentsFileSchema.safeParse({
      lead: 'lead',
      agents: [
        agent('lead'),
        agent('a', { timeouts: { startToClose: bad }, retry: { maximumInterval: bad } }),
      ],
    });
    expect(issues(result)).toEqual([
      ['agents[1].timeouts.startToClose', DURATION_MESSAGE],
      ['agents[1].retry.maximumInterval', DURATION_MESSAGE],
    ]);
  });

  test.each(['500ms', '30s', '10m', '2h', '3d'])('accepts the duration %j unchanged', (good) => {
    expect(DurationSchema.parse(good)).toBe(good);
    const parsed = AgentsFileSchema.parse({
      lead: 'lead',
      agents: [agent('lead', { timeouts: { startToClose: good, heartbeat: good } }), agent('a')],
    });
    expect(must(parsed.agents[0], 'agent 0').timeouts).toEqual({ startToClose: good, heartbeat: good });
  });

  test('refuses an unknown key on an agent', () => {
    const result = AgentsFileSchema.safeParse({
      lead: 'lead',
      agents: [agent('lead', { temperature: 1 }), agent('a')],
    });
    expect(issues(result)).toEqual([['agents[0]', 'Unrecognized key: "temperature"']]);
  });
});

// ---------------------------------------------------------------------------------------------------------

const playbookInput = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: 'brief',
  description: 'A brief.',
  agents: ['researcher', 'analyst'],
  limits: { maxSteps: 3, maxDepth: 1, maxParallel: 2 },
  ...extra,
});

const AGENTS: AgentsFile = AgentsFileSchema.parse({
  lead: 'lead',
  agents: [agent('lead'), agent('researcher'), agent('analyst')],
});

describe('PlaybookSchema', () => {
  test('gates default to not required, and limits get their defaults', () => {
    const parsed = PlaybookSchema.parse(playbookInput());
    expect(parsed.gates).toEqual({
      plan: { required: false, approvers: ['*'], onTimeout: 'reject' },
      report: { required: false, approvers: ['*'], onTimeout: 'reject' },
    });
    expect(parsed.limits).toEqual({
      maxSteps: 3,
      maxDepth: 1,
      maxParallel: 2,
      maxPlanAttempts: 3,
      maxRevisions: 2,
    });
  });

  test('a gate given without onTimeout rejects on timeout; the other gate stays off', () => {
    const parsed = PlaybookSchema.parse(
      playbookInput({ gates: { plan: { required: true, approvers: ['alice'], timeout: '1h' } } }),
    );
    expect(parsed.gates.plan).toEqual({
      required: true,
      approvers: ['alice'],
      timeout: '1h',
      onTimeout: 'reject',
    });
    expect(parsed.gates.report.required).toBe(false);
  });

  test.each<[string, Record<string, unknown>, [string, string][]]>([
    [
      'maxParallel 0',
      { limits: { maxSteps: 3, maxDepth: 1, maxParallel: 0 } },
      [['limits.maxParallel', 'Too small: expected number to be >=1']],
    ],
    ['an unknown top-level field', { owner: 'me' }, [['', 'Unrecognized key: "owner"']]],
    [
      'an unknown limit',
      { limits: { maxSteps: 3, maxDepth: 1, maxParallel: 2, maxCost: 5 } },
      [['limits', 'Unrecognized key: "maxCost"']],
    ],
    [
      'an unknown gate',
      { gates: { deploy: { required: true, approvers: ['*'] } } },
      [['gates', 'Unrecognized key: "deploy"']],
    ],
    [
      'an onTimeout that is not reject or auto-approve',
      { gates: { plan: { required: true, approvers: ['*'], onTimeout: 'ignore' } } },
      [['gates.plan.onTimeout', 'Invalid option: expected one of "reject"|"auto-approve"']],
    ],
  ])('refuses %s', (_name, extra, expected) => {
    expect(issues(PlaybookSchema.safeParse(playbookInput(extra)))).toEqual(expected);
  });
});

describe('checkPlaybookAgainstAgents', () => {
  const parse = (extra: Record<string, unknown> = {}): Playbook => PlaybookSchema.parse(playbookInput(extra));

  test('a playbook of declared specialists, with a fixed plan inside its limits, has no problems', () => {
    const fixedPlan = { rationale: 'r', steps: [{ id: 'a', agent: 'researcher', question: 'q' }] };
    expect(checkPlaybookAgainstAgents(parse({ fixedPlan }), AGENTS)).toEqual([]);
  });

  test.each<[string, Record<string, unknown>, string[]]>([
    [
      'an undeclared agent',
      { agents: ['researcher', 'ghost'] },
      ['agents: "ghost" is not declared in agents.yaml'],
    ],
    [
      'the lead listed as a specialist',
      { agents: ['researcher', 'lead'] },
      ['agents: "lead" is the lead agent and cannot be a step\'s specialist'],
    ],
    [
      'a fixed plan with more steps than maxSteps',
      {
        limits: { maxSteps: 1, maxDepth: 0, maxParallel: 1 },
        fixedPlan: {
          rationale: 'r',
          steps: [
            { id: 'a', agent: 'researcher', question: 'q' },
            { id: 'b', agent: 'analyst', question: 'q', dependsOn: ['a'] },
          ],
        },
      },
      ['fixedPlan: plan has 2 steps; the playbook allows at most 1'],
    ],
    [
      'a fixed plan using an agent the playbook does not list',
      { fixedPlan: { rationale: 'r', steps: [{ id: 'a', agent: 'writer', question: 'q' }] } },
      ['fixedPlan: steps[0] ("a"): agent "writer" is not allowed here; use one of: researcher, analyst'],
    ],
    [
      'a fixed plan that decomposes with maxDepth 0',
      {
        limits: { maxSteps: 3, maxDepth: 0, maxParallel: 1 },
        fixedPlan: {
          rationale: 'r',
          steps: [{ id: 'a', agent: 'researcher', question: 'q', decompose: true }],
        },
      },
      ['fixedPlan: steps[0] ("a"): decompose is true but the depth budget is spent (depth 0 of max 0)'],
    ],
  ])('reports %s', (_name, extra, expected) => {
    expect(checkPlaybookAgainstAgents(parse(extra), AGENTS)).toEqual(expected);
  });
});

describe('formatPath', () => {
  test.each<[PropertyKey[], string]>([
    [['agents', 2, 'retry', 'maximumAttempts'], 'agents[2].retry.maximumAttempts'],
    [['limits', 'maxParallel'], 'limits.maxParallel'],
    [['steps', 0, 'dependsOn', 1], 'steps[0].dependsOn[1]'],
    [['lead'], 'lead'],
    [[], ''],
  ])('renders %j as %j', (input, expected) => {
    expect(formatPath(input)).toBe(expected);
  });
});
