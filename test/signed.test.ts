/**
 * Signed decisions enforced, on the real dev server with real workers: under a playbook with
 * `decisions: signed`, every decision (Update or signal) must be signed for this task, this gate,
 * this opening of it and this plan or draft, with a key approvers.yaml lists for the person it
 * names; a quorum counts distinct verified people. Each refusal is answered to the Update's caller
 * with its reason, or audited for a signal. A properly signed quorum passes, and the provenance
 * carries the signatures, which verify again. Passkey assertions by signal (as the inbox makes them,
 * here by an authenticator in Node) are refused and audited when forged, tampered or replayed on a
 * later opening, and count when good. Under an unsigned playbook, approvals say `unsigned`.
 */
import { type WorkflowHandle } from '@temporalio/client';
import { promises as fs } from 'node:fs';
import type { Signer } from '../cli/baton-sign';
import {
  keyFingerprint,
  statementBytes,
  verifyDecision,
  type DecisionStatement,
  type SignedDecision,
} from '../contract/decision';
import {
  audit as auditQuery,
  decide,
  status as statusQuery,
  type ResearchTaskResult,
} from '../contract/messages';
import { researchTask } from '../workflows';
import {
  fakeModelActivities,
  pollUntil,
  tempActivityOptions,
  uniqueId,
  useTestServer,
  waitForStatus,
  withWorker,
  refusalOf,
} from './helpers';
import { asSignal, nodePasskey, nodeSigner, passkeySignedFor, signedConfig, signedFor } from './signing';

const ctx = useTestServer();

const alice = nodeSigner('alice');
const bob = nodeSigner('bob');
const mallory = nodeSigner('mallory');
const alicePasskey = nodePasskey('alice');
const malloryPasskey = nodePasskey('mallory');

const start = (taskQueue: string, playbook: string) =>
  ctx.client.workflow.start(researchTask, {
    taskQueue,
    workflowId: uniqueId('signed'),
    args: [{ question: 'Q?', playbook }],
  });

/** Signs `statement` as it stands (what only the key's holder can do). */
async function resigned(signer: Signer, statement: DecisionStatement): Promise<SignedDecision> {
  const value = Buffer.from(await signer.sign(statementBytes(statement))).toString('base64');
  return { ...statement, signature: { alg: 'ed25519', key: keyFingerprint(signer.publicKey), value } };
}

/** Waits until the audit trail holds a refused decision whose reason matches. */
const refusedInAudit = (handle: WorkflowHandle, reason: RegExp) =>
  pollUntil(
    () => handle.query(auditQuery),
    (a) => a.some((e) => e.event === 'decision' && e.accepted === false && reason.test(e.reason ?? '')),
    `a refused signal: ${String(reason)}`,
  );

test('every forged, replayed or unsigned decision is refused; a signed quorum of distinct people passes', async () => {
  // carol is an approver of the plan gate with no key in config.
  const config = await signedConfig({ alice, bob });
  try {
    const { activities } = fakeModelActivities(await tempActivityOptions(config));
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue, 'signed');
      const other = await start(taskQueue, 'signed');
      const id = handle.workflowId;
      const plan1 = await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
      await waitForStatus(other, (s) => s.pendingGate?.gate === 'plan', "the other task's plan gate");
      expect(plan1.pendingGate).toMatchObject({ instance: 1, subject: expect.stringMatching(/^sha256:/) });
      const approve = { decision: 'approve' as const, by: 'alice' };

      // Unsigned, under a signed playbook.
      expect(await refusalOf(handle, approve)).toBe('unsigned: the decision by "alice" carries no signature');
      // A claimed name whose person has no key; alice's name with mallory's key.
      const asCarol = await signedFor(ctx.client, id, { ...approve, by: 'carol' }, mallory);
      expect(await refusalOf(handle, asCarol)).toBe('no key of "carol" matches: config lists none');
      const forged = await signedFor(ctx.client, id, approve, mallory);
      expect(await refusalOf(handle, forged)).toBe(
        `no key of "alice" matches: the signing key ${keyFingerprint(mallory.publicKey)} is not one of them`,
      );
      await handle.signal('approve', asSignal(forged));
      await refusedInAudit(handle, /^no key of "alice" matches/);
      // alice's own signature, for another task.
      const forOther = await signedFor(ctx.client, other.workflowId, approve, alice);
      expect(await refusalOf(handle, forOther)).toBe(
        `signed for another task (${other.workflowId}), not ${id}`,
      );
      // A signed approval changed after signing (its comment).
      const good = await signedFor(ctx.client, id, approve, alice);
      expect(await refusalOf(handle, { ...good, comment: 'changed' })).toMatch(/^bad signature/);
      // A signature over approve, sent as a rejection.
      await handle.signal('reject', asSignal(good));
      await refusedInAudit(handle, /^bad signature/);

      // alice's signed approval counts once: the same signer again is refused.
      expect(await handle.executeUpdate(decide, { args: [good] })).toMatchObject({ outcome: 'waiting' });
      const again = await signedFor(ctx.client, id, approve, alice);
      expect(await refusalOf(handle, again)).toBe('"alice" has already approved the plan gate (1 of 2)');
      // bob signs an approval now, but asks for changes first: the gate re-opens.
      const bobEarly = await signedFor(ctx.client, id, { ...approve, by: 'bob' }, bob);
      const change = await signedFor(
        ctx.client,
        id,
        { decision: 'requestChanges', by: 'bob', comment: 'narrower' },
        bob,
      );
      await handle.signal('requestChanges', asSignal(change));
      const plan2 = await waitForStatus(
        handle,
        (s) => s.pendingGate?.gate === 'plan' && s.revisions.plan === 1,
        'the plan gate again',
      );
      expect(plan2.pendingGate?.instance).toBe(2);
      expect(await refusalOf(handle, bobEarly)).toBe(
        `signed for an older instance of the plan gate (1; open now: ${plan2.pendingGate!.instance})`,
      );
      await handle.signal('approve', asSignal(bobEarly));
      await refusedInAudit(handle, /^signed for an older instance/);

      // A properly signed quorum: alice and bob, one by Update, one by signal.
      await handle.executeUpdate(decide, { args: [await signedFor(ctx.client, id, approve, alice)] });
      await handle.signal(
        'approve',
        asSignal(await signedFor(ctx.client, id, { ...approve, by: 'bob' }, bob)),
      );

      // The report gate: a plan-gate decision is refused there; so is one on a superseded draft.
      const report1 = await waitForStatus(handle, (s) => s.pendingGate?.gate === 'report', 'the report gate');
      expect(await refusalOf(handle, good)).toBe('the plan gate is not pending; the pending gate is report');
      const onDraft1 = await signedFor(ctx.client, id, approve, alice);
      await handle.executeUpdate(decide, {
        args: [
          await signedFor(
            ctx.client,
            id,
            { decision: 'requestChanges', by: 'alice', comment: 'more on B' },
            alice,
          ),
        ],
      });
      const report2 = await waitForStatus(
        handle,
        (s) => s.pendingGate?.gate === 'report' && s.revisions.report === 1,
        'the report gate again',
      );
      expect(report2.pendingGate!.subject).not.toBe(report1.pendingGate!.subject);
      // Signed for this opening, but on the draft before the revision.
      const stale = await resigned(alice, { ...onDraft1, instance: report2.pendingGate!.instance! });
      expect(await refusalOf(handle, stale)).toBe(
        `signed for another draft (superseded): ${report1.pendingGate!.subject}, while the draft open for decision is ${report2.pendingGate!.subject}`,
      );
      expect(await refusalOf(handle, onDraft1)).toMatch(/^signed for an older instance of the report gate/);

      const final = await signedFor(ctx.client, id, approve, alice);
      expect(await handle.executeUpdate(decide, { args: [final] })).toMatchObject({ outcome: 'approved' });
      const result: ResearchTaskResult = await handle.result();
      expect(result.outcome).toBe('completed');

      // The provenance carries each approval's statement and signature, and each verifies again.
      const { approvals } = result.provenance;
      expect(approvals.map((a) => [a.gate, a.by, a.signed])).toEqual([
        ['plan', 'alice', true],
        ['plan', 'bob', true],
        ['report', 'alice', true],
      ]);
      const keys = {
        alice: [Buffer.from(alice.publicKey).toString('hex')],
        bob: [Buffer.from(bob.publicKey).toString('hex')],
      };
      for (const a of approvals) {
        const { signature, ...statement } = a.statement!;
        const payload = {
          ...statement,
          by: a.by,
          gate: a.gate,
          comment: a.comment,
          decision: 'approve' as const,
          signature,
        };
        const open = {
          workflowId: id,
          gate: a.gate,
          instance: statement.instance,
          subject: statement.subject,
        };
        expect(verifyDecision(payload, open, keys)).toEqual({ ok: true, person: a.by });
      }
      const audit = await handle.query(auditQuery);
      expect(audit.filter((e) => e.event === 'decision' && e.accepted).every((e) => e.signed === true)).toBe(
        true,
      );
      await other.terminate();
    });
  } finally {
    await fs.rm(config, { recursive: true, force: true });
  }
});

test('one person cannot meet a quorum of two, whatever keys they hold', async () => {
  const config = await signedConfig({ alice, bob });
  try {
    const { activities } = fakeModelActivities(await tempActivityOptions(config));
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue, 'signed');
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
      const approve = { decision: 'approve' as const, by: 'alice' };
      await handle.signal(
        'approve',
        asSignal(await signedFor(ctx.client, handle.workflowId, approve, alice)),
      );
      await handle.signal(
        'approve',
        asSignal(await signedFor(ctx.client, handle.workflowId, approve, alice)),
      );
      // alice's key naming bob.
      const asBob = await signedFor(ctx.client, handle.workflowId, { ...approve, by: 'bob' }, alice);
      expect(await refusalOf(handle, asBob)).toMatch(/^no key of "bob" matches/);
      const status = await pollUntil(
        () => handle.query(statusQuery),
        (s) => s.audit.filter((e) => e.event === 'decision').length === 2,
        'both signals handled',
      );
      expect(status.pendingGate?.approvals.map((a) => a.by)).toEqual(['alice']);
      expect(status.audit.filter((e) => e.event === 'decision').map((e) => [e.accepted, e.reason])).toEqual([
        [true, undefined],
        [false, '"alice" has already approved the plan gate (1 of 2)'],
      ]);
      await handle.terminate();
    });
  } finally {
    await fs.rm(config, { recursive: true, force: true });
  }
});

test('passkey decisions by signal: forged, tampered and replayed ones refused and audited; her own counts', async () => {
  const config = await signedConfig({ bob }, { alice: [alicePasskey.line] });
  try {
    const { activities } = fakeModelActivities(await tempActivityOptions(config));
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue, 'signed');
      const id = handle.workflowId;
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
      const approve = { decision: 'approve' as const, by: 'alice' };
      // Another person's passkey (a credential config does not list) under alice's name.
      await handle.signal(
        'approve',
        asSignal(await passkeySignedFor(ctx.client, id, approve, malloryPasskey)),
      );
      await refusedInAudit(handle, /^no passkey of "alice" matches/);
      // Her assertion, its signature changed on the way.
      const good = await passkeySignedFor(ctx.client, id, approve, alicePasskey);
      const value = Buffer.from(good.signature.value, 'base64url');
      value[12]! ^= 0x01;
      const tampered = { ...good, signature: { ...good.signature, value: value.toString('base64url') } };
      await handle.signal('approve', asSignal(tampered));
      await refusedInAudit(handle, /^bad signature: the passkey assertion does not verify/);
      // Her assertion as signed: it counts.
      await handle.signal('approve', asSignal(good));
      await waitForStatus(handle, (s) => s.pendingGate?.approvals.length === 1, "alice's approval");
      // bob asks for changes: the gate re-opens, and alice's assertion is for its older opening.
      const change = { decision: 'requestChanges' as const, by: 'bob', comment: 'narrower' };
      await handle.signal('requestChanges', asSignal(await signedFor(ctx.client, id, change, bob)));
      await waitForStatus(
        handle,
        (s) => s.pendingGate?.gate === 'plan' && s.revisions.plan === 1,
        'the plan again',
      );
      await handle.signal('approve', asSignal(good));
      await refusedInAudit(handle, /^signed for an older instance of the plan gate \(1; open now: 2\)/);
      const status = await handle.query(statusQuery);
      const refused = status.audit.filter((e) => e.event === 'decision' && e.accepted === false);
      expect(refused).toHaveLength(3);
      expect(
        status.audit.filter((e) => e.event === 'decision' && e.accepted).map((e) => [e.by, e.signed]),
      ).toEqual([
        ['alice', true],
        ['bob', true],
      ]);
      await handle.terminate();
    });
  } finally {
    await fs.rm(config, { recursive: true, force: true });
  }
});

test('under an unsigned playbook, approvals are taken as given and say so', async () => {
  const { activities } = fakeModelActivities(await tempActivityOptions());
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await start(taskQueue, 'gated');
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
    await handle.executeUpdate(decide, { args: [{ decision: 'approve', by: 'alice' }] });
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'report', 'the report gate');
    await handle.executeUpdate(decide, { args: [{ decision: 'approve', by: 'bob' }] });
    const result: ResearchTaskResult = await handle.result();
    expect(result.provenance.approvals.map((a) => [a.by, a.signed])).toEqual([
      ['alice', false],
      ['bob', false],
    ]);
    expect(result.provenance.audit.filter((e) => e.event === 'decision').map((e) => e.signed)).toEqual([
      false,
      false,
    ]);
    const report = await fs.readFile(result.reportPath!, 'utf8');
    expect(report).toMatch(/plan approved by alice at \S+ \(unsigned\)/);
  });
});
