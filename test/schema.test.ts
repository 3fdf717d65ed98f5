/**
 * The config and plan schemas: every rule a plan, an agents file, a playbook or an approvers file must
 * obey, each with a case that breaks it and the exact problem people will read.
 */
import {
  AgentsFileSchema,
  ApproversFileSchema,
  checkGatesAgainstApprovers,
  checkPlan,
  checkPlaybookAgainstAgents,
  DurationSchema,
  durationMs,
  formatPath,
  GateSchema,
  PlanSchema,
  PlaybookSchema,
  resolveApprovers,
  type AgentsFile,
  type ApproversFile,
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
      timeouts: { startToClose: '10m', heartbeat: '10s', streamIdle: '1m' },
      retry: {
        initialInterval: '2s',
        backoffCoefficient: 2,
        maximumInterval: '1m',
        maximumAttempts: 5,
        nonRetryableErrorTypes: [],
      },
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
      nonRetryableErrorTypes: [],
    });
    expect(must(parsed.agents[0], 'agent 0').timeouts).toEqual({
      startToClose: '10m',
      heartbeat: '5s',
      streamIdle: '1m',
    });
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
    const refused =
      'must be a tool of the registry ("web_search", "web_fetch"), by name or as { name, allowedDomains, … }';
    expect(issues(result)).toEqual([
      ['agents[1].tools[1]', refused],
      ['agents[1].tools[2]', refused],
    ]);
  });

  test('accepts the registered tools by name, or with their limits', () => {
    const fetch = {
      name: 'web_fetch',
      allowedDomains: ['docs.temporal.io', 'example.com/blog'],
      maxUses: 3,
      maxContentTokens: 5000,
    };
    const parsed = AgentsFileSchema.parse({
      lead: 'lead',
      agents: [agent('lead'), agent('a', { tools: ['web_search', fetch] })],
    });
    expect(must(parsed.agents[1], 'agent 1').tools).toEqual(['web_search', fetch]);
  });

  test('refuses tool limits the API would refuse, or that would not limit anything, naming where', () => {
    const result = AgentsFileSchema.safeParse({
      lead: 'lead',
      agents: [
        agent('lead'),
        agent('a', {
          tools: [
            {
              name: 'web_search',
              allowedDomains: ['a.example'],
              blockedDomains: ['b.example'],
              maxContentTokens: 100,
            },
            { name: 'web_fetch', allowedDomains: ['https://example.com'], maxUses: 0 },
          ],
        }),
        agent('b', { tools: ['web_fetch', { name: 'web_fetch', maxUses: 2 }] }),
      ],
    });
    expect(issues(result)).toEqual([
      [
        'agents[1].tools[0].blockedDomains',
        'give allowedDomains or blockedDomains, not both (the API refuses both)',
      ],
      ['agents[1].tools[0].maxContentTokens', 'applies only to web_fetch'],
      [
        'agents[1].tools[1].allowedDomains[0]',
        'must be a domain such as "docs.example.com" or "example.com/blog" (no scheme, no port)',
      ],
      ['agents[1].tools[1].maxUses', 'Too small: expected number to be >=1'],
      ['agents[2].tools[1]', '"web_fetch" is given twice'],
    ]);
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
    expect(must(parsed.agents[0], 'agent 0').timeouts).toEqual({
      startToClose: good,
      heartbeat: good,
      streamIdle: '1m',
    });
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

const OFF_GATE = { required: false, approvers: ['*'], quorum: 1, onDeadline: 'reject', reminders: [] };

describe('PlaybookSchema', () => {
  test('gates default to not required, auto-approve is off, and limits get their defaults', () => {
    const parsed = PlaybookSchema.parse(playbookInput());
    expect(parsed.gates).toEqual({ plan: OFF_GATE, report: OFF_GATE });
    expect(parsed.allowAutoApprove).toBe(false);
    expect(parsed.limits).toEqual({
      maxSteps: 3,
      maxDepth: 1,
      maxParallel: 2,
      // Default: maxSteps times (1 + maxDepth).
      maxTotalSteps: 6,
      maxPlanAttempts: 3,
      maxRevisions: 2,
    });
  });

  test('a gate given without onDeadline rejects at its deadline; the other gate stays off', () => {
    const parsed = PlaybookSchema.parse(
      playbookInput({ gates: { plan: { required: true, approvers: ['alice'], deadline: '1h' } } }),
    );
    expect(parsed.gates.plan).toEqual({
      required: true,
      approvers: ['alice'],
      quorum: 1,
      deadline: '1h',
      onDeadline: 'reject',
      reminders: [],
    });
    expect(parsed.gates.report).toEqual(OFF_GATE);
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
      'the old timeout and onTimeout keys (renamed deadline and onDeadline)',
      { gates: { plan: { required: true, approvers: ['*'], timeout: '1h', onTimeout: 'reject' } } },
      [['gates.plan', 'Unrecognized keys: "timeout", "onTimeout"']],
    ],
    [
      'an onDeadline that is not reject, auto-approve or escalate',
      { gates: { plan: { required: true, approvers: ['*'], deadline: '1h', onDeadline: 'ignore' } } },
      [['gates.plan.onDeadline', 'Invalid option: expected one of "reject"|"auto-approve"|"escalate"']],
    ],
  ])('refuses %s', (_name, extra, expected) => {
    expect(issues(PlaybookSchema.safeParse(playbookInput(extra)))).toEqual(expected);
  });

  describe('auto-approve needs allowAutoApprove: true', () => {
    const autoGate = { required: true, approvers: ['alice'], deadline: '1h', onDeadline: 'auto-approve' };
    const escalatingGate = {
      required: true,
      approvers: ['alice'],
      deadline: '1h',
      onDeadline: 'escalate',
      escalation: { approvers: ['bob'], deadline: '1h', onDeadline: 'auto-approve' },
    };
    const MESSAGE = 'auto-approve needs allowAutoApprove: true on the playbook';

    test.each<[string, Record<string, unknown>, [string, string][]]>([
      ['on a gate', { gates: { report: autoGate } }, [['gates.report.onDeadline', MESSAGE]]],
      [
        'on an escalation',
        { gates: { plan: escalatingGate } },
        [['gates.plan.escalation.onDeadline', MESSAGE]],
      ],
      [
        'on both gates, with allowAutoApprove: false given',
        { allowAutoApprove: false, gates: { plan: escalatingGate, report: autoGate } },
        [
          ['gates.plan.escalation.onDeadline', MESSAGE],
          ['gates.report.onDeadline', MESSAGE],
        ],
      ],
    ])('refuses it %s', (_name, extra, expected) => {
      expect(issues(PlaybookSchema.safeParse(playbookInput(extra)))).toEqual(expected);
    });

    test('accepts it on a gate and on an escalation once the playbook allows it', () => {
      const parsed = PlaybookSchema.parse(
        playbookInput({ allowAutoApprove: true, gates: { plan: escalatingGate, report: autoGate } }),
      );
      expect(parsed.allowAutoApprove).toBe(true);
      expect(parsed.gates.report.onDeadline).toBe('auto-approve');
      expect(parsed.gates.plan.escalation).toEqual({
        approvers: ['bob'],
        quorum: 1,
        deadline: '1h',
        onDeadline: 'auto-approve',
      });
    });

    test('reject and escalate need no permission', () => {
      const parsed = PlaybookSchema.parse(
        playbookInput({
          gates: {
            plan: { ...escalatingGate, escalation: { approvers: ['bob'], deadline: '1h' } },
            report: { ...autoGate, onDeadline: 'reject' },
          },
        }),
      );
      expect(parsed.gates.plan.escalation?.onDeadline).toBe('reject');
      expect(parsed.gates.report.onDeadline).toBe('reject');
    });
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('GateSchema', () => {
  const gate = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    required: true,
    approvers: ['alice'],
    ...extra,
  });
  const escalation = { approvers: ['group:leads'], deadline: '1d' };

  test('fills quorum 1, onDeadline reject and no reminders; no deadline means none', () => {
    const parsed = GateSchema.parse(gate());
    expect(parsed).toEqual({
      required: true,
      approvers: ['alice'],
      quorum: 1,
      onDeadline: 'reject',
      reminders: [],
    });
    expect(parsed).not.toHaveProperty('deadline');
    expect(parsed).not.toHaveProperty('escalation');
  });

  test('accepts a full escalating gate, filling the escalation quorum and onDeadline', () => {
    const parsed = GateSchema.parse(
      gate({
        approvers: ['alice', 'group:reviewers', '*'],
        quorum: 2,
        deadline: '2d',
        onDeadline: 'escalate',
        escalation,
        reminders: ['1d', '47h'],
      }),
    );
    expect(parsed).toEqual({
      required: true,
      approvers: ['alice', 'group:reviewers', '*'],
      quorum: 2,
      deadline: '2d',
      onDeadline: 'escalate',
      escalation: { approvers: ['group:leads'], quorum: 1, deadline: '1d', onDeadline: 'reject' },
      reminders: ['1d', '47h'],
    });
  });

  test('accepts reminders without a deadline, and reminders before it', () => {
    expect(GateSchema.parse(gate({ reminders: ['1d', '30d'] })).reminders).toEqual(['1d', '30d']);
    expect(GateSchema.parse(gate({ deadline: '1d', reminders: ['23h', '1439m'] })).reminders).toEqual([
      '23h',
      '1439m',
    ]);
  });

  const REF_MESSAGE = 'must be a person id, "group:<id>" or "*"';

  test.each<[string, Record<string, unknown>, [string, string][]]>([
    [
      'onDeadline auto-approve without a deadline',
      { onDeadline: 'auto-approve' },
      [['onDeadline', '"auto-approve" needs a deadline']],
    ],
    [
      'onDeadline escalate without a deadline',
      { onDeadline: 'escalate', escalation },
      [['onDeadline', '"escalate" needs a deadline']],
    ],
    [
      'onDeadline escalate without an escalation',
      { deadline: '1d', onDeadline: 'escalate' },
      [['escalation', 'onDeadline "escalate" needs an escalation']],
    ],
    [
      'onDeadline escalate with neither deadline nor escalation (both reported)',
      { onDeadline: 'escalate' },
      [
        ['onDeadline', '"escalate" needs a deadline'],
        ['escalation', 'onDeadline "escalate" needs an escalation'],
      ],
    ],
    [
      'an escalation when onDeadline is reject',
      { deadline: '1d', escalation },
      [['escalation', 'only used when onDeadline is "escalate"']],
    ],
    [
      'an escalation when onDeadline is auto-approve',
      { deadline: '1d', onDeadline: 'auto-approve', escalation },
      [['escalation', 'only used when onDeadline is "escalate"']],
    ],
    [
      'a reminder at the deadline and one after it',
      { deadline: '1d', reminders: ['12h', '24h', '2d'] },
      [
        ['reminders[1]', 'must come before the deadline (1d)'],
        ['reminders[2]', 'must come before the deadline (1d)'],
      ],
    ],
    ['a reminder that is not a duration', { reminders: ['1 day'] }, [['reminders[0]', DURATION_MESSAGE]]],
    [
      'a deadline that is not a duration',
      { deadline: '1 day', reminders: ['1h'] },
      [['deadline', DURATION_MESSAGE]],
    ],
    ['no approvers', { approvers: [] }, [['approvers', 'Too small: expected array to have >=1 items']]],
    [
      'approver references with spaces, a "*" inside, or an empty one',
      { approvers: ['alice', 'two words', 'a*b', ''] },
      [
        ['approvers[1]', REF_MESSAGE],
        ['approvers[2]', REF_MESSAGE],
        ['approvers[3]', REF_MESSAGE],
      ],
    ],
    ['quorum 0', { quorum: 0 }, [['quorum', 'Too small: expected number to be >=1']]],
    ['quorum 21', { quorum: 21 }, [['quorum', 'Too big: expected number to be <=20']]],
    [
      'an escalation without a deadline, with an unknown key',
      { deadline: '1d', onDeadline: 'escalate', escalation: { approvers: ['bob'], timeout: '1h' } },
      [
        ['escalation.deadline', 'Invalid input: expected string, received undefined'],
        ['escalation', 'Unrecognized key: "timeout"'],
      ],
    ],
    [
      'an escalation that escalates again',
      { deadline: '1d', onDeadline: 'escalate', escalation: { ...escalation, onDeadline: 'escalate' } },
      [['escalation.onDeadline', 'Invalid option: expected one of "reject"|"auto-approve"']],
    ],
  ])('refuses %s', (_name, extra, expected) => {
    expect(issues(GateSchema.safeParse(gate(extra)))).toEqual(expected);
  });

  // A reference that starts with "group:" is a group reference, so it must follow the group id rules;
  // person ids may not contain ":" (ApproversFileSchema), so it cannot be a person either.
  test.each(['group:Bad_Name', 'group:', 'group:-x'])('refuses the malformed group reference %j', (ref) => {
    expect(issues(GateSchema.safeParse(gate({ approvers: [ref] })))).toEqual([['approvers[0]', REF_MESSAGE]]);
  });

  test.each(['*', 'alice', 'alice@example.com', 'group:editors', 'group:research-leads'])(
    'accepts the approver reference %j',
    (ref) => {
      expect(GateSchema.parse(gate({ approvers: [ref] })).approvers).toEqual([ref]);
    },
  );
});

// ---------------------------------------------------------------------------------------------------------

describe('durationMs', () => {
  test.each<[string, number]>([
    ['250ms', 250],
    ['30s', 30_000],
    ['10m', 600_000],
    ['2h', 7_200_000],
    ['3d', 259_200_000],
    ['0s', 0],
  ])('%s is %d ms', (duration, ms) => {
    expect(durationMs(DurationSchema.parse(duration))).toBe(ms);
  });

  test('a number is already milliseconds and passes through', () => {
    expect(durationMs(1500)).toBe(1500);
  });
});

// ---------------------------------------------------------------------------------------------------------

const APPROVERS: ApproversFile = ApproversFileSchema.parse({
  people: [
    { id: 'alice', name: 'Alice' },
    { id: 'bob', name: 'Bob' },
    { id: 'carol', name: 'Carol' },
  ],
  groups: [
    { id: 'reviewers', members: ['alice', 'bob'] },
    { id: 'leads', members: ['carol', 'alice'] },
  ],
});

describe('ApproversFileSchema', () => {
  test('people and groups default to empty', () => {
    expect(ApproversFileSchema.parse({})).toEqual({ people: [], groups: [] });
  });

  test.each<[string, Record<string, unknown>, [string, string][]]>([
    [
      'a duplicate person, at the second one',
      {
        people: [
          { id: 'alice', name: 'A' },
          { id: 'bob', name: 'B' },
          { id: 'alice', name: 'A2' },
        ],
      },
      [['people[2].id', 'duplicate person "alice"']],
    ],
    [
      'a duplicate group, at the second one',
      {
        people: [{ id: 'alice', name: 'A' }],
        groups: [
          { id: 'team', members: ['alice'] },
          { id: 'team', members: ['alice'] },
        ],
      },
      [['groups[1].id', 'duplicate group "team"']],
    ],
    [
      'a group member not declared under people',
      { people: [{ id: 'alice', name: 'A' }], groups: [{ id: 'team', members: ['alice', 'zed'] }] },
      [['groups[0].members[1]', '"zed" is not declared under people']],
    ],
    [
      'person ids with a space, "*" or ":"',
      {
        people: [
          { id: 'al ice', name: 'A' },
          { id: '*', name: 'B' },
          { id: 'group:x', name: 'C' },
        ],
      },
      [
        ['people[0].id', 'must be an identity without spaces, "*" or ":"'],
        ['people[1].id', 'must be an identity without spaces, "*" or ":"'],
        ['people[2].id', 'must be an identity without spaces, "*" or ":"'],
      ],
    ],
    [
      'a group with no members',
      { groups: [{ id: 'team', members: [] }] },
      [['groups[0].members', 'Too small: expected array to have >=1 items']],
    ],
  ])('refuses %s', (_name, input, expected) => {
    expect(issues(ApproversFileSchema.safeParse(input))).toEqual(expected);
  });
});

describe('resolveApprovers', () => {
  test('expands groups to their members', () => {
    expect(resolveApprovers(['group:reviewers'], APPROVERS)).toEqual(['alice', 'bob']);
  });

  test('removes duplicates, keeping first-seen order', () => {
    expect(resolveApprovers(['bob', 'group:leads', 'group:reviewers', 'carol'], APPROVERS)).toEqual([
      'bob',
      'carol',
      'alice',
    ]);
  });

  test('keeps "*"', () => {
    expect(resolveApprovers(['*'], APPROVERS)).toEqual(['*']);
    expect(resolveApprovers(['carol', '*', '*'], APPROVERS)).toEqual(['carol', '*']);
  });

  test('drops unknown people and groups', () => {
    expect(resolveApprovers(['ghost', 'group:nobody', 'alice'], APPROVERS)).toEqual(['alice']);
    expect(resolveApprovers(['ghost'], APPROVERS)).toEqual([]);
  });
});

describe('checkGatesAgainstApprovers', () => {
  /** Signed decisions: the playbooks a quorum over 1 is allowed on. */
  const withGates = (gates: Record<string, unknown>, decisions = 'signed'): Playbook =>
    PlaybookSchema.parse(playbookInput({ gates, decisions }));

  test('gates naming declared people and groups, with a quorum they can meet, have no problems', () => {
    const playbook = withGates({
      plan: {
        required: true,
        approvers: ['group:reviewers', 'carol'],
        quorum: 3,
        deadline: '1d',
        onDeadline: 'escalate',
        escalation: { approvers: ['group:leads'], quorum: 2, deadline: '1d' },
      },
      report: { required: true, approvers: ['alice'] },
    });
    expect(checkGatesAgainstApprovers(playbook, APPROVERS)).toEqual([]);
  });

  test.each<[string, Record<string, unknown>, string[]]>([
    [
      'an unknown person (who then counts for nothing toward the quorum)',
      { plan: { required: true, approvers: ['alice', 'ghost'], quorum: 2 } },
      [
        'gates.plan.approvers: "ghost" is not declared in approvers.yaml',
        'gates.plan.quorum: 2 approvals needed but only 1 approver(s) named',
      ],
    ],
    [
      'an unknown group',
      { report: { required: true, approvers: ['alice', 'group:nobody'] } },
      ['gates.report.approvers: group "nobody" is not declared in approvers.yaml'],
    ],
    [
      'a quorum larger than the people named (a person named twice counts once)',
      { plan: { required: true, approvers: ['group:reviewers', 'alice'], quorum: 3 } },
      ['gates.plan.quorum: 3 approvals needed but only 2 approver(s) named'],
    ],
    [
      'an escalation naming an unknown person, and a quorum it cannot meet',
      {
        plan: {
          required: true,
          approvers: ['alice'],
          deadline: '1d',
          onDeadline: 'escalate',
          escalation: { approvers: ['group:leads', 'ghost'], quorum: 3, deadline: '1d' },
        },
      },
      [
        'gates.plan.escalation.approvers: "ghost" is not declared in approvers.yaml',
        'gates.plan.escalation.quorum: 3 approvals needed but only 2 approver(s) named',
      ],
    ],
  ])('reports %s', (_name, gates, expected) => {
    expect(checkGatesAgainstApprovers(withGates(gates), APPROVERS).map((f) => f.message)).toEqual(expected);
  });

  test('"*" meets a quorum of 1, on a gate and on an escalation', () => {
    const playbook = withGates({
      plan: {
        required: true,
        approvers: ['*'],
        deadline: '1d',
        onDeadline: 'escalate',
        escalation: { approvers: ['carol', '*'], quorum: 1, deadline: '1d' },
      },
      report: { required: true, approvers: ['*'], quorum: 1 },
    });
    expect(checkGatesAgainstApprovers(playbook, APPROVERS)).toEqual([]);
  });

  test('a quorum over 1 that "*" could meet is refused: one person could claim several names', () => {
    const playbook = withGates({
      plan: {
        required: true,
        approvers: ['*'],
        quorum: 20,
        deadline: '1d',
        onDeadline: 'escalate',
        escalation: { approvers: ['carol', '*'], quorum: 5, deadline: '1d' },
      },
      report: { required: true, approvers: ['*'], quorum: 7 },
    });
    expect(checkGatesAgainstApprovers(playbook, APPROVERS).map((f) => f.message)).toEqual([
      "gates.plan.quorum: 20 approvals from '*' (anyone) could all come from one person claiming several names; name the approvers, or use quorum 1",
      "gates.plan.escalation.quorum: 5 approvals from '*' (anyone) could all come from one person claiming several names; name the approvers, or use quorum 1",
      "gates.report.quorum: 7 approvals from '*' (anyone) could all come from one person claiming several names; name the approvers, or use quorum 1",
    ]);
  });

  test('a quorum over 1 under unsigned decisions is refused: one person could send several names', () => {
    const playbook = withGates(
      {
        plan: {
          required: true,
          approvers: ['group:reviewers', 'carol'],
          quorum: 2,
          deadline: '1d',
          onDeadline: 'escalate',
          escalation: { approvers: ['group:leads'], quorum: 2, deadline: '1d' },
        },
        report: { required: true, approvers: ['*'], quorum: 3 },
      },
      'unsigned',
    );
    const fix = 'set decisions: signed (approvers sign with keys listed in approvers.yaml), or use quorum 1';
    expect(checkGatesAgainstApprovers(playbook, APPROVERS)).toEqual([
      {
        at: ['gates', 'plan', 'quorum'],
        message: `gates.plan.quorum: 2 approvals under decisions: unsigned could all come from one person claiming several names; ${fix}`,
      },
      {
        at: ['gates', 'plan', 'escalation', 'quorum'],
        message: `gates.plan.escalation.quorum: 2 approvals under decisions: unsigned could all come from one person claiming several names; ${fix}`,
      },
      {
        at: ['gates', 'report', 'quorum'],
        message: `gates.report.quorum: 3 approvals under decisions: unsigned could all come from one person claiming several names; ${fix}`,
      },
    ]);
    // Quorum 1 stays open to unsigned decisions.
    const single = withGates({ plan: { required: true, approvers: ['alice', '*'] } }, 'unsigned');
    expect(checkGatesAgainstApprovers(single, APPROVERS)).toEqual([]);
  });

  test('a gate with required: false is not checked', () => {
    const playbook = withGates({
      plan: {
        required: false,
        approvers: ['ghost', 'group:nobody'],
        quorum: 9,
        deadline: '1d',
        onDeadline: 'escalate',
        escalation: { approvers: ['phantom'], quorum: 4, deadline: '1d' },
      },
    });
    expect(checkGatesAgainstApprovers(playbook, APPROVERS)).toEqual([]);
  });

  test('reports the plan gate before the report gate', () => {
    const playbook = withGates({
      plan: { required: true, approvers: ['ghost'] },
      report: { required: true, approvers: ['group:nobody'] },
    });
    expect(checkGatesAgainstApprovers(playbook, APPROVERS).map((f) => f.message)).toEqual([
      'gates.plan.approvers: "ghost" is not declared in approvers.yaml',
      'gates.plan.quorum: 1 approvals needed but only 0 approver(s) named',
      'gates.report.approvers: group "nobody" is not declared in approvers.yaml',
      'gates.report.quorum: 1 approvals needed but only 0 approver(s) named',
    ]);
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
    expect(checkPlaybookAgainstAgents(parse(extra), AGENTS).map((f) => f.message)).toEqual(expected);
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

describe('AgentsFileSchema: the prices table', () => {
  const PRICE = { input: 2, output: 10, cacheWrite: 2.5, cacheRead: 0.2 };
  const withPrices = (prices: unknown) =>
    AgentsFileSchema.safeParse({ lead: 'lead', agents: [agent('lead'), agent('a')], prices });

  test('is optional: without it the file parses and has no prices (every cost is then unknown)', () => {
    const parsed = AgentsFileSchema.parse({ lead: 'lead', agents: [agent('lead'), agent('a')] });
    expect(parsed.prices).toBeUndefined();
  });

  test('accepts USD per million tokens by model id, zero and fractions included', () => {
    const prices = { 'claude-test': PRICE, 'claude-haiku-5-5[1m]': { ...PRICE, input: 0, cacheRead: 0 } };
    const result = withPrices(prices);
    expect(result.success).toBe(true);
    expect(result.data?.prices).toEqual(prices);
  });

  test.each<[string, unknown, [string, string][]]>([
    [
      'a missing price',
      { m: { input: 1, output: 2, cacheWrite: 1.25 } },
      [['prices.m.cacheRead', 'is required (US dollars per million tokens)']],
    ],
    [
      'a negative price, a string and an unknown key',
      { m: { input: -1, output: '2', cacheWrite: 1.25, cacheRead: 0.1, cache_read: 1 } },
      [
        ['prices.m.input', 'must not be negative'],
        ['prices.m.output', 'must be a number of US dollars per million tokens'],
        ['prices.m', 'Unrecognized key: "cache_read"'],
      ],
    ],
    [
      'swapped cache columns',
      { m: { input: 1, output: 2, cacheWrite: 0.1, cacheRead: 1.25 } },
      [
        [
          'prices.m.cacheRead',
          'must not exceed input (1): cache reads are cheaper than base input; are cacheRead and cacheWrite swapped?',
        ],
        [
          'prices.m.cacheWrite',
          'must not be below input (1): cache writes cost more than base input; are cacheRead and cacheWrite swapped?',
        ],
      ],
    ],
    [
      'a price per token instead of per million',
      { m: { input: 3_000_000, output: 2, cacheWrite: 3_750_000, cacheRead: 0.1 } },
      [
        ['prices.m.input', 'is implausibly high for USD per million tokens (at most 10000)'],
        ['prices.m.cacheWrite', 'is implausibly high for USD per million tokens (at most 10000)'],
      ],
    ],
    [
      'a malformed model id',
      { 'not a model!': PRICE },
      [['prices.not a model!', 'must be a model id such as "claude-sonnet-5-5"']],
    ],
    ['a list instead of a table', [PRICE], [['prices', 'Invalid input: expected record, received array']]],
  ])('refuses %s, naming the field', (_name, prices, expected) => {
    expect(issues(withPrices(prices))).toEqual(expected);
  });
});
