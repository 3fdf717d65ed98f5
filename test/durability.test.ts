/**
 * Durability with real processes: Baton loses no work and repeats none when a worker process is
 * SIGKILLed, when the Temporal server restarts, or when one of two workers dies.
 *
 * Everything is real except the model: worker processes run `tsx workers/main.ts` as an operator
 * would, against a real Temporal dev server, with the real config and the real Anthropic SDK talking
 * to the stand-in model. The stand-in runs in this process, so every model call can be counted
 * (`stats().byTool`) and attributed to the step, plan or report it was for (the `respond` hook only
 * records, and lets the default reply answer).
 *
 * "No work repeated" is checked against a reference run of the same question with no failure. The
 * stand-in is deterministic, so the same question gives the same artifacts byte for byte, and only a
 * call in flight at an interruption may happen again. A call counts as in flight when the status
 * query just before the interruption shows its step running (or its task planning or synthesizing),
 * or when the stand-in received it between that query and the interruption (a step that started in
 * that instant). A step that was `done` before an interruption is never called again and keeps its
 * `result.id` (artifact hash).
 *
 * One deliberate change to the config: the agents' heartbeat timeout is lowered from the shipped 10s
 * to {@link HEARTBEAT} in a temporary copy of `config/` (bench/recovery.ts's configWithHeartbeat). The
 * heartbeat timeout is how Temporal notices that a SIGKILLed worker's model call is dead (nothing else
 * tells it), so each kill with a call in flight waits that long before the retry; `npm run bench`
 * measures it as shipped. Everything else is `config/` as checked in.
 *
 * Set BATON_DURABILITY_TIMELINE=1 to print each test's timeline even when it passes.
 */
import { Client, Connection, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, startDevServer, type DevServer } from '../local/temporal';
import { startStandIn, type StandIn, type StandInRequest } from '../standin/server';
import { researchTask } from '../workflows';
import {
  approve,
  SEARCH_ATTRIBUTES,
  status as statusQuery,
  type Gate,
  type ResearchTaskResult,
  type StepStatus,
  type TaskStatus,
} from '../contract/messages';
import { readUntil, uniqueId } from './helpers';
import { Processes, type WorkerEnv, type WorkerProcess } from '../bench/processes';
import { configWithHeartbeat } from '../bench/recovery';
import { PROJECT_ROOT } from '../activities/options';

const QUESTION = 'How do solid-state batteries compare with lithium-ion for EVs?';
/** Model latency of the interrupted runs: long enough for calls to be observably in flight. */
const LATENCY_MS = 1500;
/** Heartbeat timeout of every agent in the test's copy of the config (see the file comment). */
const HEARTBEAT = '5s';
const APPROVER = 'durability@example.com';

type Playbook = 'research-brief' | 'fact-sheet';
type Tool = 'submit_plan' | 'submit_findings' | 'submit_report';
const TOOLS: Tool[] = ['submit_plan', 'submit_findings', 'submit_report'];
const STARTED = temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;

// ---------------------------------------------------------------------------------------------------------
// Model calls, attributed

interface ModelCall {
  tool: string;
  /** The question the call is about: the step's for findings, the task's for a plan or a report. */
  question: string;
  at: number;
}

const unescapeXml = (text: string): string =>
  text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** Every model call the stand-in received, in order, with what it was about. */
class ModelCalls {
  private readonly log: ModelCall[] = [];

  /** The stand-in's `respond` hook: records the call and lets the default reply answer it. */
  readonly respond = (req: StandInRequest): undefined => {
    // The first <question> of each Baton prompt is the one asked (quoted context cannot hold a tag).
    const question = /<question>([\s\S]*?)<\/question>/.exec(req.userText)?.[1] ?? '';
    this.log.push({ tool: req.toolName ?? '(none)', question: unescapeXml(question).trim(), at: Date.now() });
    return undefined;
  };

  get length(): number {
    return this.log.length;
  }

  slice(from: number, to?: number): ModelCall[] {
    return this.log.slice(from, to);
  }

  /** Calls for `tool` about `question`, from index `from` on. */
  count(tool: string, question: string, from = 0): number {
    return this.log.slice(from).filter((c) => c.tool === tool && c.question === question).length;
  }

  last(): ModelCall | undefined {
    return this.log.at(-1);
  }
}

const keyOf = (tool: string, question: string): string => `${tool} | ${question}`;

// ---------------------------------------------------------------------------------------------------------
// Per-test rig: stand-in, temp folders, task queue, worker processes, own dev servers

interface Rig {
  name: string;
  root: string;
  taskQueue: string;
  standIn: StandIn;
  calls: ModelCalls;
  procs: Processes;
  servers: DevServer[];
  timeline: string[];
  mark(what: string): void;
  workerEnv(address: string): WorkerEnv;
}

let configDir: string | undefined;
let client: Client;
let connection: Connection | undefined;
const suiteRigs: Rig[] = [];
const testRigs: Rig[] = [];
let testPassed = false;

async function setUp(name: string, latencyMs: number, scope: Rig[] = testRigs): Promise<Rig> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), `baton-durability-${name}-`));
  const calls = new ModelCalls();
  // No prompt cache: a call cut off by a crash may already have written the cache, so the repeated
  // call would read it and the usage totals would differ from the reference run's; with the cache off
  // they stay comparable figure for figure (caching itself is tested in caching.test.ts).
  const standIn = await startStandIn({ latencyMs, respond: calls.respond, promptCache: false });
  const t0 = Date.now();
  const timeline: string[] = [];
  const rig: Rig = {
    name,
    root,
    taskQueue: uniqueId(`durability-${name}`),
    standIn,
    calls,
    procs: new Processes(),
    servers: [],
    timeline,
    mark: (what) => timeline.push(`+${((Date.now() - t0) / 1000).toFixed(1)}s ${what}`),
    workerEnv: (address) => ({
      TEMPORAL_ADDRESS: address,
      BATON_TASK_QUEUE: rig.taskQueue,
      ANTHROPIC_BASE_URL: standIn.url,
      BATON_CONFIG_DIR: configDir!,
      BATON_ARTIFACT_DIR: path.join(root, 'artifacts'),
      BATON_REPORT_DIR: path.join(root, 'reports'),
    }),
  };
  scope.push(rig);
  return rig;
}

/** Kills every process, closes the stand-in, stops own servers; prints what happened on failure. */
async function tearDown(rigs: Rig[], passed: boolean): Promise<void> {
  const errors: unknown[] = [];
  const attempt = (step: () => Promise<void>): Promise<void> =>
    step().catch((err: unknown) => void errors.push(err));
  for (const rig of rigs.splice(0)) {
    await attempt(() => rig.procs.killAll());
    await attempt(() => rig.standIn.close());
    for (const server of rig.servers) await attempt(() => server.stop());
    const summary = `durability rig "${rig.name}" (task queue ${rig.taskQueue}, files in ${rig.root})\ntimeline:\n  ${rig.timeline.join('\n  ')}\nmodel calls: ${JSON.stringify(rig.standIn.stats().byTool)}`;
    if (!passed || errors.length) {
      console.error(`${summary}\nworker output:\n${rig.procs.output()}`);
    } else {
      if (process.env.BATON_DURABILITY_TIMELINE) console.log(summary);
      await fs.rm(rig.root, { recursive: true, force: true });
    }
  }
  if (errors.length) throw errors[0];
}

/** A test whose rig's timeline and worker output are printed if it fails (thrown error or timeout). */
function durabilityTest(name: string, timeoutMs: number, body: () => Promise<void>): void {
  test(
    name,
    async () => {
      await body();
      testPassed = true;
    },
    timeoutMs,
  );
}

// ---------------------------------------------------------------------------------------------------------
// Observing a task

interface Snapshot {
  parent: TaskStatus;
  /** The status of the child workflow of a decomposed step in flight, if one is. */
  child?: TaskStatus;
  /** How many model calls the stand-in had received when the status was read (none arrived meanwhile). */
  callsBefore: number;
}

/**
 * The status query, bounded. Right after a worker is killed, a query is first offered to the dead
 * worker's sticky queue; the server falls back to the normal queue after the sticky
 * schedule-to-start timeout (10s by default), so the bound is above that.
 */
function queryStatus(c: Client, workflowId: string): Promise<TaskStatus> {
  return c.withDeadline(Date.now() + 15_000, () => c.workflow.getHandle(workflowId).query(statusQuery));
}

/** The task's status and, while a decomposed step runs, its child's (which must be readable by then). */
async function readSnapshot(c: Client, workflowId: string, calls: ModelCalls): Promise<Snapshot> {
  const callsBefore = calls.length;
  const parent = await queryStatus(c, workflowId);
  const decomposed = parent.steps.find((s) => s.childWorkflowId && s.state === 'running');
  let child: TaskStatus | undefined;
  if (decomposed) {
    try {
      child = await queryStatus(c, decomposed.childWorkflowId!);
    } catch (err) {
      // A child not started yet has called no model; any other error: read again.
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }
  // A call that arrived while the status was read may or may not be in it: read again. (A query can
  // take seconds, e.g. while the server gives up on a killed worker's sticky queue.)
  if (calls.length !== callsBefore) throw new Error('a model call arrived while the status was read');
  return { parent, child, callsBefore };
}

const waitForSnapshot = (
  rig: Rig,
  c: Client,
  workflowId: string,
  predicate: (s: Snapshot) => boolean,
  what: string,
): Promise<Snapshot> => readUntil(() => readSnapshot(c, workflowId, rig.calls), predicate, what);

const isModelStep = (s: StepStatus): boolean => !s.childWorkflowId;
const running = (steps: StepStatus[] = []): StepStatus[] =>
  steps.filter((s) => s.state === 'running' && isModelStep(s));
const done = (steps: StepStatus[] = []): StepStatus[] => steps.filter((s) => s.state === 'done');
/** Running steps whose model call the stand-in has received: work observably in flight. */
const calling = (steps: StepStatus[] | undefined, calls: ModelCalls): StepStatus[] =>
  running(steps).filter((s) => calls.count('submit_findings', s.question) > 0);

/** A worker killed or a server stopped, with what was in flight at that moment. */
interface Interruption {
  label: string;
  before: Snapshot;
  /** Keys ({@link keyOf}) of the model calls that may legitimately happen again. */
  inFlight: Set<string>;
}

/** Records an interruption: `calledUntil` is the stand-in's call count once nothing old can still arrive. */
function interruption(label: string, before: Snapshot, calls: ModelCalls, calledUntil: number): Interruption {
  const inFlight = new Set<string>();
  for (const task of [before.parent, before.child]) {
    if (!task) continue;
    if (task.phase === 'planning') inFlight.add(keyOf('submit_plan', task.question));
    if (task.phase === 'synthesizing') inFlight.add(keyOf('submit_report', task.question));
    for (const step of running(task.steps)) inFlight.add(keyOf('submit_findings', step.question));
  }
  // Calls that reached the stand-in after the status was read (a step started in that instant).
  for (const call of calls.slice(before.callsBefore, calledUntil))
    inFlight.add(keyOf(call.tool, call.question));
  return { label, before, inFlight };
}

const approveGate = (handle: WorkflowHandle, gate: Gate): Promise<void> =>
  handle.signal(approve, { by: APPROVER, gate });

/** What a completed result looks like, independent of workflow ids and times. */
function shapeOf(result: ResearchTaskResult): unknown {
  return {
    outcome: result.outcome,
    keys: Object.keys(result).sort(),
    provenanceKeys: Object.keys(result.provenance).sort(),
    agents: result.provenance.agents.map((a) => a.id).sort(),
    approvals: result.provenance.approvals.map((a) => `${a.gate}:${a.by}`),
    // Only completed calls count, so a repeated call would not change the totals either way.
    usage: result.provenance.usage,
    report: result.report?.id,
    contentHash: result.provenance.contentHash,
  };
}

// ---------------------------------------------------------------------------------------------------------
// The reference: the same tasks with no failure, run once in the background while the tests start

interface Outcome {
  result: ResearchTaskResult;
  steps: StepStatus[];
  /** Steps of the decomposed step's child workflow, if any. */
  childSteps: StepStatus[];
}

interface Reference extends Outcome {
  byTool: Record<string, number>;
  /** Model calls by {@link keyOf}. */
  calls: Record<string, number>;
}

/** Status of a finished task and of its child, read while a worker is still up. */
async function outcomeOf(c: Client, handle: WorkflowHandle, result: ResearchTaskResult): Promise<Outcome> {
  const final = await queryStatus(c, handle.workflowId);
  const childId = final.steps.find((s) => s.childWorkflowId)?.childWorkflowId;
  const child = childId ? await queryStatus(c, childId) : undefined;
  return { result, steps: final.steps, childSteps: child?.steps ?? [] };
}

async function runReference(rig: Rig, playbook: Playbook): Promise<Reference> {
  rig.standIn.resetStats();
  const from = rig.calls.length;
  const handle = await client.workflow.start(researchTask, {
    taskQueue: rig.taskQueue,
    workflowId: uniqueId(`durability-reference-${playbook}`),
    args: [{ question: QUESTION, playbook }],
  });
  const gates: Gate[] = playbook === 'research-brief' ? ['plan', 'report'] : ['report'];
  for (const gate of gates) {
    await readUntil(
      () => queryStatus(client, handle.workflowId),
      (s) => s.pendingGate?.gate === gate,
      `the reference's ${gate} gate`,
    );
    await approveGate(handle, gate);
  }
  const result = await handle.result();
  rig.mark(`reference ${playbook} completed`);
  const calls: Record<string, number> = {};
  for (const call of rig.calls.slice(from)) {
    const key = keyOf(call.tool, call.question);
    calls[key] = (calls[key] ?? 0) + 1;
  }
  return { ...(await outcomeOf(client, handle, result)), byTool: rig.standIn.stats().byTool, calls };
}

let references: Promise<Record<Playbook, Reference>> | undefined;

async function runReferences(address: string): Promise<Record<Playbook, Reference>> {
  const rig = await setUp('reference', 0, suiteRigs);
  await rig.procs.startWorker('reference-worker', rig.workerEnv(address));
  rig.mark('reference worker ready');
  const brief = await runReference(rig, 'research-brief');
  const factSheet = await runReference(rig, 'fact-sheet');
  return { 'research-brief': brief, 'fact-sheet': factSheet };
}

async function reference(playbook: Playbook): Promise<Reference> {
  if (!references) throw new Error('the reference runs were not started');
  return (await references)[playbook];
}

const byTool = (rig: Rig, tool: Tool): number => rig.standIn.stats().byTool[tool] ?? 0;

// ---------------------------------------------------------------------------------------------------------
// The checks every test makes at the end

const resultIds = (steps: StepStatus[]): Record<string, string | undefined> =>
  Object.fromEntries(steps.map((s) => [s.id, s.result?.id]));

/**
 * No work lost: the task completed with the reference's result (same report and step artifacts, byte
 * for byte). No work repeated: no step done before an interruption was called again or changed, no
 * call happened more than once plus once per interruption it was in flight at, and per tool the
 * calls are the reference's plus those in flight.
 */
function expectNothingLostOrRepeated(
  rig: Rig,
  outcome: Outcome,
  ref: Reference,
  interruptions: Interruption[],
): void {
  expect(shapeOf(outcome.result)).toEqual(shapeOf(ref.result));
  expect(resultIds(outcome.steps)).toEqual(resultIds(ref.steps));
  expect(resultIds(outcome.childSteps)).toEqual(resultIds(ref.childSteps));
  expect([...outcome.steps, ...outcome.childSteps].filter((s) => s.state !== 'done')).toEqual([]);

  const finalIds: Record<string, string | undefined> = {
    ...resultIds(outcome.steps),
    ...Object.fromEntries(outcome.childSteps.map((s) => [`child:${s.id}`, s.result?.id])),
  };
  const changedOrCalledAgain: unknown[] = [];
  for (const i of interruptions) {
    const doneBefore = [
      ...done(i.before.parent.steps).map((step) => ({ step, id: step.id })),
      ...done(i.before.child?.steps).map((step) => ({ step, id: `child:${step.id}` })),
    ];
    for (const { step, id } of doneBefore) {
      const callsAfter = isModelStep(step)
        ? rig.calls.count('submit_findings', step.question, i.before.callsBefore)
        : 0;
      if (finalIds[id] !== step.result?.id || callsAfter > 0) {
        changedOrCalledAgain.push({
          at: i.label,
          step: id,
          was: step.result?.id,
          is: finalIds[id],
          callsAfter,
        });
      }
    }
  }
  expect(changedOrCalledAgain).toEqual([]);

  // Per call (the reference made each exactly once): at least once, and again only when in flight.
  const wrongCount: unknown[] = [];
  for (const [key, refCalls] of Object.entries(ref.calls)) {
    const [tool, question] = key.split(' | ') as [string, string];
    const calls = rig.calls.count(tool, question);
    const allowed = refCalls + interruptions.filter((i) => i.inFlight.has(key)).length;
    if (refCalls !== 1 || calls < 1 || calls > allowed) wrongCount.push({ key, calls, allowed, refCalls });
  }
  expect(wrongCount).toEqual([]);
  // Nothing called that the task did not need.
  expect(rig.calls.slice(0).filter((c) => !(keyOf(c.tool, c.question) in ref.calls))).toEqual([]);

  const overBudget = TOOLS.map((tool) => ({
    tool,
    calls: byTool(rig, tool),
    atMost:
      (ref.byTool[tool] ?? 0) +
      interruptions.reduce((n, i) => n + [...i.inFlight].filter((k) => k.startsWith(`${tool} |`)).length, 0),
  })).filter((t) => t.calls > t.atMost);
  expect(overBudget).toEqual([]);
  rig.mark(
    `checked: ${interruptions.map((i) => `${i.label}: ${i.inFlight.size} in flight`).join('; ')}; calls ${JSON.stringify(rig.standIn.stats().byTool)}, reference ${JSON.stringify(ref.byTool)}`,
  );
}

// ---------------------------------------------------------------------------------------------------------

beforeAll(async () => {
  const address = process.env.BATON_TEST_TEMPORAL_ADDRESS;
  if (!address) throw new Error('BATON_TEST_TEMPORAL_ADDRESS is unset: run with jest (global setup)');
  connection = await Connection.connect({ address });
  client = new Client({ connection });
  configDir = await configWithHeartbeat(path.join(PROJECT_ROOT, 'config'), HEARTBEAT);
  references = runReferences(address);
  // Awaited by the tests that need it; this only keeps an early failure from going unhandled.
  references.catch(() => undefined);
}, 30_000);

afterAll(async () => {
  // The reference rig's output is printed when the reference failed.
  const failed = await (references ?? Promise.resolve()).then(
    () => false,
    () => true,
  );
  await tearDown(suiteRigs, !failed);
  await connection?.close();
  if (configDir) await fs.rm(configDir, { recursive: true, force: true });
}, 30_000);

beforeEach(() => {
  testPassed = false;
});

afterEach(async () => {
  await tearDown(testRigs, testPassed);
}, 30_000);

durabilityTest(
  'a worker SIGKILLed in each phase of a task, and replaced by a new process each time, loses no work and repeats only calls in flight',
  180_000,
  async () => {
    const rig = await setUp('crash', LATENCY_MS);
    const env = rig.workerEnv(process.env.BATON_TEST_TEMPORAL_ADDRESS!);
    let worker: WorkerProcess = await rig.procs.startWorker('worker-1', env);
    rig.mark('worker-1 ready');
    const handle = await client.workflow.start(researchTask, {
      taskQueue: rig.taskQueue,
      workflowId: uniqueId('durability-crash'),
      args: [{ question: QUESTION }],
    });
    const snapshot = (predicate: (s: Snapshot) => boolean, what: string): Promise<Snapshot> =>
      waitForSnapshot(rig, client, handle.workflowId, predicate, what);

    const kills: Interruption[] = [];
    /** The replacement worker, starting up (its bundling overlaps the server noticing the kill). */
    let restarted: Promise<void> = Promise.resolve();
    /** Waits for the phase, SIGKILLs the worker's process tree and starts a new worker process. */
    const killAt = async (phase: string, predicate: (s: Snapshot) => boolean): Promise<Interruption> => {
      const before = await snapshot(predicate, phase);
      await restarted;
      const exit = await worker.kill();
      expect(exit.signal).toBe('SIGKILL');
      rig.mark(`killed ${worker.label} at ${phase}`);
      // Nothing of the old worker can reach the stand-in any more, and the new one has not started.
      const kill = interruption(phase, before, rig.calls, rig.calls.length);
      kills.push(kill);
      const label = `worker-${kills.length + 1}`;
      restarted = rig.procs.startWorker(label, env).then((w) => {
        worker = w;
        rig.mark(`${label} ready`);
      });
      return kill;
    };

    // (0) Planning: the lead's plan call at the model.
    const planning = await killAt(
      '(0) planning',
      (s) => s.parent.phase === 'planning' && rig.calls.count('submit_plan', QUESTION) >= 1,
    );
    expect(planning.inFlight.has(keyOf('submit_plan', QUESTION))).toBe(true);

    // (a) Waiting at the plan gate: nothing in flight, so nothing may be called again. The status
    // is read as soon as the worker is dead: the new worker answers it once up.
    const a = await killAt('(a) plan gate', (s) => s.parent.pendingGate?.gate === 'plan');
    expect(a.inFlight.size).toBe(0);
    const [afterA] = await Promise.all([
      snapshot(() => true, 'the new worker to answer at the plan gate'),
      restarted,
    ]);
    expect(afterA.parent.phase).toBe('awaiting-plan-approval');
    expect(afterA.parent.plan).toEqual(a.before.parent.plan);
    expect(rig.calls.length).toBe(a.before.callsBefore);
    await approveGate(handle, 'plan');

    // (b) and (c) at once: a child workflow in flight, with its parallel steps' calls at the model
    // (their answers not back yet), after the parent's own steps that need no child are done.
    const bc = await killAt(
      '(b, c) parallel steps of a child in flight',
      (s) =>
        s.parent.steps.some((x) => x.childWorkflowId && x.state === 'running') &&
        done(s.parent.steps).length >= 1 &&
        s.child?.phase === 'executing' &&
        calling(s.child.steps, rig.calls).length >= 2,
    );
    expect(running(bc.before.child?.steps).length).toBeGreaterThanOrEqual(2);

    // (d) Synthesis: the lead's report call in flight.
    const d = await killAt(
      '(d) synthesis',
      (s) => s.parent.phase === 'synthesizing' && rig.calls.count('submit_report', QUESTION) >= 1,
    );
    expect(d.inFlight.has(keyOf('submit_report', QUESTION))).toBe(true);

    // (e) Waiting at the report gate: again nothing in flight, nothing called again.
    const e = await killAt('(e) report gate', (s) => s.parent.pendingGate?.gate === 'report');
    expect(e.inFlight.size).toBe(0);
    const [afterE] = await Promise.all([
      snapshot(() => true, 'the new worker to answer at the report gate'),
      restarted,
    ]);
    expect(afterE.parent.phase).toBe('awaiting-report-approval');
    expect(afterE.parent.report?.artifact).toEqual(e.before.parent.report?.artifact);
    expect(rig.calls.length).toBe(e.before.callsBefore);
    await approveGate(handle, 'report');

    const result = await handle.result();
    rig.mark('completed');
    await expect(fs.stat(result.reportPath!)).resolves.toBeTruthy();
    expectNothingLostOrRepeated(
      rig,
      await outcomeOf(client, handle, result),
      await reference('research-brief'),
      kills,
    );
  },
);

durabilityTest(
  'the Temporal server stopped and started again on its database, with steps in flight and at a gate: the same worker process reconnects and the task completes',
  90_000,
  async () => {
    const rig = await setUp('server-restart', LATENCY_MS);
    // A server of our own, on a fixed port so its address survives the restart.
    const port = await freePort();
    const dbFile = path.join(rig.root, 'temporal', 'baton.sqlite');
    const startServer = async (): Promise<DevServer> => {
      const server = await startDevServer({ dbFile, port, searchAttributes: [...SEARCH_ATTRIBUTES] });
      rig.servers.push(server);
      return server;
    };
    let server = await startServer();
    rig.mark(`server up at ${server.address}`);
    const worker = await rig.procs.startWorker('worker', rig.workerEnv(server.address));
    rig.mark('worker ready');
    const handle = await server.env.client.workflow.start(researchTask, {
      taskQueue: rig.taskQueue,
      workflowId: uniqueId('durability-server'),
      args: [{ question: QUESTION, playbook: 'fact-sheet' }],
    });
    const workflowId = handle.workflowId;

    const restarts: Interruption[] = [];
    /** Waits for the state, stops the server, starts it again on the same database and port. */
    const restartAt = async (label: string, predicate: (s: Snapshot) => boolean): Promise<Interruption> => {
      const before = await waitForSnapshot(rig, server.env.client, workflowId, predicate, label);
      await server.stop();
      rig.mark(`server stopped at ${label}`);
      server = await startServer();
      expect(server.address).toBe(`127.0.0.1:${port}`);
      rig.mark('server up again');
      // While the server was down the worker could start nothing new: anything it called was in flight.
      const restart = interruption(label, before, rig.calls, rig.calls.length);
      restarts.push(restart);
      return restart;
    };

    const inFlight = await restartAt(
      'steps in flight',
      (s) => calling(s.parent.steps, rig.calls).length >= 1,
    );
    expect(inFlight.inFlight.size).toBeGreaterThan(0);

    const atGate = await restartAt('report gate', (s) => s.parent.pendingGate?.gate === 'report');
    expect(atGate.inFlight.size).toBe(0);
    const after = await waitForSnapshot(rig, server.env.client, workflowId, () => true, 'the task to answer');
    expect(after.parent.phase).toBe('awaiting-report-approval');
    expect(after.parent.report?.artifact).toEqual(atGate.before.parent.report?.artifact);
    expect(rig.calls.length).toBe(atGate.before.callsBefore);
    await approveGate(server.env.client.workflow.getHandle(workflowId), 'report');

    const result = (await server.env.client.workflow.getHandle(workflowId).result()) as ResearchTaskResult;
    rig.mark('completed');
    // One worker process did it all: it rode out both restarts without being restarted itself.
    expect(worker.hasExited).toBe(false);
    expect(rig.procs.all).toHaveLength(1);
    expectNothingLostOrRepeated(
      rig,
      await outcomeOf(server.env.client, server.env.client.workflow.getHandle(workflowId), result),
      await reference('fact-sheet'),
      restarts,
    );
  },
);

durabilityTest(
  'two worker processes on one task queue: the one running a model call is SIGKILLed, the other takes over and the task completes',
  90_000,
  async () => {
    const rig = await setUp('two-workers', LATENCY_MS);
    const env = rig.workerEnv(process.env.BATON_TEST_TEMPORAL_ADDRESS!);
    await Promise.all([rig.procs.startWorker('worker-A', env), rig.procs.startWorker('worker-B', env)]);
    rig.mark('both workers ready');
    const handle = await client.workflow.start(researchTask, {
      taskQueue: rig.taskQueue,
      workflowId: uniqueId('durability-pair'),
      args: [{ question: QUESTION, playbook: 'fact-sheet' }],
    });

    // A step whose call reached the model moments ago (its answer is still far off), and the worker
    // running it, from the server's record of the activity attempt (identity `pid@host`).
    const { before, holder } = await readUntil(
      async () => {
        const before = await readSnapshot(client, handle.workflowId, rig.calls);
        const { raw } = await handle.describe();
        const started = (raw.pendingActivities ?? []).filter((p) => p.state === STARTED);
        const identity = started.length === 1 ? started[0]!.lastWorkerIdentity : undefined;
        return { before, holder: identity ? Number(identity.split('@')[0]) : undefined };
      },
      ({ before, holder }) =>
        holder !== undefined &&
        calling(before.parent.steps, rig.calls).length === 1 &&
        Date.now() - rig.calls.last()!.at < LATENCY_MS / 2,
      'a model call in flight on one of the workers',
    );
    const victim = await rig.procs.owning(holder!);
    expect(victim).toBeDefined();
    const survivor = rig.procs.all.find((w) => w !== victim)!;
    await victim!.kill();
    const killedAt = Date.now();
    rig.mark(`killed ${victim!.label}, which ran the call in flight`);
    const kill = interruption(`${victim!.label} killed`, before, rig.calls, rig.calls.length);
    expect(kill.inFlight.size).toBe(1);

    await readUntil(
      () => queryStatus(client, handle.workflowId),
      (s) => s.pendingGate?.gate === 'report',
      'the report gate',
    );
    await approveGate(handle, 'report');
    const result = await handle.result();
    rig.mark('completed');
    expect(survivor.hasExited).toBe(false);

    // The history shows the takeover: the call cut by the kill ran again, on the survivor.
    const events = (await handle.fetchHistory()).events ?? [];
    const pidOf = (identity: string | null | undefined): number => Number((identity ?? '').split('@')[0]);
    const survivorPids = await survivor.livePids();
    const retried = events
      .map((e) => e.activityTaskStartedEventAttributes)
      .filter((a) => (a?.attempt ?? 1) > 1);
    expect(retried.length).toBeGreaterThanOrEqual(1);
    expect(retried.map((a) => survivorPids.includes(pidOf(a?.identity)))).toEqual(retried.map(() => true));
    const lastTaskBeforeKill = events
      .filter((e) => e.workflowTaskStartedEventAttributes && tsToMs(e.eventTime) < killedAt)
      .at(-1)?.workflowTaskStartedEventAttributes;
    rig.mark(
      `the victim ${survivorPids.includes(pidOf(lastTaskBeforeKill?.identity)) ? 'did not hold' : 'also held'} the task's workflow state (its last workflow task before the kill)`,
    );
    expectNothingLostOrRepeated(rig, await outcomeOf(client, handle, result), await reference('fact-sheet'), [
      kill,
    ]);
  },
);
