/**
 * `npm run audit` verifies the approvers' signatures offline (issue 14, item 7): a task of a signed
 * playbook, run by real workers on the real dev server, approved with a passkey (an authenticator
 * in Node, as a browser's asserts) and with an Ed25519 key; its report verifies, each approval
 * named with its key. Then copies of the report whose provenance a dishonest publisher changed and
 * signed again: an approval's comment edited, an approval's signature edited, a key swapped. The
 * report's own checks pass (the publisher signed what it changed), and the audit still fails,
 * naming the approval. The export records how each approval was signed, `unsigned` included.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderReport } from '../activities/report';
import { signProvenance, type SignedProvenance } from '../activities/signing';
import { checkApprovals } from '../cli/audit-approvals';
import { embeddedProvenance, reportBody } from '../cli/audit-verify';
import { keyFingerprint } from '../contract/decision';
import { decide, type Provenance } from '../contract/messages';
import { researchTask } from '../workflows';
import {
  fakeModelActivities,
  tempActivityOptions,
  testPublishersFile,
  TEST_PUBLISHER,
  uniqueId,
  useTestServer,
  waitForStatus,
  withWorker,
} from './helpers';
import { auditVerify } from './audit-verify';
import { nodePasskey, nodeSigner, passkeySignedFor, signedConfig, signedFor } from './signing';

const ctx = useTestServer();
const alicePasskey = nodePasskey('alice-laptop');
const alice = nodeSigner('alice');
const bob = nodeSigner('bob');

let publishers: string;
let report: string;
let provenance: SignedProvenance;
let dir: string;

const verify = (file: string) => auditVerify(file, publishers);

/** A copy of the report whose provenance `edit` changed, signed again by the (dishonest) publisher. */
async function republished(name: string, edit: (p: Provenance) => void): Promise<string> {
  const text = await fs.readFile(report, 'utf8');
  const body = reportBody(text);
  if (!body.ok) throw new Error(body.reason);
  const changed = structuredClone({ ...provenance, signature: undefined }) as Provenance;
  edit(changed);
  const file = path.join(dir, `${name}.md`);
  await fs.writeFile(file, renderReport(body.body, signProvenance(changed, TEST_PUBLISHER)));
  return file;
}

beforeAll(async () => {
  publishers = await testPublishersFile();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-audit-approvals-'));
  const config = await signedConfig({ alice, bob }, { alice: [alicePasskey.line] });
  const { activities } = fakeModelActivities(await tempActivityOptions(config));
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('audit-approvals'),
      args: [{ question: 'Q?', playbook: 'signed' }],
    });
    const id = handle.workflowId;
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
    const approval = (by: string, comment: string) => ({ decision: 'approve' as const, by, comment });
    await handle.executeUpdate(decide, {
      args: [await passkeySignedFor(ctx.client, id, approval('alice', 'Looks right.'), alicePasskey)],
    });
    await handle.executeUpdate(decide, {
      args: [await signedFor(ctx.client, id, approval('bob', 'Fine.'), bob)],
    });
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'report', 'the report gate');
    await handle.executeUpdate(decide, {
      args: [await signedFor(ctx.client, id, approval('alice', 'Ship.'), alice)],
    });
    const result = await handle.result();
    report = result.reportPath!;
  });
  provenance = embeddedProvenance(await fs.readFile(report, 'utf8'))!;
});

test('a signed task: every approval verifies offline, named with the key it verified with', async () => {
  const run = await verify(report);
  expect(run.err).toEqual([]);
  expect(run.code).toBe(0);
  expect(run.out.slice(2)).toEqual([
    `plan approval by alice: signed with passkey ${alicePasskey.passkey.credential.slice(0, 16)}… (es256, relying party localhost): verified`,
    `plan approval by bob: signed with key ${keyFingerprint(bob.publicKey)}: verified`,
    `report approval by alice: signed with key ${keyFingerprint(alice.publicKey)}: verified`,
  ]);
});

test("an approval's comment changed and the provenance signed again: the report verifies, the approval does not", async () => {
  const file = await republished('comment', (p) => {
    p.approvals[0]!.comment = 'Ship anything.';
  });
  const run = await verify(file);
  expect(run.code).toBe(3);
  expect(run.err).toEqual([
    'approval NOT verified: plan approval by alice: the passkey assertion was made for another challenge: it does not sign this decision statement',
  ]);
  expect(run.out[0]).toMatch(/: verified: /); // the report itself: the publisher signed the change
});

test("an approval's signature changed, or its key swapped for another's: named and refused", async () => {
  const sig = await republished('signature', (p) => {
    const s = p.approvals[1]!.statement!.signature as { value: string };
    s.value = `${s.value[0] === 'A' ? 'B' : 'A'}${s.value.slice(1)}`;
  });
  expect(await verify(sig)).toMatchObject({
    code: 3,
    err: [
      `approval NOT verified: plan approval by bob: bad signature: the decision does not verify with bob's key ${keyFingerprint(bob.publicKey)} (changed after signing, or forged)`,
    ],
  });
  const swapped = await republished('key', (p) => {
    p.approvals[1]!.statement!.key = p.approvals[2]!.statement!.key;
  });
  expect(await verify(swapped)).toMatchObject({
    code: 3,
    err: [
      `approval NOT verified: plan approval by bob: the key recorded is not the one the signature names (${keyFingerprint(bob.publicKey)})`,
    ],
  });
});

test("an approval's person changed: the signature is not theirs", async () => {
  const file = await republished('claimed', (p) => {
    p.approvals[2]!.by = 'bob';
  });
  expect((await verify(file)).err).toEqual([
    expect.stringMatching(/^approval NOT verified: report approval by bob: bad signature/),
  ]);
});

test('unsigned and unrecorded approvals are said to be so, and fail nothing', () => {
  const base = { ...provenance, signature: undefined } as Provenance;
  const checks = checkApprovals({
    ...base,
    approvals: [
      { gate: 'plan', by: 'alice', at: '2026-12-07T00:00:00.000Z', signed: false },
      { gate: 'report', by: 'system (auto-approve)', at: '2026-12-07T00:00:00.000Z' },
    ],
  });
  expect(checks).toEqual([
    {
      gate: 'plan',
      by: 'alice',
      signing: 'unsigned',
      verified: null,
      reason: 'unsigned: the playbook took decisions unsigned, so the name was taken as given',
    },
    {
      gate: 'report',
      by: 'system (auto-approve)',
      signing: 'not recorded',
      verified: null,
      reason: "no signing recorded (the system's approval, or one recorded before decisions were signed)",
    },
  ]);
});
