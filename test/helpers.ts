/**
 * Shared test plumbing: a connection to the dev server started in global-setup.ts, workers on
 * fresh task queues with the prebuilt workflow bundle, and model activities replaced by plain
 * functions where a test wants exact control. Config loading and publishing stay real.
 */
import { Client, Connection, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createActivities } from '../activities';
import {
  type Activities,
  type PlanTaskInput,
  type StepInput,
  type SummaryInput,
  type SynthesisInput,
} from '../contract/activities';
import { putArtifact } from '../activities/artifacts';
import { snapshotAgents } from '../activities/config';
import { openStores } from '../activities/store';
import type { ActivityOptions } from '../activities/options';
import { generatePublisherKey } from '../activities/signing';
import type { Plan, SnapshotAgent } from '../config/schema';
import { logLevelFromEnv } from '../workers/options';
import { workerInterceptors } from '../workers/worker';
import {
  decide,
  status as statusQuery,
  type DecideRequest,
  type TaskStatus,
  type TokenUsage,
} from '../contract/messages';

export const FIXTURE_CONFIG = path.join(__dirname, 'fixtures', 'config');

export interface TestContext {
  client: Client;
  nativeConnection: NativeConnection;
  close(): Promise<void>;
}

/**
 * The test server for this file (or describe block): connected in `beforeAll`, closed in
 * `afterAll`. The returned object is filled in when `beforeAll` has run, so read it inside tests.
 */
export function useTestServer(): TestContext {
  const ctx = {} as TestContext;
  beforeAll(async () => {
    Object.assign(ctx, await connectToTestServer());
  });
  afterAll(async () => {
    await ctx.close?.();
  });
  return ctx;
}

async function connectToTestServer(): Promise<TestContext> {
  installQuietRuntime();
  const address = process.env.BATON_TEST_TEMPORAL_ADDRESS;
  if (!address)
    throw new Error(
      'BATON_TEST_TEMPORAL_ADDRESS is unset: run the tests with `npm test` (jest global setup)',
    );
  const connection = await Connection.connect({ address });
  const nativeConnection = await NativeConnection.connect({ address });
  return {
    client: new Client({ connection }),
    nativeConnection,
    close: async () => {
      await nativeConnection.close();
      await connection.close();
    },
  };
}

/** Worker logs only at ERROR (or BATON_LOG_LEVEL): tests that fail tasks on purpose would otherwise fill the output with warnings. */
function installQuietRuntime(): void {
  try {
    Runtime.install({ logger: new DefaultLogger(logLevelFromEnv('ERROR')) });
  } catch {
    // Already installed in this process by an earlier test file.
  }
}

const TSX = path.join(__dirname, '..', 'node_modules', '.bin', 'tsx');

/** What a script run as a process printed, and its exit code (-1 when a signal ended it). */
export interface ScriptRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a project script (`cli/audit.ts`, …) with tsx, as `npm run` does, in `env` (the whole
 * environment). With `timeoutMs`, a script still running then is killed (code -1).
 */
export function runScript(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 0,
): Promise<ScriptRun> {
  return new Promise((resolve) => {
    execFile(
      TSX,
      [script, ...args],
      { cwd: path.join(__dirname, '..'), env, timeout: timeoutMs },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

/** What an in-process run of a CLI printed, and its exit code. */
export interface CapturedRun {
  code: number;
  out: string[];
  err: string[];
}

/** Runs a CLI's main in-process with `out`/`err` collecting its lines. */
export async function captured(
  main: (io: { out: (line: string) => void; err: (line: string) => void }) => Promise<number>,
): Promise<CapturedRun> {
  const run: CapturedRun = { code: -1, out: [], err: [] };
  run.code = await main({ out: (line) => run.out.push(line), err: (line) => run.err.push(line) });
  return run;
}

export const uniqueId = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;

/** The publisher key test workers sign reports with: made for this test process, never on disk. */
export const TEST_PUBLISHER = generatePublisherKey().key;

/** A publishers file (config/publishers.yaml's form) listing {@link TEST_PUBLISHER}, in a fresh folder. */
export async function testPublishersFile(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-publishers-'));
  const file = path.join(dir, 'publishers.yaml');
  await fs.writeFile(file, `publishers:\n  - id: test-worker\n    publicKey: ${TEST_PUBLISHER.publicKey}\n`);
  return file;
}

/**
 * Activity options with the fixture config (or another), fresh temporary artifact and report
 * folders, and {@link TEST_PUBLISHER} as the publisher key.
 */
export async function tempActivityOptions(
  configDir = FIXTURE_CONFIG,
  searchAttributes = true,
): Promise<ActivityOptions> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-test-'));
  return {
    configDir,
    artifactDir: path.join(root, 'artifacts'),
    reportDir: path.join(root, 'reports'),
    apiKey: 'test-key',
    searchAttributes,
    publisherKey: TEST_PUBLISHER,
  };
}

/**
 * Runs `fn` while a worker with `activities` polls a fresh task queue, and shuts the worker down
 * after. `workflowBundle`: other workflow code than this checkout's (an earlier commit's, bundled).
 */
export async function withWorker<T>(
  ctx: TestContext,
  activities: Activities,
  fn: (taskQueue: string) => Promise<T>,
  workflowBundle: { code: string } | { codePath: string } = {
    codePath: process.env.BATON_TEST_WORKFLOW_BUNDLE!,
  },
): Promise<T> {
  const taskQueue = uniqueId('test-queue');
  const worker = await Worker.create({
    connection: ctx.nativeConnection,
    taskQueue,
    activities,
    workflowBundle,
    // As every Baton worker: the caller check, and the sink the bundle's tracing interceptors call (a no-op here).
    ...workerInterceptors(ctx.nativeConnection, taskQueue, undefined, true),
  });
  return worker.runUntil(fn(taskQueue));
}

/**
 * The full event history of a workflow as text, with every payload decoded (payload data is
 * base64 in the history's JSON form, so searching the raw JSON for a string finds nothing).
 * For scans that must be able to fail: a secret in any payload shows up here.
 */
export async function historyText(handle: WorkflowHandle): Promise<string> {
  const history = await handle.fetchHistory();
  return JSON.stringify(history, (key, value: unknown) => {
    if (key !== 'data' && key !== 'metadata') return value;
    const decode = (v: unknown): unknown =>
      typeof v === 'string'
        ? Buffer.from(v, 'base64').toString('utf8')
        : v instanceof Uint8Array
          ? Buffer.from(v).toString('utf8')
          : v;
    if (key === 'data') return decode(value);
    return value && typeof value === 'object'
      ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decode(v)]))
      : value;
  });
}

/** Queries `status` until `predicate` holds (the workflow advances on its own; this only observes). */
export function waitForStatus(
  handle: WorkflowHandle,
  predicate: (s: TaskStatus) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<TaskStatus> {
  return pollUntil(() => handle.query(statusQuery), predicate, what, timeoutMs);
}

/**
 * Reads `read()` until `predicate` holds, with a bounded wait. For things that change on their own
 * (a workflow advancing, visibility catching up with search attributes): this observes, it does
 * not wait for a guessed duration.
 */
export async function pollUntil<T>(
  read: () => Promise<T>,
  predicate: (value: T) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await read();
    if (predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(last, null, 2)}`);
}

/** The refusal text of a decision sent by Update, or undefined when it was accepted. */
export async function refusalOf(handle: WorkflowHandle, request: unknown): Promise<string | undefined> {
  try {
    await handle.executeUpdate(decide, { args: [request as DecideRequest] });
    return undefined;
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) return err.cause?.message;
    throw err;
  }
}

/**
 * Reads until `predicate` holds, a read that fails (no worker to answer a query yet, a server
 * restarting) counting as "not yet". `failFast`, run before each read, may throw to stop waiting at
 * once, when waiting could only time out.
 */
export async function readUntil<T>(
  read: () => Promise<T>,
  predicate: (value: T) => boolean,
  what: string,
  timeoutMs = 60_000,
  failFast?: () => Promise<void>,
): Promise<T> {
  type Read = { value: T } | { error: string };
  const found = await pollUntil<Read>(
    async () => {
      await failFast?.();
      return read().then(
        (value) => ({ value }),
        (err: unknown) => ({ error: err instanceof Error ? err.message : String(err) }),
      );
    },
    (r) => 'value' in r && predicate(r.value),
    what,
    timeoutMs,
  );
  return (found as { value: T }).value;
}

export const DEFAULT_PLAN: Plan = {
  rationale: 'Two independent gathering steps, then an analysis of both.',
  steps: [
    { id: 's1', agent: 'researcher', question: 'Gather evidence A.', dependsOn: [], decompose: false },
    { id: 's2', agent: 'researcher', question: 'Gather evidence B.', dependsOn: [], decompose: false },
    { id: 's3', agent: 'analyst', question: 'Weigh A against B.', dependsOn: ['s1', 's2'], decompose: false },
  ],
};

/** A plan call as a fake model sees it: the lead resolved, as the real activity resolves a reference. */
export type FakePlanInput = Omit<PlanTaskInput, 'lead'> & { lead: SnapshotAgent };
/** A step as a fake model sees it: the agent resolved (`maxTokens` lowered by the step budget). */
export type FakeStepInput = Omit<StepInput, 'agent'> & { agent: SnapshotAgent };

export interface FakeModel {
  plan?: (
    input: FakePlanInput,
    call: number,
  ) => Promise<Awaited<ReturnType<Activities['planTask']>>> | Awaited<ReturnType<Activities['planTask']>>;
  step?: (input: FakeStepInput) => Promise<void> | void;
  /** Tokens a step reports spending; default 10 in, 5 out. */
  stepUsage?: (input: FakeStepInput) => TokenUsage;
}

/** Every call the fake model activities received, in order, as the workflow gave it (agents by reference since v12). */
export interface Calls {
  plan: PlanTaskInput[];
  step: StepInput[];
  synthesis: SynthesisInput[];
  /** Summaries of groups of steps, for a plan synthesized in parts (workflows/synthesis.ts). */
  summaries: SummaryInput[];
}

/**
 * The real activities with the three model calls replaced by plain functions: exact and fast.
 * Agents given by reference are resolved as the real activities resolve them; steps (findings and
 * sources) and reports still go through the real artifact store, so publishing is real.
 */
export function fakeModelActivities(
  options: ActivityOptions,
  fake: FakeModel = {},
): { activities: Activities; calls: Calls } {
  const real = createActivities(options);
  const store = openStores(options).artifacts;
  const agentOf = snapshotAgents(store);
  const calls: Calls = { plan: [], step: [], synthesis: [], summaries: [] };
  const usage = { inputTokens: 10, outputTokens: 5 };
  const activities: Activities = {
    ...real,
    async planTask(input) {
      calls.plan.push(input);
      const lead = await agentOf(input.lead, 'lead');
      if (fake.plan) return fake.plan({ ...input, lead }, calls.plan.length);
      return { valid: true, plan: DEFAULT_PLAN, usage, model: lead.model };
    },
    async runSpecialist(input) {
      calls.step.push(input);
      const seen = { ...input, agent: await agentOf(input.agent, 'specialist') };
      await fake.step?.(seen);
      const sources = [{ title: `source for ${input.step.id}` }];
      const [result, sourcesRef] = await Promise.all([
        putArtifact(store, `Findings of ${input.step.id}: ${input.step.question}`),
        putArtifact(store, JSON.stringify(sources)),
      ]);
      return {
        summary: `summary of ${input.step.id}`,
        sources,
        sourcesRef,
        result,
        usage: fake.stepUsage?.(seen) ?? usage,
        model: seen.agent.model,
      };
    },
    async summarizeSteps(input) {
      calls.summaries.push(input);
      const lead = await agentOf(input.lead, 'lead');
      const steps = [...input.steps.map((s) => s.id), ...(input.parts ?? []).flatMap((p) => p.steps)];
      const [notes, references] = await Promise.all([
        putArtifact(store, steps.map((id) => `Claim from ${id} [step:${id}]`).join('\n\n')),
        putArtifact(store, JSON.stringify(Object.fromEntries(steps.map((id) => [id, `- **[step:${id}]**`])))),
      ]);
      const label = `${steps[0]}…${steps.at(-1)} (${steps.length} steps)`;
      return { part: { label, notes, references, steps }, usage, model: lead.model };
    },
    async synthesizeReport(input) {
      calls.synthesis.push(input);
      const lead = await agentOf(input.lead, 'lead');
      const cited = [...input.steps.map((s) => s.id), ...(input.parts ?? []).flatMap((p) => p.steps)];
      const body = `# Report\n\n${cited.map((id) => `Claim from ${id} [step:${id}]`).join('\n\n')}${input.change ? `\n\nRevised for: ${input.change.comment}` : ''}`;
      const report = await putArtifact(store, body);
      return {
        title: 'Report',
        summary: 'A summary.',
        report,
        cited,
        usage,
        model: lead.model,
      };
    },
  };
  return { activities, calls };
}

/**
 * Whether a gate decision (a signal, or an accepted Update) and the first fired timer (the gate's
 * deadline) were handled by one workflow task: the decision arrived between the workflow task
 * before the timer fired and the one after it (an Update is accepted right after the workflow task
 * that took it). For recorded histories (proto JSON) and fetched ones alike.
 */
export function decisionWithDeadline(history: temporal.api.history.v1.IHistory): boolean {
  const events = history.events ?? [];
  const fired = events.findIndex((e) => e.timerFiredEventAttributes);
  if (fired < 0) return false;
  const completed = events.flatMap((e, i) => (e.workflowTaskCompletedEventAttributes ? [i] : []));
  const before = completed.filter((i) => i < fired).at(-1) ?? -1;
  const after = completed.find((i) => i > fired);
  if (after === undefined) return false;
  return events.some(
    (e, i) =>
      i > before &&
      ((e.workflowExecutionSignaledEventAttributes && i < after) ||
        (e.workflowExecutionUpdateAcceptedEventAttributes && i === after + 1)),
  );
}
