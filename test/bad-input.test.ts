/**
 * Bad input of every kind gets an error that names the field and the reason, and a running task
 * is never corrupted or stuck by it. (Config problems: test/config.test.ts; plans that break the
 * rules: test/schema.test.ts and test/workflow.test.ts; decisions: test/gates.test.ts.)
 */
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { researchTask } from '../workflows';
import { approve, decide, status as statusQuery, type DecideRequest } from '../contract/messages';
import {
  fakeModelActivities,
  tempActivityOptions,
  uniqueId,
  waitForStatus,
  withWorker,
  useTestServer,
} from './helpers';

const ctx = useTestServer();

/** Workflow input: each case fails the task at once, naming the field. */
const INPUTS: [string, unknown, string][] = [
  [
    'no question',
    {},
    'invalid researchTask input: question: Invalid input: expected string, received undefined',
  ],
  ['empty question', { question: '' }, 'invalid researchTask input: question: must not be empty'],
  ['blank question', { question: ' \n\t ' }, 'invalid researchTask input: question: must not be empty'],
  [
    'question too long',
    { question: 'x'.repeat(4001) },
    'invalid researchTask input: question: must be at most 4000 characters',
  ],
  [
    'question of the wrong type',
    { question: 42 },
    'invalid researchTask input: question: Invalid input: expected string, received number',
  ],
  [
    'malformed playbook id',
    { question: 'Q', playbook: 'Research Brief' },
    'invalid researchTask input: playbook: must be a playbook id such as "research-brief"',
  ],
  [
    'unknown field',
    { question: 'Q', urgent: true },
    'invalid researchTask input: input: Unrecognized key: "urgent"',
  ],
  [
    'not an object',
    'just a string',
    'invalid researchTask input: input: Invalid input: expected object, received string',
  ],
];

test.each(INPUTS)(
  'workflow input, %s: fails at once with a message naming the field',
  async (_name, input, message) => {
    const { activities, calls } = fakeModelActivities(await tempActivityOptions());
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await ctx.client.workflow.start('researchTask', {
        taskQueue,
        workflowId: uniqueId('bad'),
        args: [input],
      });
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect((err as WorkflowFailedError).cause?.message).toBe(message);
      expect(calls.plan).toHaveLength(0); // nothing was done on bad input
    });
  },
);

test('an unknown playbook fails the task, listing the playbooks there are', async () => {
  const { activities } = fakeModelActivities(await tempActivityOptions());
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('bad'),
      args: [{ question: 'Q', playbook: 'nope' }],
    });
    const err = (await handle.result().catch((e: unknown) => e)) as WorkflowFailedError;
    // The config snapshot is a local activity (v18): its failure is the task's, not wrapped in an ActivityFailure.
    expect(err.cause?.message).toMatch(
      /^unknown playbook "nope"; available: batched, budgeted, deadline-reject, /,
    );
  });
});

test('input too large for a Temporal payload is refused at start, before any task exists', async () => {
  const workflowId = uniqueId('huge');
  const err = await ctx.client.workflow
    .start(researchTask, {
      taskQueue: uniqueId('q'),
      workflowId,
      args: [{ question: 'x'.repeat(3 * 1024 * 1024) }],
    })
    .catch((e: unknown) => e);
  expect((err as Error).message).toBe('Failed to start Workflow');
  // The server says why: the payload is over its size limit.
  expect(((err as Error).cause as Error).message).toMatch(/size.*limit|limit.*size|exceeds/i);
  await expect(ctx.client.workflow.getHandle(workflowId).describe()).rejects.toThrow(/not found/i);
});

/** Decision payloads sent to a task waiting at its plan gate: each is refused, none changes it. */
const DECISIONS: [string, 'signal' | 'update', unknown][] = [
  ['signal with no payload', 'signal', undefined],
  ['signal with a number for by', 'signal', { by: 7 }],
  ['signal naming an unknown gate', 'signal', { by: 'alice', gate: 'final' }],
  ['signal with an oversized comment', 'signal', { by: 'alice', comment: 'c'.repeat(10_001) }],
  ['update without a decision', 'update', { by: 'alice' }],
  [
    'update with rerunSteps not a list',
    'update',
    { decision: 'requestChanges', by: 'alice', comment: 'x', rerunSteps: 's1' },
  ],
  ['update as an array', 'update', ['approve', 'alice']],
];

test('malformed decisions are refused while the task waits, and it then completes normally', async () => {
  const { activities, calls } = fakeModelActivities(await tempActivityOptions());
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('bad'),
      args: [{ question: 'Q', playbook: 'gated' }],
    });
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
    const refusals: [string, string | undefined][] = [];
    for (const [name, via, payload] of DECISIONS) {
      if (via === 'signal') {
        await handle.signal(approve, payload as never);
      } else {
        const refusal = await handle.executeUpdate(decide, { args: [payload as DecideRequest] }).then(
          () => undefined,
          (e: unknown) => (e instanceof WorkflowUpdateFailedError ? e.cause?.message : String(e)),
        );
        refusals.push([name, refusal]);
      }
    }
    expect(refusals).toEqual([
      [
        'update without a decision',
        'malformed decide request: decision must be "approve", "reject" or "requestChanges"',
      ],
      [
        'update with rerunSteps not a list',
        expect.stringMatching(/^malformed requestChanges payload: rerunSteps: /),
      ],
      [
        'update as an array',
        'malformed decide request: decision must be "approve", "reject" or "requestChanges"',
      ],
    ]);
    const signals = DECISIONS.filter(([, via]) => via === 'signal').length;
    const s = await waitForStatus(
      handle,
      (st) => st.audit.filter((e) => e.event === 'decision').length === signals,
      'the refused signals',
    );
    expect(
      s.audit.filter((e) => e.event === 'decision').map((e) => [e.accepted, e.reason?.split(':')[0]]),
    ).toEqual(Array(signals).fill([false, 'malformed approve payload']));
    expect(s.pendingGate?.gate).toBe('plan');
    expect(calls.step).toHaveLength(0);
    await handle.signal(approve, { by: 'alice' });
    await waitForStatus(handle, (st) => st.pendingGate?.gate === 'report', 'the report gate');
    await handle.signal(approve, { by: 'bob' });
    expect((await handle.result()).outcome).toBe('completed');
    expect((await handle.query(statusQuery)).phase).toBe('completed');
  });
});
