/**
 * Long waits at a gate (workflows/continue.ts), on a real dev server of this file's own whose
 * suggestion to continue as new comes after 40 events (Temporal's default is 4,096; the warning
 * comes at 10,240): a task whose history grows while it waits continues as a new run at the same
 * gate opening, keeping its audit trail, approvals and state; a signed decision made for the
 * opening before the hand-over still holds after it; the audit export reads every run. Nobody can
 * hand a task a state of their own through its input.
 */
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { researchTask } from '../workflows';
import { approve, decide, SEARCH_ATTRIBUTES, type TaskStatus } from '../contract/messages';
import { startDevServer, type DevServer } from '../local/temporal';
import { STATE_PART_CHARS, type LoadStateInput, type SaveStateInput } from '../contract/task-state';
import { partsOf } from '../workflows/continue';
import { collectAudit } from '../cli/audit-collect';
import { encryptionFromEnv } from '../workers/codec';
import { reportReader, SEALED_MAGIC, sealerFor } from '../workers/store';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import {
  fakeModelActivities,
  readUntil,
  tempActivityOptions,
  uniqueId,
  withWorker,
  type TestContext,
} from './helpers';
import { asSignal, nodeSigner, signedConfig, signedFor } from './signing';
import { status as statusQuery } from '../contract/messages';

/** Events after which this file's server suggests continuing as new. */
const SUGGEST_AFTER = 40;

let server: DevServer;
const ctx = {} as TestContext;

beforeAll(async () => {
  server = await startDevServer({
    searchAttributes: [...SEARCH_ATTRIBUTES],
    dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': SUGGEST_AFTER },
  });
  Object.assign(ctx, { client: server.env.client, nativeConnection: server.env.nativeConnection });
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

/** The task's status, from its latest run (a query during a hand-over may find no worker yet: not yet). */
const statusWhen = (handle: WorkflowHandle, predicate: (s: TaskStatus) => boolean, what: string) =>
  readUntil(() => handle.query(statusQuery), predicate, what, 60_000);

const runIdOf = async (handle: WorkflowHandle): Promise<string> => (await handle.describe()).runId;

const waitingAt = (gate: 'plan' | 'report') => (s: TaskStatus) =>
  s.pendingGate?.gate === gate && s.phase === `awaiting-${gate}-approval`;

test('a task waiting at its plan gate continues as a new run when its history grows, keeping its gate, audit and approvals', async () => {
  const options = await tempActivityOptions();
  const { activities, calls } = fakeModelActivities(options);
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('long-wait'),
      args: [{ question: 'Which angles matter?', playbook: 'gated' }],
    });
    const first = handle.firstExecutionRunId;
    const opened = await statusWhen(handle, waitingAt('plan'), 'the plan gate');
    expect(opened.audit.filter((e) => e.event === 'gate-opened')).toHaveLength(1);

    // Someone who may not decide keeps sending decisions: each is refused, and the history grows.
    // Each adds at least one event: this many take the history past the suggestion, however the
    // server batches them into workflow tasks.
    const sent = SUGGEST_AFTER;
    for (let i = 1; i <= sent; i++) await handle.signal(approve, { by: 'mallory', comment: `attempt ${i}` });
    await readUntil(
      () => runIdOf(handle),
      (run) => run !== first,
      'the task to continue as a new run',
    );
    const resumed = await statusWhen(handle, waitingAt('plan'), 'the plan gate in the new run');
    const second = await runIdOf(handle);
    expect(second).not.toBe(first);

    // The same opening: nothing re-opened, re-planned or re-audited; every refusal kept.
    expect(resumed.pendingGate).toMatchObject({ gate: 'plan', instance: opened.pendingGate!.instance });
    expect(resumed.pendingGate!.since).toBe(opened.pendingGate!.since);
    expect(resumed.audit.filter((e) => e.event === 'gate-opened')).toHaveLength(1);
    expect(resumed.audit.filter((e) => e.event === 'continued-as-new')).toEqual([
      expect.objectContaining({ gate: 'plan', via: 'system' }),
    ]);
    const refusedBeforeHandOver = resumed.audit.filter((e) => e.by === 'mallory' && e.accepted === false);
    expect(refusedBeforeHandOver.length).toBeGreaterThan(0);
    expect(refusedBeforeHandOver.length).toBeLessThanOrEqual(sent);
    expect(resumed.plan).toEqual(opened.plan);
    expect(calls.plan).toHaveLength(1);

    // The new run takes decisions as the first would have.
    await handle.signal(approve, { by: 'alice', comment: 'go' });
    // By the report gate the history is long again: the task hands over there too.
    const { run: third } = await readUntil(
      async () => ({ run: await runIdOf(handle), status: await handle.query(statusQuery) }),
      ({ run, status }) => run !== second && waitingAt('report')(status),
      'the report gate in a third run',
      60_000,
    );
    expect(third).not.toBe(first);
    const result = await handle.executeUpdate(decide, {
      args: [{ decision: 'approve', by: 'bob', gate: 'report' }],
    });
    expect(result).toMatchObject({ accepted: true, outcome: 'approved' });

    const done = await handle.result();
    expect(done.outcome).toBe('completed');
    expect(done.provenance.runId).toBe(third);
    expect(done.provenance.earlierRuns).toEqual([first, second]);
    expect(done.provenance.approvals.map((a) => [a.gate, a.by])).toEqual([
      ['plan', 'alice'],
      ['report', 'bob'],
    ]);
    expect(done.provenance.audit.filter((e) => e.event === 'continued-as-new').map((e) => e.gate)).toEqual([
      'plan',
      'report',
    ]);
    expect(calls.step).toHaveLength(3);
    expect(calls.synthesis).toHaveLength(1);

    // The audit export reads every run: the plan and the decisions of the first, the report of the last.
    const record = await collectAudit(ctx.client, handle.workflowId, {
      readReport: reportReader({
        BATON_ARTIFACT_DIR: options.artifactDir,
        BATON_REPORT_DIR: options.reportDir,
      }),
    });
    expect(record.workflow.runId).toBe(third);
    const history = record.history;
    expect(history?.input).toEqual({ question: 'Which angles matter?', playbook: 'gated' });
    expect(
      history?.signals.filter((s) => s.payload && JSON.stringify(s.payload).includes('mallory')),
    ).toHaveLength(sent);
    expect(history?.stepRuns.map((r) => r.step).sort()).toEqual(['s1', 's2', 's3']);
    expect(history?.close?.event).toBe('completed');
  });
}, 180_000);

test('a signed decision made for the gate before the task continued as a new run holds after it', async () => {
  const keys = { alice: nodeSigner('alice'), bob: nodeSigner('bob'), carol: nodeSigner('carol') };
  const { activities } = fakeModelActivities(await tempActivityOptions(await signedConfig(keys)));
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('long-wait-signed'),
      args: [{ question: 'Which angles matter?', playbook: 'signed' }],
    });
    await statusWhen(handle, waitingAt('plan'), 'the plan gate');
    // Signed for this opening (its instance and plan), sent only after the hand-over.
    const byAlice = await signedFor(
      ctx.client,
      handle.workflowId,
      { decision: 'approve', by: 'alice' },
      keys.alice,
    );
    while ((await runIdOf(handle)) === handle.firstExecutionRunId) {
      await handle.signal(approve, { by: 'mallory' });
    }
    await statusWhen(handle, waitingAt('plan'), 'the plan gate in the new run');
    await handle.signal(approve, asSignal(byAlice));
    const after = await statusWhen(
      handle,
      (s) => (s.pendingGate?.approvals.length ?? 0) === 1,
      "alice's approval in the new run",
    );
    expect(after.pendingGate?.approvals).toEqual([expect.objectContaining({ by: 'alice', signed: true })]);
    await handle.terminate('done with the test');
  });
}, 180_000);

/** An activity held at its first call until the test releases it, and a promise of that first call. */
function holdFirst<A extends unknown[], R>(fn: (...args: A) => Promise<R>) {
  let entered!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((resolve) => (entered = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  let calls = 0;
  const held = async (...args: A): Promise<R> => {
    if (++calls === 1) {
      entered();
      await released;
    }
    return fn(...args);
  };
  return { held, reached, release };
}

/**
 * Sends refused decisions until `until` settles or enough have gone to take the history past the
 * suggestion (each adds an event), then waits for `until`: a loaded worker may take the hand-over
 * well after the last of them was sent.
 */
async function floodUntil(handle: WorkflowHandle, until: Promise<void>): Promise<void> {
  let done = false;
  void until.then(() => (done = true));
  for (let sent = 0; !done && sent < SUGGEST_AFTER; sent++) await handle.signal(approve, { by: 'mallory' });
  await readUntil(() => Promise.resolve(done), Boolean, 'the task to hand over after the refused decisions');
}

test('the gate keeps its deadline and reminders across the hand-over: the new run waits for what is left, not for them again', async () => {
  const { activities } = fakeModelActivities(await tempActivityOptions());
  await withWorker(ctx, activities, async (taskQueue) => {
    // Plan gate: reminders after 1 and 2 days, escalation after 3 (the fixture's `deadlines`).
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('long-wait-deadline'),
      args: [{ question: 'Which angles matter?', playbook: 'deadlines' }],
    });
    const opened = await statusWhen(handle, waitingAt('plan'), 'the plan gate');
    const first = handle.firstExecutionRunId;
    while ((await runIdOf(handle)) === first) await handle.signal(approve, { by: 'mallory' });
    const resumed = await statusWhen(handle, waitingAt('plan'), 'the plan gate in the new run');
    expect(resumed.pendingGate).toMatchObject({
      stage: 'primary',
      deadline: opened.pendingGate!.deadline,
      since: opened.pendingGate!.since,
      reminders: [],
    });
    // The new run's timer is for the first reminder, one day after the gate opened: less than a day
    // from the new run's start, which came later.
    const history = await handle.fetchHistory();
    const started = (history.events ?? []).filter((e) => e.timerStartedEventAttributes);
    expect(started).toHaveLength(1);
    const seconds = Number(started[0]!.timerStartedEventAttributes!.startToFireTimeout!.seconds ?? 0);
    expect(seconds).toBeLessThan(24 * 3600);
    expect(seconds).toBeGreaterThan(23 * 3600);
    // What the Web UI shows of the timer (issue 20): which gate, and what it is for.
    const summary = started[0]!.userMetadata?.summary?.data;
    expect(summary && JSON.parse(Buffer.from(summary).toString('utf8'))).toBe(
      'plan gate · reminder 1d after opening',
    );
    await handle.terminate('done with the test');
  });
}, 180_000);

test('decisions sent while the new run reads its state back wait for it, and count; an Update then is asked to come again', async () => {
  const { activities } = fakeModelActivities(await tempActivityOptions());
  const load = holdFirst((input: LoadStateInput) => activities.loadTaskState(input));
  await withWorker(ctx, { ...activities, loadTaskState: load.held }, async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('long-wait-resuming'),
      args: [{ question: 'Which angles matter?', playbook: 'gated' }],
    });
    await statusWhen(handle, waitingAt('plan'), 'the plan gate');
    await floodUntil(handle, load.reached);
    // The new run is reading its state back: alice's signal waits, bob's Update is refused.
    await handle.signal(approve, { by: 'alice', comment: 'while it resumed' });
    const update = await handle.executeUpdate(decide, { args: [{ decision: 'approve', by: 'bob' }] }).then(
      () => 'accepted',
      (err: unknown) => (err instanceof WorkflowUpdateFailedError ? String(err.cause?.message) : String(err)),
    );
    expect(update).toMatch(/continuing as a new run .*send the decision again in a moment/);
    load.release();
    const after = await statusWhen(
      handle,
      (s) => s.pendingGate?.gate !== 'plan' && s.plan !== undefined && s.phase !== 'loading-config',
      'the plan gate closed',
    );
    const handOver = after.audit.findIndex((e) => e.event === 'continued-as-new' && e.gate === 'plan');
    const byAlice = after.audit.findIndex((e) => e.event === 'decision' && e.by === 'alice' && e.accepted);
    expect(handOver).toBeGreaterThanOrEqual(0);
    expect(byAlice).toBeGreaterThan(handOver);
    expect(after.audit[byAlice]).toMatchObject({ gate: 'plan', via: 'signal', comment: 'while it resumed' });
    expect(after.audit.filter((e) => e.event === 'gate-closed' && e.gate === 'plan')).toEqual([
      expect.objectContaining({ reason: 'approve' }),
    ]);
    await handle.terminate('done with the test');
  });
}, 180_000);

test('a decision that comes while the task saves its state is taken, and the task stays in its run', async () => {
  const { activities } = fakeModelActivities(await tempActivityOptions());
  const save = holdFirst((input: SaveStateInput) => activities.saveTaskState(input));
  await withWorker(ctx, { ...activities, saveTaskState: save.held }, async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('long-wait-saving'),
      args: [{ question: 'Which angles matter?', playbook: 'gated' }],
    });
    const first = handle.firstExecutionRunId;
    await statusWhen(handle, waitingAt('plan'), 'the plan gate');
    await floodUntil(handle, save.reached);
    await handle.signal(approve, { by: 'alice', comment: 'while it saved' });
    // The signal is in the history before the save completes: the run takes it instead of handing over.
    save.release();
    const after = await statusWhen(handle, (s) => s.pendingGate?.gate !== 'plan', 'the plan gate closed');
    expect(await runIdOf(handle)).toBe(first);
    expect(after.audit.filter((e) => e.event === 'continued-as-new' && e.gate === 'plan')).toEqual([]);
    expect(after.audit.filter((e) => e.event === 'decision' && e.accepted)).toEqual([
      expect.objectContaining({ gate: 'plan', by: 'alice', via: 'signal', comment: 'while it saved' }),
    ]);
    await handle.terminate('done with the test');
  });
}, 180_000);

test('with payload encryption on, the state a task carries to its next run is ciphertext in the store', async () => {
  const keyring = encryptionFromEnv({
    BATON_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    BATON_ENCRYPTION_KEY_ID: 'state-key-1',
  })!;
  const options = { ...(await tempActivityOptions()), sealer: sealerFor(keyring) };
  const { activities } = fakeModelActivities(options);
  await withWorker(ctx, activities, async (taskQueue) => {
    const question = 'Which secret angles does the saved state keep?';
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('long-wait-sealed'),
      args: [{ question, playbook: 'gated' }],
    });
    await statusWhen(handle, waitingAt('plan'), 'the plan gate');
    const first = handle.firstExecutionRunId;
    while ((await runIdOf(handle)) === first) await handle.signal(approve, { by: 'mallory' });
    const resumed = await statusWhen(handle, waitingAt('plan'), 'the plan gate in the new run');
    expect(resumed.question).toBe(question);
    const dir = path.join(options.artifactDir, 'state');
    const files = (await fs.readdir(dir, { recursive: true, withFileTypes: true })).filter((f) => f.isFile());
    expect(files.map((f) => f.name)).toEqual([expect.stringMatching(/^[0-9a-f]{32}\.0\.json$/)]);
    const raw = await fs.readFile(path.join(files[0]!.parentPath, files[0]!.name));
    expect(raw.subarray(0, SEALED_MAGIC.length)).toEqual(SEALED_MAGIC);
    const text = raw.toString('latin1');
    for (const plain of [question, 'mallory', 'gate-opened', '"status"']) expect(text).not.toContain(plain);
    await handle.terminate('done with the test');
  });
}, 180_000);

test('the state is cut into parts that survive UTF-8 each: never inside a surrogate pair', () => {
  // A pair straddles the first cut; the rest is all pairs.
  const text = `${'a'.repeat(STATE_PART_CHARS - 1)}😀${'b'.repeat(10)}${'😀'.repeat(STATE_PART_CHARS)}`;
  const parts = partsOf(text);
  expect(parts.join('')).toBe(text);
  for (const part of parts) {
    expect(part.length).toBeLessThanOrEqual(STATE_PART_CHARS);
    expect(Buffer.from(part, 'utf8').toString('utf8')).toBe(part);
  }
});

/** A task's input claiming a state to continue from, as only a run the server continued may. */
const FORGED_CONTINUATION = {
  question: 'Which angles matter?',
  playbook: 'gated',
  continued: { parts: 1, sha256: `sha256:${'0'.repeat(64)}` },
};

test('a task started with a state of its own ("continued" in its input) is refused: only a run the server continued reads one', async () => {
  const { activities, calls } = fakeModelActivities(await tempActivityOptions());
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('forged-state'),
      args: [FORGED_CONTINUATION],
    });
    const failure = await handle.result().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect(String((failure as WorkflowFailedError).cause?.message)).toMatch(
      /invalid researchTask input: continued: is set only by a task continuing as a new run/,
    );
    expect(calls.plan).toHaveLength(0);
  });
}, 60_000);

test("a decision that comes with a continued run's first workflow task is held for the state it is for, not refused for want of a gate", async () => {
  const { activities } = fakeModelActivities(await tempActivityOptions());
  await withWorker(ctx, activities, async (taskQueue) => {
    // Started with its decision (one request: both are in the history before the first workflow
    // task), as a decision sent while a task hands over reaches its next run. This run's state
    // is forged, so it then fails; a real continued run would take the decision once its gate is back.
    const handle = await ctx.client.workflow.signalWithStart(researchTask, {
      taskQueue,
      workflowId: uniqueId('held-at-first-task'),
      args: [FORGED_CONTINUATION],
      signal: approve,
      signalArgs: [{ by: 'alice', comment: 'sent while it handed over' }],
    });
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    const final = await handle.query(statusQuery);
    expect(final.audit.filter((e) => e.by === 'alice')).toEqual([]);
  });
}, 60_000);
