/**
 * `npm run histories:record -- <version>`: runs the scenarios below on a fresh dev server and
 * writes each workflow's event history (children included) to test/histories/<version>/, for the
 * replay tests. Record once per released workflow version and commit the files: they are what
 * proves a later change still replays the tasks that were running when it shipped. Histories are
 * append-only (test/histories.test.ts): record into a new folder, never over a committed one.
 *
 * `--workflows-from <commit>` records with that commit's workflow code instead of this checkout's
 * (its tree exported from git into a temporary folder and bundled there), with today's
 * activities: how a `patched()` marker's old branch gets the history that proves it. `--scenarios`
 * picks some of the scenarios by name. test/histories/README.md says what each folder holds.
 *
 * Model calls are the deterministic fakes of the workflow tests, so histories are small and
 * re-recording gives the same command sequence. Gate deadlines are seconds long (playbooks in
 * test/fixtures/history-playbooks, added to the fixture config), so a whole run takes about three
 * minutes.
 */
import { Client, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { historyToJSON, type History } from '@temporalio/common/lib/proto-utils';
import {
  bundleWorkflowCode,
  DefaultLogger,
  Runtime,
  Worker,
  type NativeConnection,
  type WorkerOptions,
} from '@temporalio/worker';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { command, runMain, UsageError } from '../lib/cli';
import { startDevServer } from '../local/temporal';
import { ensureSearchAttributes } from '../workers/search-attributes';
import { getArtifact, putArtifact } from '../activities/artifacts';
import { putRetrievalRecord } from '../activities/citations';
import type { ActivityOptions } from '../activities/options';
import { openStores } from '../activities/store';
import type { Plan } from '../config/schema';
import { FailureTypes } from '../contract/failures';
import type { Activities, PlanTaskResult, StepInput } from '../contract/activities';
import type { RoundAnswer, RoundReviewInput, RoundReviewResult } from '../contract/rounds';
import {
  approve,
  decide,
  reject,
  requestChanges,
  status,
  type DecideRequest,
  type DecisionPayload,
  type Gate,
  type TaskStatus,
  type TokenUsage,
} from '../contract/messages';
import {
  decisionWithDeadline,
  DEFAULT_PLAN,
  fakeModelActivities,
  pollUntil,
  type FakePlanInput,
  tempActivityOptions,
  waitForStatus,
} from './helpers';
import { exportCommit } from './previous-release';
import { asSignal, nodePasskey, nodeSigner, passkeySignedFor, signedConfig, signedFor } from './signing';

const ROOT = path.join(__dirname, '..');

type Handle = WorkflowHandle;

/** A step the scenario holds until it lets it go (a task cancelled while the step runs). */
class Hold {
  release: () => void = () => undefined;
  readonly held = new Promise<void>((resolve) => (this.release = resolve));
}

/** What a scenario's driver can do besides sending messages: stop and start the worker. */
interface Run {
  hold: Hold;
  /** The scenario's client (signing asks the task which gate opening is pending). */
  client: Client;
  /** Stops the worker (waits for it): the task's next workflow task waits on the server. */
  stopWorker(): Promise<void>;
  /** Starts a worker again on the scenario's task queue. */
  startWorker(): Promise<void>;
}

interface Scenario {
  name: string;
  playbook: string;
  /** Sends the decisions the scenario needs; the task then runs to its end. */
  drive(handle: Handle, run: Run): Promise<void>;
  /** The plan the fake lead makes at the top level (default: DEFAULT_PLAN). */
  plan?: Plan;
  /** The lead's whole answer instead, per call (invalid plans). */
  planAnswer?: (input: FakePlanInput, call: number) => PlanTaskResult;
  /** Tokens each step reports (default: the fakes' 15). */
  stepUsage?: TokenUsage;
  /** Runs before each specialist step's fake result: fails a step, or holds it. */
  step?: (input: StepInput, hold: Hold) => Promise<void> | void;
  /** Activities replaced after the fakes (a failing synthesis, refused tool calls), with the worker's stores' options. */
  activities?: (fakes: Activities, options: ActivityOptions) => Partial<Activities>;
  /** The task's input, when not a question and the playbook (invalid input). */
  input?: unknown;
  /** A decision and the gate's deadline must reach the task in one workflow task (checked). */
  race?: boolean;
  /**
   * Events after which the server suggests continuing as new (a server of its own is started):
   * for a task that continues as a new run while it waits at a gate (v13).
   */
  suggestContinueAsNewAfter?: number;
}

/** n steps; each after the tenth depends on the step ten before it. */
const chainOf = (n: number): Plan => ({
  rationale: 'Many angles.',
  steps: Array.from({ length: n }, (_, i) => ({
    id: `s${i + 1}`,
    agent: 'researcher',
    question: `Angle ${i + 1}.`,
    dependsOn: i >= 10 ? [`s${i - 9}`] : [],
    decompose: false,
  })),
});

/** n steps, none depending on another. */
const independent = (n: number): Plan => ({
  rationale: 'Many independent angles.',
  steps: Array.from({ length: n }, (_, i) => ({
    id: `s${i + 1}`,
    agent: 'researcher',
    question: `Angle ${i + 1}.`,
    dependsOn: [],
    decompose: false,
  })),
});

const USAGE_10_5 = { inputTokens: 10, outputTokens: 5 };

/** The fake model's failure of a step: not retried by the agent's policy, so the playbook's decides. */
const stepFails = (id: string): never => {
  throw ApplicationFailure.nonRetryable(`step ${id}: the source is unreachable`, 'SourceUnreachable');
};

/** Fails the step `id` of the top-level task, every time it runs. */
const failing =
  (id: string) =>
  (input: StepInput): void => {
    if (input.step.id === id && input.overallQuestion.startsWith('Recorded scenario')) stepFails(id);
  };

const atGate = (handle: Handle, gate: Gate, extra: (s: TaskStatus) => boolean = () => true) =>
  waitForStatus(handle, (s) => s.pendingGate?.gate === gate && extra(s), `${gate} gate`);

/** Sends a signal the task must refuse (it is audited, so it is in the history). */
const refusedSignal = (handle: Handle, name: string, payload: unknown) => handle.signal(name, payload);

/** Sends an Update the task must refuse (its validator does; nothing reaches the history). */
async function refusedUpdate(handle: Handle, request: { decision: string } & Partial<DecisionPayload>) {
  const accepted = await handle.executeUpdate(decide, { args: [request as never] }).then(
    () => true,
    () => false,
  );
  if (accepted) throw new Error(`the Update ${JSON.stringify(request)} was accepted`);
}

/** Waits until the task's history holds a fired timer (its deadline), reading the history only. */
const timerFired = (handle: Handle) =>
  pollUntil(
    () => handle.fetchHistory(),
    (h) => (h.events ?? []).some((e) => e.timerFiredEventAttributes),
    'the deadline timer to fire',
    60_000,
  );

/** Whether a research round's delta waits at the plan gate (v15). */
const roundPending = (s: TaskStatus): boolean => s.rounds?.at(-1)?.decision === 'pending';

/** The lead's reviews of research rounds, in order (v15): each call takes the next answer, the last repeats. */
function reviews(...answers: RoundAnswer[]): (input: RoundReviewInput) => Promise<RoundReviewResult> {
  let call = 0;
  return (input) => {
    const answer = answers[Math.min(call++, answers.length - 1)]!;
    return Promise.resolve({
      valid: true,
      answer,
      usage: USAGE_10_5,
      model: `review of round ${input.round}`,
    });
  };
}

/** Round 1 left a gap in s1: one more step on it. */
const GAP_DELTA: RoundAnswer = {
  done: false,
  reason: 'Step s1 left a gap: the evidence for A is thin.',
  steps: [
    {
      id: 'r2-1',
      agent: 'researcher',
      question: 'Fill the gap s1 left on A.',
      dependsOn: ['s1'],
      decompose: false,
    },
  ],
};
/** A delta naming an agent the playbook does not declare: the workflow refuses it. */
const INTRUDER_DELTA: RoundAnswer = {
  ...GAP_DELTA,
  steps: [{ ...GAP_DELTA.steps[0]!, agent: 'intruder' }],
};
const DONE: RoundAnswer = { done: true, reason: 'The findings answer the question.', steps: [] };

/** The playbook of the tool loop's scenario (v14), written into the recorder's config with its agent. */
const TOOL_LOOP_PLAYBOOK = 'tool-loop';

/**
 * Adds to the recorder's config an MCP server (never reached: the scenario's activities are fakes),
 * a `librarian` whose tools are two of its tools, the read needing approval, and the playbook
 * {@link TOOL_LOOP_PLAYBOOK} (the librarian and the analyst; the tool gate takes its plan gate's approvers).
 */
async function withToolLoop(configDir: string): Promise<void> {
  const file = path.join(configDir, 'agents.yaml');
  const agents = YAML.parse(await fs.readFile(file, 'utf8')) as {
    agents: object[];
    mcpServers?: Record<string, unknown>;
  };
  agents.mcpServers = {
    ...agents.mcpServers,
    docs: {
      url: 'http://127.0.0.1:9/mcp',
      tools: {
        search_documents: { sha256: 'a'.repeat(64) },
        read_document: { sha256: 'b'.repeat(64), approval: 'required' },
      },
    },
  };
  agents.agents.push({
    id: 'librarian',
    role: 'Searches the documents.',
    model: 'test-specialist-model',
    maxTokens: 1000,
    systemPrompt: 'You search the documents.',
    maxToolTurns: 4,
    tools: [
      { mcp: 'docs', tool: 'search_documents' },
      { mcp: 'docs', tool: 'read_document' },
    ],
    retry: { initialInterval: '100ms', maximumInterval: '1s', maximumAttempts: 2 },
  });
  await fs.writeFile(file, YAML.stringify(agents));
  await fs.writeFile(
    path.join(configDir, 'playbooks', `${TOOL_LOOP_PLAYBOOK}.yaml`),
    `id: ${TOOL_LOOP_PLAYBOOK}
description: Steps with MCP tools; tool calls approved by alice or bob.
agents: [librarian, analyst]
limits: { maxSteps: 5, maxDepth: 0, maxParallel: 3 }
gates:
  plan: { required: false, approvers: [alice, bob] }
`,
  );
}

/** A stored text the fakes of the tool loop name (the workflow only carries references). */
const FAKE_REF = { id: `sha256:${'0'.repeat(64)}`, bytes: 0 };

/**
 * The tool loop's activities as fakes (v14): the tools as prepared, each call's result, and the
 * model turns: a search, a read of what it found, then the fakes' findings.
 */
const toolLoopFakes = (fakes: Activities): Partial<Activities> => ({
  prepareMcpTools: (input) =>
    Promise.resolve({
      tools: input.tools.map((t) => ({
        ...t,
        modelName: `${t.server}__${t.tool}`,
        description: `The fixture's ${t.tool}.`,
        inputSchema: { type: 'object' },
      })),
    }),
  callMcpTool: (input) =>
    Promise.resolve({
      callId: input.callId,
      isError: false,
      result: FAKE_REF,
      preview: `result of ${input.tool}`,
    }),
  async toolTurn(input) {
    const common = { usage: USAGE_10_5, model: 'test-specialist-model', toolsRef: FAKE_REF };
    const [tool, args] =
      input.turns.length === 0
        ? ['search_documents', { query: input.step.question }]
        : ['read_document', { id: `${input.step.id}-document` }];
    if (input.turns.length < 2)
      return {
        kind: 'calls',
        assistant: FAKE_REF,
        calls: [
          { callId: `toolu_${input.step.id}_${input.turns.length}`, server: 'docs', tool, arguments: args },
        ],
        ...common,
      };
    const { summary, sources, sourcesRef, result } = await fakes.runSpecialist(input);
    return { kind: 'answer', summary, sources, sourcesRef: sourcesRef!, result, ...common };
  },
});

/** Keys made at record time: alice's, bob's and carol's are in the config, mallory's in nobody's. */
const KEYS = {
  alice: nodeSigner('alice'),
  bob: nodeSigner('bob'),
  carol: nodeSigner('carol'),
  mallory: nodeSigner('mallory'),
};

/** alice's passkey, made at record time and listed in the config (v7). */
const ALICE_PASSKEY = nodePasskey('alice');

/** Waits until the task's audit trail holds `n` decisions, accepted or refused. */
const decisionsAudited = (handle: Handle, n: number) =>
  waitForStatus(
    handle,
    (s) => s.audit.filter((e) => e.event === 'decision').length >= n,
    `${n} decisions audited`,
  );

/** Whether `by`'s approval counts at the gate open now. */
const approved = async (handle: Handle, by: string) =>
  (await handle.query(status)).pendingGate?.approvals.some((a) => a.by === by) ?? false;

/** An approval by `by`, before it is signed. */
const approval = (by: string) => ({ decision: 'approve' as const, by });

/**
 * `request` signed with `key` for the gate the task has open now; unsigned when the task does not
 * say which opening that is (workflow code older than signed decisions: the marker's old branch).
 */
async function signed(run: Run, handle: Handle, request: DecideRequest, key: keyof typeof KEYS) {
  const { pendingGate } = await handle.query(status);
  if (pendingGate?.instance === undefined) return request;
  return signedFor(run.client, handle.workflowId, request, KEYS[key]);
}

/**
 * v16: each step's search returned one page (its retrieval record); its sources cite that page and
 * one no search returned, and so does the report's text.
 */
const citationFakes = (fakes: Activities, options: ActivityOptions): Partial<Activities> => ({
  async runSpecialist(input) {
    const result = await fakes.runSpecialist(input);
    const store = openStores(options).artifacts;
    const sources = [
      { title: 'Retrieved page', url: `https://retrieved.example/${input.step.id}` },
      { title: 'Page no search returned', url: `https://unretrieved.example/${input.step.id}` },
    ];
    const [sourcesRef, retrieved] = await Promise.all([
      putArtifact(store, JSON.stringify(sources)),
      putRetrievalRecord(store, input.step.id, [
        {
          kind: 'web_search',
          url: sources[0]!.url,
          title: 'Retrieved page',
          retrievedAt: '2026-12-07T00:00:00.000Z',
        },
      ]),
    ]);
    return { ...result, sources, sourcesRef, ...retrieved };
  },
  async synthesizeReport(input) {
    const result = await fakes.synthesizeReport(input);
    const store = openStores(options).artifacts;
    const text = await getArtifact(store, result.report.id);
    const cited = `${text}

See https://retrieved.example/s1 and [a study](https://unretrieved.example/s1).`;
    return { ...result, report: await putArtifact(store, cited) };
  },
});

const SCENARIOS: Scenario[] = [
  {
    name: 'gated-approved',
    playbook: 'gated',
    async drive(handle) {
      await atGate(handle, 'plan');
      await handle.signal(approve, { by: 'alice' });
      await atGate(handle, 'report');
      await handle.executeUpdate(decide, { args: [{ decision: 'approve', by: 'bob' }] });
    },
  },
  {
    // A quorum over 1 needs signed decisions (config:check refuses it otherwise): until issue 14,
    // recorded on an unsigned playbook of the same gates; its decisions are now signed.
    name: 'quorum-revised',
    playbook: 'signed',
    async drive(handle, run) {
      await atGate(handle, 'plan');
      await handle.signal(approve, { by: 'mallory' }); // refused
      const narrower = { decision: 'requestChanges' as const, by: 'alice', comment: 'narrower' };
      await handle.signal(requestChanges, asSignal(await signed(run, handle, narrower, 'alice')));
      await atGate(handle, 'plan', (s) => s.revisions.plan === 1);
      await handle.executeUpdate(decide, { args: [await signed(run, handle, approval('alice'), 'alice')] });
      await handle.executeUpdate(decide, { args: [await signed(run, handle, approval('carol'), 'carol')] });
      await atGate(handle, 'report');
      const moreOnB = { decision: 'requestChanges' as const, by: 'alice', comment: 'more on B' };
      await handle.executeUpdate(decide, {
        args: [await signed(run, handle, { ...moreOnB, rerunSteps: ['s2'] }, 'alice')],
      });
      await atGate(handle, 'report', (s) => s.revisions.report === 1);
      await handle.signal(approve, asSignal(await signed(run, handle, approval('alice'), 'alice')));
    },
  },
  {
    name: 'fixed-deadline',
    playbook: 'fixed',
    async drive() {
      // The plan gate auto-approves after its 1 s deadline.
    },
  },
  {
    name: 'decomposed',
    playbook: 'open',
    plan: { ...DEFAULT_PLAN, steps: DEFAULT_PLAN.steps.map((s, i) => ({ ...s, decompose: i === 0 })) },
    async drive() {
      // No gates: step s1 decomposes into a child.
    },
  },
  {
    // v3: the token budget stops scheduling after two steps of 300 tokens.
    name: 'budget-stopped',
    playbook: 'budgeted',
    stepUsage: { inputTokens: 200, outputTokens: 100 },
    async drive() {},
  },
  {
    // v3: a plan over STEPS_PER_RUN runs in researchBatch children.
    name: 'batched',
    playbook: 'batched',
    plan: chainOf(120),
    async drive() {},
  },
  {
    // 'batches-share-max-parallel': 101 independent steps make two batches, ready at once. Before
    // 28af961 both started together; since, the first takes all 16 slots and the second waits.
    name: 'batched-wide',
    playbook: 'batched',
    plan: independent(101),
    async drive() {},
  },
  {
    // A batch whose step fails: the batch reports it, and the task fails naming it.
    name: 'batch-step-failed',
    playbook: 'batched',
    plan: independent(101),
    step: failing('s5'),
    async drive() {},
  },
  {
    // 'partial-report-on-cancel': cancelled after s1 and s2 finished, while s3 runs. Before 34afd17
    // the task failed as on any error; since, it publishes their findings as a partial report.
    name: 'cancelled-after-steps',
    playbook: 'open',
    step: (input, hold) => (input.step.id === 's3' ? hold.held : undefined),
    async drive(handle, run) {
      await waitForStatus(
        handle,
        (s) => s.steps.find((x) => x.id === 's3')?.state === 'running',
        's3 running',
      );
      await handle.cancel();
      await handle.result().catch(() => undefined);
      run.hold.release();
    },
  },
  {
    // v11 ('cancel-keeps-batch-steps'): cancelled while batch 1 runs, every step of it done but s20.
    // The batch returns its finished steps and the parent waits for it, so the partial report has
    // them. Before, the batch was cancelled with them and the parent published nothing.
    name: 'batched-cancelled',
    playbook: 'batched',
    plan: independent(120),
    step: (input, hold) => (input.step.id === 's20' ? hold.held : undefined),
    async drive(handle, run) {
      await waitForStatus(handle, (s) => s.steps.some((x) => x.state === 'running'), 'batch 1 started');
      await waitForStatus(
        run.client.workflow.getHandle(`${handle.workflowId}/batch-1`),
        (s) => s.steps.filter((x) => x.state === 'done').length === 99,
        'batch 1 done but s20',
      );
      await handle.cancel();
      await handle.result().catch(() => undefined);
      run.hold.release();
    },
  },
  {
    // Cancelled at the report gate: the partial report is the draft approvers were reading.
    name: 'cancelled-at-report-gate',
    playbook: 'gated',
    async drive(handle) {
      await atGate(handle, 'plan');
      await handle.signal(approve, { by: 'alice' });
      await atGate(handle, 'report');
      await handle.cancel();
    },
  },
  {
    // 'gate-decision-beats-deadline': alice's approval and the plan gate's 3 s deadline (reject)
    // reach the task in one workflow task: the worker is stopped while both happen. Before 63c7347
    // the deadline policy rejected the task anyway; since, the approval wins.
    name: 'deadline-race',
    playbook: 'race-deadline',
    async drive(handle, run) {
      await atGate(handle, 'plan');
      await run.stopWorker();
      await timerFired(handle);
      await handle.signal(approve, { by: 'alice' });
      await run.startWorker();
    },
    race: true,
  },
  {
    // The same race with the decision as an Update, sent while no worker runs (it is delivered with
    // the fired timer when one starts).
    name: 'deadline-race-update',
    playbook: 'race-deadline',
    async drive(handle, run) {
      await atGate(handle, 'plan');
      await run.stopWorker();
      await timerFired(handle);
      const decided = handle.executeUpdate(decide, { args: [{ decision: 'approve', by: 'alice' }] });
      // The server admits the Update without a worker; nothing to observe it by but the Update's
      // own call. A second is ample, and the recorder checks the history afterwards (race).
      await sleep(1000);
      await run.startWorker();
      await decided;
    },
    race: true,
  },
  {
    // A reminder after 1 s, escalation to carol after 2 s; carol approves; the report gate
    // approves itself after its 1 s deadline.
    name: 'escalated-approved',
    playbook: 'short-deadlines',
    async drive(handle) {
      await atGate(handle, 'plan', (s) => s.pendingGate?.stage === 'escalated');
      await handle.executeUpdate(decide, { args: [{ decision: 'approve', by: 'carol' }] });
    },
  },
  {
    // Nobody answers: reminder, escalation, then the escalation's deadline rejects the task.
    name: 'escalated-rejected',
    playbook: 'short-deadlines',
    async drive() {},
  },
  {
    name: 'rejected',
    playbook: 'gated',
    async drive(handle) {
      await atGate(handle, 'plan');
      await handle.signal(reject, { by: 'bob', comment: 'out of scope' });
    },
  },
  {
    // Every reason to refuse a decision, by signal (audited) and by Update (answered, not recorded).
    // A quorum over 1 needs signed decisions: until issue 14 recorded on an unsigned playbook of
    // the same gates; the decisions meant to count, or refused for what they say, are now signed.
    name: 'refusals',
    playbook: 'signed',
    async drive(handle, run) {
      const as = async (request: DecideRequest, key: keyof typeof KEYS) =>
        asSignal(await signed(run, handle, request, key));
      await atGate(handle, 'plan');
      await refusedSignal(handle, 'approve', {}); // malformed
      await refusedSignal(handle, 'approve', { by: 'alice', gate: 'report' }); // not the open gate
      await refusedSignal(handle, 'approve', { by: 'mallory' }); // not an approver
      await refusedSignal(handle, 'requestChanges', { by: 'alice' }); // no comment
      await refusedSignal(handle, 'requestChanges', { by: 'alice', comment: 'x', rerunSteps: ['s1'] });
      await refusedUpdate(handle, { decision: 'approve', by: 'mallory' });
      await refusedUpdate(handle, { decision: 'maybe', by: 'alice' });
      await handle.signal(approve, await as(approval('alice'), 'alice'));
      await refusedSignal(handle, 'approve', await as(approval('alice'), 'alice')); // already approved
      await refusedUpdate(handle, await signed(run, handle, approval('alice'), 'alice'));
      const narrower = { decision: 'requestChanges' as const, by: 'bob', comment: 'narrower' };
      await handle.signal(requestChanges, await as(narrower, 'bob'));
      await atGate(handle, 'plan', (s) => s.revisions.plan === 1);
      const again = { ...narrower, comment: 'again' };
      await refusedSignal(handle, 'requestChanges', await as(again, 'bob')); // revision limit
      await handle.signal(approve, await as(approval('alice'), 'alice'));
      await handle.signal(approve, await as(approval('carol'), 'carol'));
      await atGate(handle, 'report');
      const rerun = { decision: 'requestChanges' as const, by: 'alice', comment: 'x', rerunSteps: ['zz'] };
      await refusedSignal(handle, 'requestChanges', await as(rerun, 'alice'));
      await refusedSignal(handle, 'approve', await as(approval('bob'), 'bob')); // not a report approver
      await handle.signal(approve, await as(approval('alice'), 'alice'));
    },
  },
  {
    // v5 (patched('bounded-decisions')): payloads over MAX_DECISION_PAYLOAD_BYTES are refused before
    // they are parsed, even a decision the schema would accept (a long comment in multi-byte
    // characters), and audited by size and hash; refusals past the cap are summed up in one entry.
    name: 'bounded-decisions',
    playbook: 'gated',
    async drive(handle) {
      await atGate(handle, 'plan');
      await refusedSignal(handle, 'approve', { by: 'm'.repeat(40_000) });
      await refusedSignal(handle, 'reject', { by: 'mallory', [`k${'k'.repeat(20_000)}`]: 1 });
      await refusedUpdate(handle, { decision: 'approve', by: 'mallory', comment: 'é'.repeat(9_000) });
      for (let i = 0; i < 55; i++) await refusedSignal(handle, 'approve', { by: `mallory-${i}` });
      // 18 KB and valid: accepted before v5 (pre-2569c4c), refused from v5 on, the 58th refusal.
      await handle.signal(approve, { by: 'alice', comment: 'é'.repeat(9_000) });
      const seen = await waitForStatus(
        handle,
        (s) => s.pendingGate?.gate !== 'plan' || s.audit.some((e) => e.more?.count === 8),
        'the 18 KB decision',
      );
      if (seen.pendingGate?.gate === 'plan')
        await handle.signal(approve, { by: 'alice', comment: 'é'.repeat(100) });
      await atGate(handle, 'report');
      await handle.signal(approve, { by: 'bob' });
    },
  },
  {
    // The plan is fixed in config: a change request is refused.
    name: 'fixed-refused',
    playbook: 'fixed',
    async drive(handle) {
      await atGate(handle, 'plan');
      await refusedSignal(handle, 'requestChanges', { by: 'alice', comment: 'another plan' });
      await handle.signal(approve, { by: 'alice' });
    },
  },
  {
    name: 'step-failed',
    playbook: 'step-fail',
    step: failing('s2'),
    async drive() {},
  },
  {
    name: 'step-skipped',
    playbook: 'step-skip',
    step: failing('s2'),
    async drive() {},
  },
  {
    name: 'step-retried-failed',
    playbook: 'step-retry-fail',
    step: failing('s2'),
    async drive() {},
  },
  {
    // s1 fails once and succeeds when run again; s2 fails both times and is skipped.
    name: 'step-retried-skipped',
    playbook: 'resilient',
    step: (() => {
      let s1Runs = 0;
      return (input: StepInput) => {
        if (input.step.id === 's1' && ++s1Runs === 1) stepFails('s1');
        failing('s2')(input);
      };
    })(),
    async drive() {},
  },
  {
    // The decomposed step's child fails (its step s2 does), so the step fails and the task with it.
    name: 'subtask-failed',
    playbook: 'open',
    plan: { ...DEFAULT_PLAN, steps: DEFAULT_PLAN.steps.map((s, i) => ({ ...s, decompose: i === 0 })) },
    step: (input) => {
      if (input.overallQuestion === 'Gather evidence A.' && input.step.id === 's2') stepFails('s2');
    },
    async drive() {},
  },
  {
    // The lead's first plan is invalid and it is asked again; models' refused tool calls are audited.
    name: 'plan-reasked',
    playbook: 'open',
    planAnswer: (input, call) =>
      call === 1
        ? {
            valid: false,
            problems: ['step s9 depends on an unknown step'],
            usage: USAGE_10_5,
            model: input.lead.model,
            refusedToolCalls: [{ tool: 'shell', reason: 'no such tool was offered' }],
          }
        : { valid: true, plan: DEFAULT_PLAN, usage: USAGE_10_5, model: input.lead.model },
    activities: (fakes) => ({
      async runSpecialist(input) {
        const result = await fakes.runSpecialist(input);
        return input.step.id === 's1'
          ? { ...result, refusedToolCalls: [{ tool: 'fetch', reason: 'not offered to this agent' }] }
          : result;
      },
    }),
    async drive() {},
  },
  {
    // No valid plan in the playbook's two attempts: the task fails.
    name: 'plan-invalid',
    playbook: 'open',
    planAnswer: (input) => ({
      valid: false,
      problems: ['no steps'],
      usage: USAGE_10_5,
      model: input.lead.model,
    }),
    async drive() {},
  },
  {
    // v10 ('synthesis-fits-context'): 120 steps are too many for one synthesis call: the lead
    // summarizes three groups of 40, then writes the report from the summaries.
    name: 'synthesized-in-parts',
    playbook: 'batched',
    plan: independent(120),
    async drive() {},
  },
  {
    // v10 ('synthesis-fits-context'): the three steps do not fit the lead's context together
    // (ContextTooLong, as the API's 400 is classified): split in two groups, summarized, then the
    // report from the summaries. Before v10 the task failed.
    name: 'synthesis-split',
    playbook: 'open',
    activities: (fakes) => ({
      synthesizeReport(input) {
        if (input.steps.length > 1) {
          throw ApplicationFailure.create({
            message: 'prompt is too long: 250000 tokens > 200000 maximum',
            type: FailureTypes.ContextTooLong,
            nonRetryable: true,
          });
        }
        return fakes.synthesizeReport(input);
      },
    }),
    async drive() {},
  },
  {
    name: 'synthesis-failed',
    playbook: 'open',
    activities: () => ({
      synthesizeReport() {
        throw ApplicationFailure.nonRetryable('the lead refused to write the report', 'Refused');
      },
    }),
    async drive() {},
  },
  {
    // v11 ('partial-report-on-failure'): publishing the final report fails; the synthesized report
    // is published as partial, saying why, and the task fails. Before, nothing was published.
    name: 'publish-failed',
    playbook: 'open',
    activities: (fakes) => ({
      publishReport(input) {
        if (input.kind === 'partial') return fakes.publishReport(input);
        throw ApplicationFailure.nonRetryable('the report store refused the write', 'Refused');
      },
    }),
    async drive() {},
  },
  {
    // v6 (`signed-decisions`): every decision must be signed. Refused by signal (audited): an
    // unsigned one, alice's name with mallory's key, bob's approval from the gate's first opening;
    // by Update (nothing recorded): the same old approval. Accepted: signed ones, by both routes.
    name: 'signed-decisions',
    playbook: 'signed',
    async drive(handle, run) {
      await atGate(handle, 'plan');
      await refusedSignal(handle, 'approve', { by: 'alice' });
      await refusedSignal(
        handle,
        'approve',
        asSignal(await signed(run, handle, approval('alice'), 'mallory')),
      );
      const bobEarly = await signed(run, handle, approval('bob'), 'bob');
      await handle.signal(approve, asSignal(await signed(run, handle, approval('alice'), 'alice')));
      const change = { decision: 'requestChanges' as const, by: 'bob', comment: 'narrower' };
      await handle.executeUpdate(decide, { args: [await signed(run, handle, change, 'bob')] });
      await atGate(handle, 'plan', (s) => s.revisions.plan === 1);
      await refusedSignal(handle, 'approve', asSignal(bobEarly));
      await refusedUpdate(handle, bobEarly);
      await handle.executeUpdate(decide, { args: [await signed(run, handle, approval('alice'), 'alice')] });
      await handle.signal(approve, asSignal(await signed(run, handle, approval('bob'), 'bob')));
      await atGate(handle, 'report');
      await handle.executeUpdate(decide, { args: [await signed(run, handle, approval('alice'), 'alice')] });
    },
  },
  {
    // v7 (`passkey-decisions`): alice decides with a passkey, as in the inbox. By signal: one with
    // a tampered signature (refused, audited), then hers (accepted); by Update at the report gate.
    // Workflow code older than passkeys refuses both as malformed: alice then signs with her key.
    name: 'passkey-decisions',
    playbook: 'signed',
    async drive(handle, run) {
      const withPasskey = (request: DecideRequest) =>
        passkeySignedFor(run.client, handle.workflowId, request, ALICE_PASSKEY);
      await atGate(handle, 'plan');
      const good = await withPasskey(approval('alice'));
      const value = Buffer.from(good.signature.value, 'base64url');
      value[8]! ^= 0x01;
      const tampered = { ...good, signature: { ...good.signature, value: value.toString('base64url') } };
      await refusedSignal(handle, 'approve', asSignal(tampered));
      await handle.signal(approve, asSignal(good));
      await decisionsAudited(handle, 2);
      if (!(await approved(handle, 'alice')))
        await handle.signal(approve, asSignal(await signed(run, handle, approval('alice'), 'alice')));
      await handle.signal(approve, asSignal(await signed(run, handle, approval('bob'), 'bob')));
      await atGate(handle, 'report');
      const accepted = await handle
        .executeUpdate(decide, { args: [await withPasskey(approval('alice'))] })
        .then(
          () => true,
          () => false,
        );
      if (!accepted)
        await handle.executeUpdate(decide, { args: [await signed(run, handle, approval('alice'), 'alice')] });
    },
  },
  {
    // v14 (`mcp-tool-loop`): two librarian steps run as tool loops (a search, then a read that
    // needs approval); the first read to reach the tool gate is approved, the second rejected (its
    // model is told so); the analyst's step runs as before.
    name: 'tool-loop',
    playbook: TOOL_LOOP_PLAYBOOK,
    plan: {
      rationale: 'Two searches of the documents, then an analysis.',
      steps: [
        { id: 's1', agent: 'librarian', question: 'Search A.', dependsOn: [], decompose: false },
        { id: 's2', agent: 'librarian', question: 'Search B.', dependsOn: [], decompose: false },
        {
          id: 's3',
          agent: 'analyst',
          question: 'Weigh A against B.',
          dependsOn: ['s1', 's2'],
          decompose: false,
        },
      ],
    },
    activities: toolLoopFakes,
    async drive(handle) {
      await atGate(handle, 'tool');
      await handle.signal(approve, { by: 'alice', gate: 'tool' });
      await atGate(
        handle,
        'tool',
        (s) => s.audit.filter((e) => e.gate === 'tool' && e.event === 'gate-opened').length === 2,
      );
      await handle.executeUpdate(decide, { args: [{ decision: 'reject', by: 'bob', gate: 'tool' }] });
    },
  },
  {
    // v16 (`citation-pass`): before the report gate the draft's citations are checked against the
    // steps' retrieval records; a change request re-synthesizes, and they are checked again.
    name: 'citations-checked',
    playbook: 'gated',
    activities: citationFakes,
    async drive(handle) {
      await atGate(handle, 'plan');
      await handle.signal(approve, { by: 'alice' });
      await atGate(handle, 'report');
      await handle.signal(requestChanges, { by: 'bob', comment: 'tighter' });
      await atGate(handle, 'report', (s) => s.revisions.report === 1);
      await handle.executeUpdate(decide, { args: [{ decision: 'approve', by: 'bob' }] });
    },
  },
  {
    // v13: refused decisions grow the history at the plan gate until the task continues as a new
    // run; approved there, it reaches the report gate with a long history and continues again.
    name: 'continued-at-gates',
    playbook: 'gated',
    suggestContinueAsNewAfter: 40,
    async drive(handle) {
      const latestRun = async () => (await handle.describe()).runId;
      const inNewRun = async (gate: 'plan' | 'report', than: string) => {
        await pollUntil(latestRun, (id) => id !== than, `a new run at the ${gate} gate`, 60_000);
        await atGate(handle, gate, (s) => s.phase === `awaiting-${gate}-approval`);
        return latestRun();
      };
      await atGate(handle, 'plan');
      const first = await latestRun();
      while ((await latestRun()) === first) await refusedSignal(handle, 'approve', { by: 'mallory' });
      const second = await inNewRun('plan', first);
      await handle.signal(approve, { by: 'alice' });
      await inNewRun('report', second);
      await handle.executeUpdate(decide, { args: [{ decision: 'approve', by: 'bob' }] });
    },
  },
  {
    // v15 (`research-rounds`): round 1's findings leave a gap, so the lead asks for a second round,
    // which bob approves at the plan gate (alice approved the plan); reviewing it, the lead is done.
    name: 'rounds-approved',
    playbook: 'rounds',
    activities: () => ({ reviewRound: reviews(GAP_DELTA, DONE) }),
    async drive(handle) {
      await atGate(handle, 'plan');
      await handle.signal(approve, { by: 'alice' });
      await atGate(handle, 'plan', roundPending);
      await handle.executeUpdate(decide, { args: [{ decision: 'approve', by: 'bob' }] });
      await atGate(handle, 'report');
      await handle.signal(approve, { by: 'alice' });
    },
  },
  {
    // v15: the lead's first delta names an undeclared agent (the workflow refuses it and asks
    // again), alice asks for changes to the next at the plan gate, and bob rejects the revised one:
    // the rounds end and the report is written from the plan's steps.
    name: 'rounds-revised-rejected',
    playbook: 'rounds',
    activities: () => ({ reviewRound: reviews(INTRUDER_DELTA, GAP_DELTA, GAP_DELTA) }),
    async drive(handle) {
      await atGate(handle, 'plan');
      await handle.signal(approve, { by: 'alice' });
      await atGate(handle, 'plan', roundPending);
      await handle.signal(requestChanges, { by: 'alice', comment: 'narrower' });
      await atGate(handle, 'plan', (s) => roundPending(s) && s.revisions.plan === 1);
      await handle.signal(reject, { by: 'bob', comment: 'enough' });
      await atGate(handle, 'report');
      await handle.signal(approve, { by: 'alice' });
    },
  },
  {
    // v15: a delta that needs no approval (rounds.approval: none) runs at once; then the rounds
    // allowed are spent.
    name: 'rounds-unapproved',
    playbook: 'rounds-budgeted',
    activities: () => ({ reviewRound: reviews(GAP_DELTA) }),
    async drive(handle) {
      await atGate(handle, 'report');
      await handle.signal(approve, { by: 'alice' });
    },
  },
  {
    // v15: the review fails (its activity fails for good): the rounds end, the report still comes.
    name: 'rounds-review-failed',
    playbook: 'rounds',
    activities: () => ({
      reviewRound: () =>
        Promise.reject(ApplicationFailure.nonRetryable('the lead is unreachable', 'Unreachable')),
    }),
    async drive(handle) {
      await atGate(handle, 'plan');
      await handle.signal(approve, { by: 'alice' });
      await atGate(handle, 'report');
      await handle.signal(approve, { by: 'alice' });
    },
  },
  {
    // Input the workflow refuses before loading config.
    name: 'invalid-input',
    playbook: 'open',
    input: { question: '   ', playbook: 'open' },
    async drive() {},
  },
];

const USAGE = `usage: npm run histories:record -- <version> [--workflows-from <commit>] [--scenarios <a,b>]

Runs the scenarios of test/record-histories.ts on a fresh dev server and writes each workflow's
event history (children included) to test/histories/<version>/, for the replay tests. <version>
is a new folder: v<N>[.<M>], or pre-<commit> for histories of an older commit's code.

  --workflows-from <commit>  record with that commit's workflows/ (exported from git and bundled)
  --scenarios <a,b>          only these scenarios (default: all), of:
${SCENARIOS.map((s) => `                               ${s.name}`).join('\n')}`;

const main = command(
  {
    name: 'histories:record',
    usage: USAGE,
    options: { 'workflows-from': { type: 'string' }, scenarios: { type: 'string' } },
    allowPositionals: true,
  },
  async ({ positionals, values }) => {
    const [version, ...rest] = positionals;
    if (!version || rest.length || !/^(v\d+(\.\d+)?|pre-[0-9a-f]{7,40})$/.test(version)) {
      throw new UsageError(
        `expected one version such as v4 or pre-28af961, got ${JSON.stringify(positionals)}`,
      );
    }
    const names = values.scenarios?.split(',').map((s) => s.trim());
    const unknown = names?.filter((n) => !SCENARIOS.some((s) => s.name === n)) ?? [];
    if (unknown.length) throw new UsageError(`unknown scenario(s): ${unknown.join(', ')}`);
    const scenarios = names ? SCENARIOS.filter((s) => names.includes(s.name)) : SCENARIOS;
    const dir = path.join(__dirname, 'histories', version);
    const existing = await fs.readdir(dir).catch(() => []);
    if (existing.length)
      throw new UsageError(`test/histories/${version}/ exists already; histories are append-only`);
    await record(version, scenarios, values['workflows-from']);
    return 0;
  },
);

/**
 * The workflow code of `commit`: its tree exported from git into a temporary folder, with this
 * checkout's node_modules (the SDK is the same across these versions), bundled as a worker would.
 */
async function workflowsOf(commit: string): Promise<Pick<WorkerOptions, 'workflowBundle'>> {
  const { sha, dir: tree } = await exportCommit(commit, { checkDependencies: false });
  try {
    console.log(`workflows of ${sha}`);
    const { code } = await bundleWorkflowCode({
      workflowsPath: path.join(tree, 'workflows', 'index.ts'),
      logger: new DefaultLogger('WARN'),
    });
    return { workflowBundle: { code } };
  } finally {
    await fs.rm(tree, { recursive: true, force: true });
  }
}

/**
 * The fixture config with the playbooks only these scenarios use (test/fixtures/history-playbooks:
 * deadlines in seconds, each step-failure policy, signed decisions), in a temporary folder, alice,
 * bob and carol listing the keys made for this recording, alice her passkey too (the histories'
 * snapshots hold the public halves), and the tool loop's agent and playbook (v14).
 */
async function recorderConfig(): Promise<string> {
  const dir = await signedConfig(
    { alice: KEYS.alice, bob: KEYS.bob, carol: KEYS.carol },
    { alice: [ALICE_PASSKEY.line] },
  );
  await withToolLoop(dir);
  return dir;
}

async function record(version: string, scenarios: Scenario[], workflowsFrom?: string): Promise<void> {
  // Scenarios fail steps and tasks on purpose: the worker's warnings about them are expected.
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const dir = path.join(__dirname, 'histories', version);
  const workflows = workflowsFrom
    ? await workflowsOf(workflowsFrom)
    : { workflowsPath: require.resolve('../workflows') };
  await fs.mkdir(dir, { recursive: true });
  const configDir = await recorderConfig();
  try {
    // One server per setting of the continue-as-new suggestion (most scenarios: the default).
    for (const after of new Set(scenarios.map((s) => s.suggestContinueAsNewAfter))) {
      const server = await startDevServer({
        dynamicConfig: after === undefined ? {} : { 'limit.historyCount.suggestContinueAsNew': after },
      });
      try {
        await ensureSearchAttributes(server.env.connection, server.namespace);
        const client = server.env.client;
        for (const scenario of scenarios.filter((s) => s.suggestContinueAsNewAfter === after)) {
          const workflowId = `${version}-${scenario.name}`;
          await runScenario(server.env.nativeConnection, client, configDir, workflows, scenario, workflowId);
          await writeHistories(client, dir, workflowId);
        }
      } finally {
        await server.stop();
      }
    }
  } finally {
    await fs.rm(configDir, { recursive: true, force: true });
  }
}

async function runScenario(
  connection: NativeConnection,
  client: Client,
  configDir: string,
  workflows: Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'>,
  scenario: Scenario,
  workflowId: string,
): Promise<void> {
  const { stepUsage, planAnswer, step } = scenario;
  const hold = new Hold();
  const options = await tempActivityOptions(configDir);
  const { activities: fakes } = fakeModelActivities(options, {
    plan: (input, call) =>
      planAnswer?.(input, call) ?? {
        valid: true,
        plan: input.limits.depth === 0 ? (scenario.plan ?? DEFAULT_PLAN) : DEFAULT_PLAN,
        usage: USAGE_10_5,
        model: input.lead.model,
      },
    ...(stepUsage ? { stepUsage: () => stepUsage } : {}),
    ...(step ? { step: (input) => step(input, hold) } : {}),
  });
  const activities = { ...fakes, ...scenario.activities?.(fakes, options) };
  const taskQueue = `record-${scenario.name}`;
  let worker: Worker | undefined;
  let running: Promise<void> = Promise.resolve();
  const startWorker = async (): Promise<void> => {
    worker = await Worker.create({ connection, taskQueue, activities, ...workflows });
    running = worker.run();
  };
  const stopWorker = async (): Promise<void> => {
    worker?.shutdown();
    await running;
    worker = undefined;
  };
  await startWorker();
  try {
    const handle = await client.workflow.start('researchTask', {
      taskQueue,
      workflowId,
      args: [
        scenario.input ?? { question: `Recorded scenario ${scenario.name}`, playbook: scenario.playbook },
      ],
    });
    await scenario.drive(handle, { hold, client, stopWorker, startWorker });
    const outcome = await handle.result().then(
      (r: { outcome: string }) => r.outcome,
      (err: unknown) => (err instanceof WorkflowFailedError ? `failed: ${err.cause?.message}` : String(err)),
    );
    console.log(`${workflowId}: ${outcome}`);
    const history = await handle.fetchHistory();
    if (scenario.race && !decisionWithDeadline(history)) {
      const events = (history.events ?? [])
        .map((e) => `${String(e.eventId)} ${String(e.eventType)}`)
        .join('\n');
      throw new Error(
        `${workflowId}: the decision and the deadline reached the task in different workflow tasks:\n${events}`,
      );
    }
  } finally {
    hold.release();
    await stopWorker();
  }
}

/** Every run of a workflow, oldest first: the latest, and the runs it continued from. */
async function runsOf(client: Client, workflowId: string): Promise<History[]> {
  const runs: History[] = [];
  for (let runId: string | undefined; ;) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    runs.unshift(history);
    runId =
      history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId ?? undefined;
    if (!runId) return runs;
  }
}

/**
 * Writes the task's history and every child's it started (decomposed steps, batches); a task that
 * continued as new runs has one file per run, `<id>@<n>.json` from the first.
 */
async function writeHistories(client: Client, dir: string, workflowId: string): Promise<void> {
  for (const ids = [workflowId]; ids.length > 0;) {
    const id = ids.shift()!;
    const runs = await runsOf(client, id);
    for (const [n, history] of runs.entries()) {
      for (const e of history.events ?? []) {
        const child = e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId;
        if (child) ids.push(child);
      }
      // The file name is the workflow id (encoded): replay needs it, as child ids derive from it.
      const name = encodeURIComponent(id) + (runs.length > 1 ? `@${n + 1}` : '');
      const file = path.join(dir, `${name}.json`);
      // Proto JSON, the form `temporal workflow show --output json` writes and replay reads.
      await fs.writeFile(file, `${historyToJSON(history)}\n`);
      console.log(`recorded ${path.relative(ROOT, file)} (${history.events?.length ?? 0} events)`);
    }
  }
}

if (require.main === module) runMain(main);
