/**
 * Sign-off that holds up, on the real dev server: quorum, who may decide, the `decide` Update and
 * its validator, change requests that re-run named steps, the audit trail, and the search
 * attributes that find tasks waiting for a decision.
 */
import { type WorkflowHandle } from '@temporalio/client';
import { researchTask } from '../workflows';
import {
  approve,
  audit as auditQuery,
  decide,
  reject,
  type AuditEntry,
  type DecideRequest,
} from '../contract/messages';
import {
  fakeModelActivities,
  pollUntil,
  tempActivityOptions,
  uniqueId,
  waitForStatus,
  withWorker,
  useTestServer,
  refusalOf,
} from './helpers';
import { asSignal, nodeSigner, signedConfig, signedFor } from './signing';

const ctx = useTestServer();

/**
 * A quorum over 1 needs signed decisions (config:check refuses it otherwise), so the quorum tests run
 * the `signed` playbook (plan: 2 of alice, bob, carol; report: alice) with keys for the three.
 */
const KEYS = { alice: nodeSigner('alice'), bob: nodeSigner('bob'), carol: nodeSigner('carol') };
const signedOptions = async () => tempActivityOptions(await signedConfig(KEYS));

/** `request` signed by `who` for the gate the task has open now. */
const signed = (handle: WorkflowHandle, request: DecideRequest, who: keyof typeof KEYS) =>
  signedFor(ctx.client, handle.workflowId, request, KEYS[who]);

const start = (taskQueue: string, playbook: string, workflowId = uniqueId('gates')) =>
  ctx.client.workflow.start(researchTask, { taskQueue, workflowId, args: [{ question: 'Q?', playbook }] });

const decisions = (audit: AuditEntry[]) =>
  audit.filter((e) => e.event === 'decision').map((e) => [e.decision, e.by, e.via, e.accepted]);

test('a quorum of two distinct approvers is needed; the same person twice does not count', async () => {
  const { activities, calls } = fakeModelActivities(await signedOptions());
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await start(taskQueue, 'signed'); // plan: 2 of alice, bob, carol
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
    const byAlice = await signed(handle, { decision: 'approve', by: 'alice' }, 'alice');
    expect(await handle.executeUpdate(decide, { args: [byAlice] })).toEqual({
      accepted: true,
      gate: 'plan',
      outcome: 'waiting',
      approvals: 1,
      quorum: 2,
    });
    const again = await signed(handle, { decision: 'approve', by: 'alice', comment: 'twice' }, 'alice');
    expect(await refusalOf(handle, again)).toBe('"alice" has already approved the plan gate (1 of 2)');
    await handle.signal(approve, asSignal(again)); // the same by signal: refused and audited
    const waiting = await waitForStatus(
      handle,
      (s) => s.audit.filter((e) => e.event === 'decision').length === 2,
      'the refusal',
    );
    expect(waiting.pendingGate).toMatchObject({
      gate: 'plan',
      approvals: [expect.objectContaining({ by: 'alice' })],
    });
    expect(calls.step).toHaveLength(0);

    const second = await handle.executeUpdate(decide, {
      args: [await signed(handle, { decision: 'approve', by: 'carol', comment: 'ok' }, 'carol')],
    });
    expect(second).toMatchObject({ outcome: 'approved', approvals: 2, quorum: 2 });
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'report', 'the report gate');
    await handle.executeUpdate(decide, {
      args: [await signed(handle, { decision: 'approve', by: 'alice', gate: 'report' }, 'alice')],
    });
    const result = await handle.result();
    expect(result.provenance.approvals.map((a) => [a.gate, a.by])).toEqual([
      ['plan', 'alice'],
      ['plan', 'carol'],
      ['report', 'alice'],
    ]);
    expect(decisions(result.provenance.audit)).toEqual([
      ['approve', 'alice', 'update', true],
      ['approve', 'alice', 'signal', false],
      ['approve', 'carol', 'update', true],
      ['approve', 'alice', 'update', true],
    ]);
  });
});

test('a rejection by one approver ends the gate at once, whatever the quorum', async () => {
  const { activities, calls } = fakeModelActivities(await signedOptions());
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await start(taskQueue, 'signed');
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
    await handle.executeUpdate(decide, {
      args: [await signed(handle, { decision: 'approve', by: 'alice' }, 'alice')],
    });
    const answer = await handle.executeUpdate(decide, {
      args: [await signed(handle, { decision: 'reject', by: 'bob', comment: 'no' }, 'bob')],
    });
    expect(answer.outcome).toBe('rejected');
    expect((await handle.result()).outcome).toBe('rejected');
    expect(calls.step).toHaveLength(0);
  });
});

test('the Update validator refuses each kind of bad decision with its reason, and the task keeps running', async () => {
  const { activities } = fakeModelActivities(await tempActivityOptions());
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await start(taskQueue, 'gated');
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
    const cases: [string, unknown, string | RegExp][] = [
      [
        'wrong gate',
        { decision: 'approve', by: 'alice', gate: 'report' },
        'the report gate is not pending; the pending gate is plan',
      ],
      [
        'not an approver',
        { decision: 'approve', by: 'mallory' },
        '"mallory" is not an approver of the plan gate now (approvers: alice, bob)',
      ],
      ['no identity', { decision: 'approve' }, /^malformed approve payload: by: /],
      [
        'unknown field',
        { decision: 'approve', by: 'alice', urgent: true },
        /^malformed approve payload: .*urgent/,
      ],
      ['wrong type', { decision: 'approve', by: 42 }, /^malformed approve payload: by: /],
      [
        'unknown decision',
        { decision: 'veto', by: 'alice' },
        'malformed decide request: decision must be "approve", "reject" or "requestChanges"',
      ],
      [
        'change without comment',
        { decision: 'requestChanges', by: 'alice' },
        'requestChanges needs a comment saying what to change',
      ],
      [
        'rerun on the plan',
        { decision: 'requestChanges', by: 'alice', comment: 'x', rerunSteps: ['s1'] },
        'rerunSteps goes only with requestChanges on the report',
      ],
    ];
    for (const [name, request, expected] of cases) {
      const refusal = await refusalOf(handle, request);
      if (typeof expected === 'string') expect([name, refusal]).toEqual([name, expected]);
      else expect([name, refusal]).toEqual([name, expect.stringMatching(expected)]);
    }
    // Rejected Updates leave no trace in history and change nothing; the gate is still open.
    const audit = await handle.query(auditQuery);
    expect(audit.map((e) => e.event)).toEqual(['gate-opened']);
    expect(await handle.executeUpdate(decide, { args: [{ decision: 'reject', by: 'bob' }] })).toMatchObject({
      outcome: 'rejected',
    });
    expect((await handle.result()).outcome).toBe('rejected');
    // Now the task is closed: a late decision is refused too.
    await expect(
      handle.executeUpdate(decide, { args: [{ decision: 'approve', by: 'alice' }] }),
    ).rejects.toThrow();
  });
});

test('requestChanges on the report re-runs the steps it names, with the comment, then re-synthesizes', async () => {
  const { activities, calls } = fakeModelActivities(await tempActivityOptions());
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await start(taskQueue, 'gated'); // maxRevisions 1
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
    await handle.signal(approve, { by: 'alice' });
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'report', 'the report gate');
    expect(
      await refusalOf(handle, { decision: 'requestChanges', by: 'bob', comment: 'x', rerunSteps: ['s9'] }),
    ).toBe('rerunSteps names unknown step(s): s9');
    const answer = await handle.executeUpdate(decide, {
      args: [
        { decision: 'requestChanges', by: 'bob', comment: 'More evidence on B, please.', rerunSteps: ['s2'] },
      ],
    });
    expect(answer.outcome).toBe('changes-requested');
    const revised = await waitForStatus(
      handle,
      (s) => s.pendingGate?.gate === 'report' && s.revisions.report === 1,
      'the revised report',
    );
    expect(calls.step.map((c) => c.step.id)).toEqual(['s1', 's2', 's3', 's2']);
    expect(calls.step[3]!.change).toEqual({ by: 'bob', comment: 'More evidence on B, please.' });
    expect(revised.steps.find((s) => s.id === 's2')).toMatchObject({ state: 'done', revision: 1 });
    expect(calls.synthesis).toHaveLength(2);
    expect(calls.synthesis[1]!.change?.comment).toBe('More evidence on B, please.');
    // One revision round allowed: a second request is refused; approval ends it.
    expect(await refusalOf(handle, { decision: 'requestChanges', by: 'bob', comment: 'again' })).toBe(
      "the report gate already had 1 revision round(s), the playbook's limit; approve or reject",
    );
    await handle.signal(approve, { by: 'alice' });
    expect((await handle.result()).outcome).toBe('completed');
  });
});

test('search attributes find the tasks waiting at a gate, and those waiting for a given approver', async () => {
  const { activities } = fakeModelActivities(await signedOptions());
  await withWorker(ctx, activities, async (taskQueue) => {
    // Unique ids, so the queries can be narrowed to this test's tasks on the shared server.
    const tag = uniqueId('sa');
    const quorum = await start(taskQueue, 'signed', `${tag}-quorum`);
    const gated = await start(taskQueue, 'gated', `${tag}-gated`);
    await waitForStatus(quorum, (s) => s.pendingGate?.gate === 'plan', 'the quorum task at its plan gate');
    await waitForStatus(gated, (s) => s.pendingGate?.gate === 'plan', 'the gated task at its plan gate');
    await quorum.executeUpdate(decide, {
      args: [await signed(quorum, { decision: 'approve', by: 'alice' }, 'alice')],
    });

    const ids = async (query: string): Promise<string[]> => {
      const found: string[] = [];
      for await (const wf of ctx.client.workflow.list({
        query: `WorkflowId STARTS_WITH '${tag}' AND ${query}`,
      })) {
        found.push(wf.workflowId);
      }
      return found.sort();
    };
    // Visibility is eventually consistent: poll until the expected answer, with a bound.
    const eventually = async (query: string, expected: string[]): Promise<void> => {
      await pollUntil(
        () => ids(query),
        (found) => JSON.stringify(found) === JSON.stringify(expected),
        `${query} to find ${expected.join(', ') || 'nothing'}`,
      );
    };
    await eventually(`BatonPendingGate = 'plan'`, [`${tag}-gated`, `${tag}-quorum`]);
    await eventually(`BatonPhase = 'awaiting-plan-approval'`, [`${tag}-gated`, `${tag}-quorum`]);
    // alice has approved the quorum task: she is still awaited only on the gated one.
    await eventually(`BatonAwaiting = 'alice'`, [`${tag}-gated`]);
    await eventually(`BatonAwaiting = 'carol'`, [`${tag}-quorum`]);
    await eventually(`BatonAwaiting = 'mallory'`, []);

    await gated.signal(approve, { by: 'bob' });
    await eventually(`BatonPendingGate = 'report'`, [`${tag}-gated`]);
    await gated.signal(reject, { by: 'bob' });
    await quorum.executeUpdate(decide, {
      args: [await signed(quorum, { decision: 'reject', by: 'carol' }, 'carol')],
    });
    await eventually(`BatonPendingGate IS NOT NULL`, []);
    await eventually(`BatonPhase = 'rejected'`, [`${tag}-gated`, `${tag}-quorum`]);
  });
});
