/**
 * Every recorded history of every released workflow version (test/histories/<version>/) must
 * replay against today's workflow code: that is what keeps a deploy from breaking tasks that are
 * running. Record new ones with `npm run histories:record -- v<N>` when a version is released.
 */
import { Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { workerTracing } from '../workers/telemetry';
import { decisionWithDeadline } from './helpers';
import { recordedHistories } from './recorded-histories';

test('there are recorded histories of the released versions, covering every workflow type', async () => {
  const all = await recordedHistories();
  expect(all.length).toBeGreaterThanOrEqual(5);
  const types = new Set(
    all.map(({ history }) => {
      const first = (
        history as {
          events: { workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } } }[];
        }
      ).events[0];
      return first?.workflowExecutionStartedEventAttributes?.workflowType?.name;
    }),
  );
  expect([...types].sort()).toEqual(['researchBatch', 'researchSubtask', 'researchTask']);
});

test('every recorded history replays against the current workflow code', async () => {
  const results: { name: string; error?: string }[] = [];
  const all = await recordedHistories();
  const replays = Worker.runReplayHistories(
    // The prebuilt bundle a deploy runs, tracing interceptors included, with the sink they call.
    {
      workflowBundle: { codePath: process.env.BATON_TEST_WORKFLOW_BUNDLE! },
      ...workerTracing(undefined, true),
    },
    all.map(({ workflowId, history }) => ({ workflowId, history })),
  );
  for await (const result of replays) results.push({ name: result.workflowId, error: result.error?.message });
  expect(results).toEqual(all.map(({ workflowId }) => ({ name: workflowId, error: undefined })));
});

/** Ids of the patches a history recorded (core_patch markers). */
function patchesIn(history: unknown): string[] {
  type Marker = { markerName?: string; details?: Record<string, { payloads?: { data?: string }[] }> };
  const events = (history as { events: { markerRecordedEventAttributes?: Marker }[] }).events;
  return events.flatMap(({ markerRecordedEventAttributes: m }) => {
    const data = m?.markerName === 'core_patch' ? m.details?.['patch-data']?.payloads?.[0]?.data : undefined;
    return data ? [(JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as { id: string }).id] : [];
  });
}

test('the draft preview is versioned: v1 tasks ran without it, v2 tasks with it, and both replay above', async () => {
  const byName = new Map((await recordedHistories()).map((r) => [r.name, r.history]));
  for (const scenario of ['gated-approved', 'quorum-revised']) {
    expect([scenario, patchesIn(byName.get(`v1/v1-${scenario}.json`))]).toEqual([scenario, []]);
    expect([scenario, patchesIn(byName.get(`v2/v2-${scenario}.json`))]).toEqual([
      scenario,
      ['draft-preview-before-report-gate'],
    ]);
  }
});

type Event = {
  eventType?: string;
  activityTaskScheduledEventAttributes?: { activityType?: { name?: string } };
};
const eventsOf = (history: unknown): Event[] => (history as { events: Event[] }).events;
const typeOf = (e: Event): string => (e.eventType ?? '').replace(/^EVENT_TYPE_/, '');

/** The commands a history's workflow emitted, in order (activities by name). */
function commandsIn(history: unknown): string[] {
  const command =
    /^(ACTIVITY_TASK_SCHEDULED|ACTIVITY_TASK_CANCEL_REQUESTED|TIMER_STARTED|TIMER_CANCELED|MARKER_RECORDED|UPSERT_WORKFLOW_SEARCH_ATTRIBUTES|START_CHILD_WORKFLOW_EXECUTION_INITIATED|WORKFLOW_EXECUTION_(COMPLETED|FAILED|CANCELED))$/;
  return eventsOf(history).flatMap((e) => {
    const type = typeOf(e);
    if (!command.test(type)) return [];
    const activity = e.activityTaskScheduledEventAttributes?.activityType?.name;
    return [activity ? `${type} ${activity}` : type];
  });
}

/** Child workflows a history started before the first of them finished. */
function childrenStartedTogether(history: unknown): number {
  const events = eventsOf(history).map(typeOf);
  const firstDone = events.findIndex((t) => t.startsWith('CHILD_WORKFLOW_EXECUTION_COMPLETED'));
  return events.slice(0, firstDone).filter((t) => t === 'START_CHILD_WORKFLOW_EXECUTION_INITIATED').length;
}

/**
 * Each behaviour change of issue 16 behind a marker: a history recorded by the code before it
 * (test/histories/pre-<commit>/, recorded with `--workflows-from <commit>^`) takes the old branch,
 * the v4 history of the same scenario the new one, and both replay above.
 */
describe("version markers: the old code's history lacks the marker, v4's has it", () => {
  let byName: Map<string, unknown>;
  beforeAll(async () => {
    byName = new Map((await recordedHistories()).map((r) => [r.name, r.history]));
  });
  const history = (name: string): unknown => {
    const found = byName.get(name);
    if (!found) throw new Error(`no recorded history ${name}`);
    return found;
  };

  test('batches-share-max-parallel (28af961): two batches at once before, one at a time after', () => {
    const before = history('pre-28af961/pre-28af961-batched-wide.json');
    const after = history('v4/v4-batched-wide.json');
    expect(patchesIn(before)).toEqual(['batched-execution']);
    expect(patchesIn(after)).toEqual(['batched-execution', 'batches-share-max-parallel']);
    expect([childrenStartedTogether(before), childrenStartedTogether(after)]).toEqual([2, 1]);
    // The released v3 histories (a chain: one batch ready at a time) lack it too.
    expect(patchesIn(history('v3/v3-batched.json'))).toEqual(['batched-execution']);
  });

  test('partial-report-on-cancel (34afd17): a cancelled task publishes its finished steps after, not before', () => {
    const before = history('pre-34afd17/pre-34afd17-cancelled-after-steps.json');
    const after = history('v4/v4-cancelled-after-steps.json');
    expect(patchesIn(before)).toEqual([]);
    expect(patchesIn(after)).toEqual(['partial-report-on-cancel']);
    const partial = [
      'ACTIVITY_TASK_SCHEDULED assemblePartialReport',
      'ACTIVITY_TASK_SCHEDULED publishReport',
    ];
    expect(commandsIn(before).slice(-3)).toEqual([
      'ACTIVITY_TASK_CANCEL_REQUESTED',
      'UPSERT_WORKFLOW_SEARCH_ATTRIBUTES',
      'WORKFLOW_EXECUTION_CANCELED',
    ]);
    expect(commandsIn(after)).toEqual(expect.arrayContaining(partial));
    expect(commandsIn(after).at(-1)).toBe('WORKFLOW_EXECUTION_CANCELED');
  });

  test('63c7347 (a decision and the deadline in one workflow task) needs no marker: the old code emitted the same commands', () => {
    // With SDK 1.24 signals and Updates are applied before a fired timer in the same activation, so
    // the gate's condition resolves as decided and the re-check after a won timer is never reached:
    // recorded by the code before the change, the race ends approved, command for command as today.
    for (const scenario of ['deadline-race', 'deadline-race-update']) {
      const before = history(`pre-63c7347/pre-63c7347-${scenario}.json`);
      const after = history(`v4/v4-${scenario}.json`);
      expect([scenario, decisionWithDeadline(before as never), decisionWithDeadline(after as never)]).toEqual(
        [scenario, true, true],
      );
      expect(commandsIn(before)).toEqual(commandsIn(after));
      expect(commandsIn(after).at(-1)).toBe('WORKFLOW_EXECUTION_COMPLETED');
    }
  });

  test('signed-decisions (4b9ea22): a signed playbook took names as given before, signatures after', () => {
    // Recorded with the same driver: the old code publishes no gate opening to sign for, so its
    // decisions went unsigned and were accepted; both tasks complete.
    const before = history('pre-4b9ea22/pre-4b9ea22-signed-decisions.json');
    const after = history('v6/v6-signed-decisions.json');
    expect(patchesIn(before)).not.toContain('signed-decisions');
    expect(patchesIn(after)).toContain('signed-decisions');
    expect([commandsIn(before).at(-1), commandsIn(after).at(-1)]).toEqual([
      'WORKFLOW_EXECUTION_COMPLETED',
      'WORKFLOW_EXECUTION_COMPLETED',
    ]);
  });

  test('passkey-decisions (9b9879c): a passkey approval by signal was malformed before, counts after', () => {
    // Recorded with the same driver: refused before, alice then signs with her key; both complete.
    const before = history('pre-9b9879c/pre-9b9879c-passkey-decisions.json');
    const after = history('v7/v7-passkey-decisions.json');
    expect(patchesIn(before)).not.toContain('passkey-decisions');
    expect(patchesIn(after)).toContain('passkey-decisions');
    expect([commandsIn(before).at(-1), commandsIn(after).at(-1)]).toEqual([
      'WORKFLOW_EXECUTION_COMPLETED',
      'WORKFLOW_EXECUTION_COMPLETED',
    ]);
  });
});

describe('children-verify-snapshot (v8): children check their snapshot before any model call', () => {
  test("v1–v6 children took their config as given; v8's check it first, and their parents give the sealed snapshot", async () => {
    const byName = new Map((await recordedHistories()).map((r) => [r.name, r.history]));
    const children = [...byName.keys()].filter((n) => /%2F(step-|batch-)/.test(n));
    const older = children.filter((n) => !/^(v([89]|\d\d)(\.\d+)?|pre-ba6f2af)\//.test(n)); // v8 and later check
    // Decomposed and batched children of v1 to v6 (v4 has every scenario).
    expect(older.filter((n) => n.startsWith('v4/')).length).toBeGreaterThanOrEqual(3);
    for (const name of older)
      expect({ name, patches: patchesIn(byName.get(name)) }).toEqual({
        name,
        patches: expect.not.arrayContaining(['children-verify-snapshot']),
      });
    for (const name of ['v8/v8-decomposed%2Fstep-s1.json', 'v8/v8-batched%2Fbatch-1.json']) {
      const child = byName.get(name);
      expect([name, patchesIn(child)]).toEqual([name, expect.arrayContaining(['children-verify-snapshot'])]);
      // The check comes before the first model call.
      const activities = commandsIn(child).filter((c) => c.startsWith('ACTIVITY_TASK_SCHEDULED'));
      expect([name, activities[0]]).toEqual([name, 'ACTIVITY_TASK_SCHEDULED checkSnapshot']);
    }
    for (const name of ['v8/v8-decomposed.json', 'v8/v8-batched.json'])
      expect(patchesIn(byName.get(name))).toContain('children-verify-snapshot');
  });
});

describe('synthesis-fits-context (v10): synthesis in parts when the steps are too many or too long', () => {
  test('v3–v8 synthesized 120 steps in one call; v10 summarizes groups first, and splits on a context refusal', async () => {
    const byName = new Map((await recordedHistories()).map((r) => [r.name, r.history]));
    const synthesisCalls = (name: string): string[] =>
      commandsIn(byName.get(name)).filter((c) => /summarizeSteps|synthesizeReport/.test(c));
    const before = 'v3/v3-batched.json';
    expect(patchesIn(byName.get(before))).not.toContain('synthesis-fits-context');
    expect(synthesisCalls(before)).toEqual(['ACTIVITY_TASK_SCHEDULED synthesizeReport']);
    const after = 'v10/v10-synthesized-in-parts.json';
    expect(patchesIn(byName.get(after))).toContain('synthesis-fits-context');
    expect(synthesisCalls(after)).toEqual([
      ...Array<string>(3).fill('ACTIVITY_TASK_SCHEDULED summarizeSteps'),
      'ACTIVITY_TASK_SCHEDULED synthesizeReport',
    ]);
    // A refused synthesis (ContextTooLong) failed the task before (v4's synthesis-failed takes
    // that branch); since v10 the steps are split in two groups, summarized, and the report written.
    expect(patchesIn(byName.get('v4/v4-synthesis-failed.json'))).not.toContain('synthesis-fits-context');
    const split = 'v10/v10-synthesis-split.json';
    expect(patchesIn(byName.get(split))).toContain('synthesis-fits-context');
    expect(synthesisCalls(split)).toEqual([
      'ACTIVITY_TASK_SCHEDULED synthesizeReport',
      'ACTIVITY_TASK_SCHEDULED summarizeSteps',
      'ACTIVITY_TASK_SCHEDULED summarizeSteps',
      'ACTIVITY_TASK_SCHEDULED synthesizeReport',
    ]);
    expect(commandsIn(byName.get(split)).at(-1)).toBe('WORKFLOW_EXECUTION_COMPLETED');
  });
});

describe('partial-report-on-failure (v11): a task that fails with work done publishes a partial report', () => {
  test('v4 failed with nothing published; v11 assembles and publishes a partial report, then fails', async () => {
    const byName = new Map((await recordedHistories()).map((r) => [r.name, r.history]));
    const published = (name: string): string[] =>
      commandsIn(byName.get(name)).filter((c) => /assemblePartialReport|publishReport/.test(c));
    for (const scenario of ['step-failed', 'batch-step-failed', 'synthesis-failed']) {
      const before = `v4/v4-${scenario}.json`;
      expect([before, patchesIn(byName.get(before))]).toEqual([
        before,
        expect.not.arrayContaining(['partial-report-on-failure']),
      ]);
      expect([before, published(before)]).toEqual([before, []]);
      const after = `v11/v11-${scenario}.json`;
      expect([after, patchesIn(byName.get(after))]).toEqual([
        after,
        expect.arrayContaining(['partial-report-on-failure']),
      ]);
      expect([after, published(after)]).toEqual([
        after,
        ['ACTIVITY_TASK_SCHEDULED assemblePartialReport', 'ACTIVITY_TASK_SCHEDULED publishReport'],
      ]);
      expect(commandsIn(byName.get(after)).at(-1)).toBe('WORKFLOW_EXECUTION_FAILED');
    }
    // A failed publish: the synthesized report itself is published as partial (no assembly).
    const publish = 'v11/v11-publish-failed.json';
    expect(patchesIn(byName.get(publish))).toContain('partial-report-on-failure');
    expect(published(publish)).toEqual([
      'ACTIVITY_TASK_SCHEDULED publishReport',
      'ACTIVITY_TASK_SCHEDULED publishReport',
    ]);
  });
});

test('cancel-keeps-batch-steps (v11.1): a cancelled batched task keeps the finished steps of the batch in flight', async () => {
  const byName = new Map((await recordedHistories()).map((r) => [r.name, r.history]));
  // Before (pre-ba6f2af, the same scenario): the parent, with no finished step of its own, published
  // nothing and ended at once. No batch child before v11.1 has the marker.
  const before = 'pre-ba6f2af/pre-ba6f2af-batched-cancelled.json';
  expect(patchesIn(byName.get(before))).not.toContain('cancel-keeps-batch-steps');
  expect(commandsIn(byName.get(before)).filter((c) => /PartialReport|publishReport/.test(c))).toEqual([]);
  // Its batch never returned its steps: the parent ended first, and the batch with it.
  expect(commandsIn(byName.get('pre-ba6f2af/pre-ba6f2af-batched-cancelled%2Fbatch-1.json'))).not.toContain(
    'WORKFLOW_EXECUTION_COMPLETED',
  );

  for (const name of [...byName.keys()].filter((n) => /%2Fbatch-/.test(n) && !n.startsWith('v11.1/')))
    expect([name, patchesIn(byName.get(name))]).toEqual([
      name,
      expect.not.arrayContaining(['cancel-keeps-batch-steps']),
    ]);
  const parent = 'v11.1/v11.1-batched-cancelled.json';
  const child = 'v11.1/v11.1-batched-cancelled%2Fbatch-1.json';
  expect(patchesIn(byName.get(parent))).toContain('cancel-keeps-batch-steps');
  expect(patchesIn(byName.get(child))).toContain('cancel-keeps-batch-steps');
  // The child completes (returning its steps) instead of being cancelled; the parent publishes after.
  expect(commandsIn(byName.get(child)).at(-1)).toBe('WORKFLOW_EXECUTION_COMPLETED');
  const commands = commandsIn(byName.get(parent));
  expect(commands.slice(-4)).toEqual([
    'ACTIVITY_TASK_SCHEDULED assemblePartialReport',
    'ACTIVITY_TASK_SCHEDULED publishReport',
    'UPSERT_WORKFLOW_SEARCH_ATTRIBUTES',
    'WORKFLOW_EXECUTION_CANCELED',
  ]);
});

test('agents-by-reference (v12): model activities were given agents and sources inline before, by reference after', async () => {
  const all = await recordedHistories();
  type Scheduled = { activityType?: { name?: string }; input?: { payloads?: { data?: string }[] } };
  /** The inputs of a history's model activities, as JSON text. */
  const modelInputs = (history: unknown): { name: string; text: string }[] =>
    (history as { events: { activityTaskScheduledEventAttributes?: Scheduled }[] }).events.flatMap(
      ({ activityTaskScheduledEventAttributes: a }) => {
        const name = a?.activityType?.name ?? '';
        if (!/^(planTask|runSpecialist|summarizeSteps|synthesizeReport)$/.test(name)) return [];
        return [{ name, text: Buffer.from(a!.input!.payloads![0]!.data!, 'base64').toString('utf8') }];
      },
    );
  // Folders recorded before v12: pre-<commit>/ and v1/ to v11.1/.
  const before12 = (name: string): boolean => /^(pre-|v([1-9]|1[01])(\.\d+)?\/)/.test(name);
  const [older, v12] = [all.filter((h) => before12(h.name)), all.filter((h) => h.name.startsWith('v12/'))];
  // Before: every model call carried its agent's whole config (system prompt included).
  for (const { name, history } of older) {
    expect({ name, patches: patchesIn(history) }).toEqual({
      name,
      patches: expect.not.arrayContaining(['agents-by-reference']),
    });
    for (const input of modelInputs(history))
      expect([name, input.text]).toEqual([name, expect.stringContaining('"systemPrompt"')]);
  }
  // v12: tasks, decomposed and batch children, a budget, synthesis in parts: references only.
  expect(v12.map((h) => h.name.replace(/^v12\/v12-/, '')).sort()).toEqual(
    expect.arrayContaining([
      'batched%2Fbatch-1.json',
      'budget-stopped.json',
      'decomposed%2Fstep-s1.json',
      'synthesized-in-parts.json',
    ]),
  );
  let sourcesByReference = 0;
  for (const { name, history } of v12) {
    expect([name, patchesIn(history)]).toEqual([name, expect.arrayContaining(['agents-by-reference'])]);
    for (const input of modelInputs(history)) {
      expect([name, input.text]).not.toEqual([name, expect.stringContaining('"systemPrompt"')]);
      expect([name, input.text]).toEqual([
        name,
        expect.stringMatching(/"(lead|agent)":\{"id":"[\w-]+","snapshot":"sha256:[0-9a-f]{64}"/),
      ]);
      if (input.name === 'synthesizeReport' || input.name === 'summarizeSteps')
        sourcesByReference += (input.text.match(/"sourcesRef":/g) ?? []).length;
    }
  }
  expect(sourcesByReference).toBeGreaterThan(120);
});

test('an incompatible change is caught: replay fails with a DeterminismViolationError', async () => {
  const all = await recordedHistories();
  const task = all.find(({ name }) => name.endsWith('gated-approved.json'))!;
  await expect(
    Worker.runReplayHistory(
      { workflowsPath: require.resolve('./fixtures/incompatible/workflows') },
      task.history,
      task.workflowId,
    ),
  ).rejects.toBeInstanceOf(DeterminismViolationError);
});

test('citation-pass (v16): after every synthesis the draft is checked before the report gate; no history before v14 has the marker', async () => {
  const all = await recordedHistories();
  for (const { name, history } of all.filter((h) => /^(pre-|v([1-9]|1[0-3])(\.\d+)?\/)/.test(h.name))) {
    expect([name, patchesIn(history)]).toEqual([name, expect.not.arrayContaining(['citation-pass'])]);
  }
  const checked = all.find((h) => h.name === 'v16/v16-citations-checked.json')!.history;
  expect(patchesIn(checked)).toContain('citation-pass');
  const reports = commandsIn(checked).filter((c) => /synthesizeReport|checkCitations|publishReport/.test(c));
  expect(reports.map((c) => c.split(' ')[1])).toEqual([
    'synthesizeReport',
    'checkCitations',
    'publishReport', // the draft, for the report gate
    'synthesizeReport', // after the change request
    'checkCitations',
    'publishReport',
    'publishReport', // the final report
  ]);
});

test('continue-as-new-at-gates (v13): a task waiting at a gate hands over to a new run; no history before v13 does', async () => {
  const all = await recordedHistories();
  type Event = {
    workflowExecutionStartedEventAttributes?: { input?: { payloads?: { data?: string }[] } };
    workflowExecutionContinuedAsNewEventAttributes?: unknown;
    workflowExecutionCompletedEventAttributes?: unknown;
    activityTaskScheduledEventAttributes?: { activityType?: { name?: string } };
  };
  const eventsOf = (history: unknown) => (history as { events: Event[] }).events;
  const input = (history: unknown): unknown => {
    const data = eventsOf(history)[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
    return data ? JSON.parse(Buffer.from(data, 'base64').toString('utf8')) : undefined;
  };
  const activities = (history: unknown) =>
    eventsOf(history).flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
  const before13 = all.filter((h) => /^(pre-|v([1-9]|1[0-2])(\.\d+)?\/)/.test(h.name));
  for (const { name, history } of before13)
    expect([name, patchesIn(history)]).toEqual([
      name,
      expect.not.arrayContaining(['continue-as-new-at-gates']),
    ]);

  const runs = all.filter((h) => h.name.startsWith('v13/v13-continued-at-gates@')).map((h) => h.history);
  expect(runs).toHaveLength(3);
  const [first, second, third] = runs;
  // The first run opens the plan gate, saves its state and continues; it never plans twice.
  expect(patchesIn(first)).toContain('continue-as-new-at-gates');
  expect(activities(first)).toContain('saveTaskState');
  expect(eventsOf(first).at(-1)?.workflowExecutionContinuedAsNewEventAttributes).toBeDefined();
  // The next runs are started by the task itself with only the size and hash of its state, read it
  // back, and wait at the gate (plan, then report) with no config load or plan of their own.
  for (const run of [second, third]) {
    expect(input(run)).toEqual({
      question: 'Recorded scenario continued-at-gates',
      playbook: 'gated',
      continued: { parts: 1, sha256: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) },
    });
    expect(activities(run)[0]).toBe('loadTaskState');
    expect(activities(run)).not.toContain('loadConfigSnapshot');
    expect(activities(run)).not.toContain('planTask');
  }
  expect(activities(second)).toEqual(
    expect.arrayContaining(['runSpecialist', 'synthesizeReport', 'saveTaskState']),
  );
  expect(activities(third)).toEqual(['loadTaskState', 'publishReport']);
  expect(eventsOf(third).at(-1)?.workflowExecutionCompletedEventAttributes).toBeDefined();
});

test('mcp-tool-loop (v14): a step with MCP tools runs as model turns and tool calls of its own; no history before v14 has the marker', async () => {
  const all = await recordedHistories();
  type Event = { activityTaskScheduledEventAttributes?: { activityType?: { name?: string } } };
  const activities = (history: unknown) =>
    (history as { events: Event[] }).events.flatMap(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
    );
  for (const { name, history } of all.filter((h) => /^(pre-|v([1-9]|1[0-3])(\.\d+)?\/)/.test(h.name))) {
    expect([name, patchesIn(history)]).toEqual([name, expect.not.arrayContaining(['mcp-tool-loop'])]);
    expect([name, activities(history)]).toEqual([name, expect.not.arrayContaining(['toolTurn'])]);
  }
  const loop = all.find((h) => h.name === 'v14/v14-tool-loop.json')!.history;
  expect(patchesIn(loop)).toContain('mcp-tool-loop');
  const scheduled = activities(loop);
  const count = (name: string) => scheduled.filter((a) => a === name).length;
  // Two librarian steps: each prepares its tools, takes three turns and makes two calls, one of
  // which a person rejected at the tool gate (not made); the analyst's step runs as before.
  expect([count('prepareMcpTools'), count('toolTurn'), count('callMcpTool'), count('runSpecialist')]).toEqual(
    [2, 6, 3, 1],
  );
});

test('research-rounds (v15): a task whose playbook allows rounds has the lead review the findings after its plan; no history before v15 does', async () => {
  const all = await recordedHistories();
  const activities = (history: unknown): string[] =>
    eventsOf(history).flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
  for (const { name, history } of all.filter((h) => !h.name.startsWith('v15/'))) {
    expect([name, patchesIn(history)]).toEqual([name, expect.not.arrayContaining(['research-rounds'])]);
    expect([name, activities(history)]).toEqual([name, expect.not.arrayContaining(['reviewRound'])]);
  }
  const v15 = new Map(
    all
      .filter((h) => h.name.startsWith('v15/'))
      .map((h) => [h.name.replace(/^v15\/v15-|\.json$/g, ''), h.history]),
  );
  expect([...v15.keys()].sort()).toEqual([
    'rounds-approved',
    'rounds-review-failed',
    'rounds-revised-rejected',
    'rounds-unapproved',
  ]);
  for (const [name, history] of v15)
    expect([name, patchesIn(history)]).toEqual([name, expect.arrayContaining(['research-rounds'])]);
  // Round 2's step runs between the two reviews, before the report is written.
  const approved = activities(v15.get('rounds-approved')).filter((a) => a !== 'publishReport');
  expect(approved.slice(-5)).toEqual([
    'runSpecialist',
    'reviewRound',
    'runSpecialist',
    'reviewRound',
    'synthesizeReport',
  ]);
  // A refused delta is asked again, a change request asks again, a rejection ends the rounds.
  const rejected = activities(v15.get('rounds-revised-rejected')).filter((a) => a === 'reviewRound');
  expect(rejected).toHaveLength(3);
});

test('hold-decisions-from-first-task (v17): continued runs hold decisions before their handlers are set; first runs and earlier folders do not ask', async () => {
  const all = await recordedHistories();
  const holding = all.filter((h) => patchesIn(h.history).includes('hold-decisions-from-first-task'));
  expect(holding.map((h) => h.name).sort()).toEqual([
    'v17/v17-continued-at-gates@2.json',
    'v17/v17-continued-at-gates@3.json',
  ]);
});

test('bookkeeping-local-activities (v18): bookkeeping runs as local activities, model calls stay activities; no history before v18 has the marker', async () => {
  const all = await recordedHistories();
  type Marker = { markerName?: string; details?: Record<string, { payloads?: { data?: string }[] }> };
  /** The types of the local activities a history recorded (core_local_activity markers), in order. */
  const localActivities = (history: unknown): string[] =>
    (history as { events: { markerRecordedEventAttributes?: Marker }[] }).events.flatMap(
      ({ markerRecordedEventAttributes: m }) => {
        const data =
          m?.markerName === 'core_local_activity' ? m.details?.data?.payloads?.[0]?.data : undefined;
        return data
          ? [
              (JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as { activity_type: string })
                .activity_type,
            ]
          : [];
      },
    );
  const activities = (history: unknown): string[] =>
    eventsOf(history).flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
  for (const { name, history } of all.filter((h) => !h.name.startsWith('v18/'))) {
    expect([name, patchesIn(history)]).toEqual([
      name,
      expect.not.arrayContaining(['bookkeeping-local-activities']),
    ]);
    expect([name, localActivities(history)]).toEqual([name, []]);
  }
  const v18 = new Map(
    all
      .filter((h) => h.name.startsWith('v18/'))
      .map((h) => [h.name.replace(/^v18\/v18-|\.json$/g, ''), h.history]),
  );
  expect([...v18.keys()].sort()).toEqual([
    'cancelled-after-steps',
    'citations-checked',
    'decomposed',
    'decomposed%2Fstep-s1',
  ]);
  const bookkeeping =
    /^(loadConfigSnapshot|checkSnapshot|publishReport|assemblePartialReport|checkCitations)$/;
  for (const [name, history] of v18) {
    expect([name, patchesIn(history)]).toEqual([
      name,
      expect.arrayContaining(['bookkeeping-local-activities']),
    ]);
    expect([name, activities(history).filter((a) => bookkeeping.test(a))]).toEqual([name, []]);
  }
  expect(Object.fromEntries([...v18].map(([name, h]) => [name, localActivities(h)]))).toEqual({
    'citations-checked': [
      'loadConfigSnapshot',
      'checkCitations',
      'publishReport', // the draft, for the report gate
      'checkCitations', // after the change request
      'publishReport',
      'publishReport', // the final report
    ],
    decomposed: ['loadConfigSnapshot', 'checkCitations', 'publishReport'],
    'decomposed%2Fstep-s1': ['checkSnapshot'], // before any model call
    'cancelled-after-steps': ['loadConfigSnapshot', 'assemblePartialReport', 'publishReport'],
  });
  expect(activities(v18.get('citations-checked'))).toEqual([
    'planTask',
    'runSpecialist',
    'runSpecialist',
    'runSpecialist',
    'synthesizeReport',
    'synthesizeReport',
  ]);
});
