/**
 * The object store (activities/store.ts) on both backends — a local folder, and a real S3-compatible
 * server (moto's, started by test/global-setup.ts) — and what Baton keeps in it: artifacts (a missing
 * one fails for good, naming its key), and write-once reports (a second publish of a final report is
 * refused). Then a task on two worker processes with separate working folders that share nothing but
 * the bucket and Temporal, checked by reading the raw objects from the bucket.
 */
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createActivities } from '../activities';
import { getArtifact, putArtifact, sha256 } from '../activities/artifacts';
import { activityOptionsFromEnv, type ActivityOptions } from '../activities/options';
import { readDraft, readPublished } from '../activities/report';
import { openStores, type ObjectStore } from '../activities/store';
import { storeSettingsFromEnv } from '../activities/store-settings';
import { Processes, type WorkerEnv } from '../bench/processes';
import { generatePublisherKey } from '../activities/signing';
import { runAudit } from '../cli/audit';
import { runCli } from '../cli/baton';
import type { AuditRecord } from '../cli/audit-record';
import { FailureTypes } from '../contract/failures';
import { approve, type Provenance, type TaskStatus } from '../contract/messages';
import { gatePrompt } from '../cli/gate-prompt';
import type { Viewer } from '../inbox/views';
import { decisionPanel } from '../inbox/task-page';
import { startStandIn, type StandIn } from '../standin/server';
import { researchTask } from '../workflows';
import {
  captured,
  FIXTURE_CONFIG,
  tempActivityOptions,
  uniqueId,
  useTestServer,
  waitForStatus,
} from './helpers';
import { auditVerify } from './audit-verify';
import { temporal } from '@temporalio/proto';
import {
  CIPHER,
  CIPHER_METADATA,
  dataConverterFor,
  encryptionFromEnv,
  ENCRYPTED_ENCODING,
  KEY_ID_METADATA,
} from '../workers/codec';
import { SEALED_MAGIC, sealerFor, storesFromEnv } from '../workers/store';
import { testBucket, testS3Client } from './s3-server';

const endpoint = (): string => {
  const url = process.env.BATON_TEST_S3_ENDPOINT;
  if (!url)
    throw new Error(
      'BATON_TEST_S3_ENDPOINT is unset: run the tests with jest (global setup starts the S3 server)',
    );
  return url;
};

/** A fresh bucket on the test server, as the environment of a process that uses it. */
async function freshBucket(prefix = 'baton'): Promise<{ bucket: string; env: NodeJS.ProcessEnv }> {
  const bucket = uniqueId('baton-test').toLowerCase();
  return { bucket, env: await testBucket(endpoint(), bucket, prefix) };
}

/** Activity options on a backend: fresh folders, and for `s3` a fresh bucket. */
async function optionsOn(backend: 'local' | 's3'): Promise<ActivityOptions> {
  const options = await tempActivityOptions();
  if (backend === 'local') return options;
  const { env } = await freshBucket();
  return { ...options, store: storeSettingsFromEnv(env) };
}

const PROVENANCE: Provenance = {
  generator: 'baton',
  aiGenerated: true,
  workflowId: 'store/1',
  runId: '0b8f9a52-3c1e-4a57-9d3e-7e1f5c2a9b10',
  question: 'Where is the report kept?',
  playbook: 'gated',
  configDigest: `sha256:${'0'.repeat(64)}`,
  agents: [{ id: 'lead', model: 'test-lead-model', role: 'Leads.' }],
  usage: { inputTokens: 1, outputTokens: 2, byAgent: { lead: { inputTokens: 1, outputTokens: 2 } } },
  approvals: [{ gate: 'report', by: 'alice', at: '2026-01-01T00:00:00.000Z' }],
  audit: [],
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:01:00.000Z',
};

/** The failure an activity threw, for assertions on its type and retryability. */
async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

describe.each(['local', 's3'] as const)('the %s backend', (backend) => {
  let options: ActivityOptions;
  let store: ObjectStore;
  beforeAll(async () => {
    options = await optionsOn(backend);
    store = openStores(options).reports;
  });

  test('get, put and create keep objects by key; create never replaces one', async () => {
    const key = `objects/${uniqueId('k')}.txt`;
    expect(await store.get(key)).toBeUndefined();
    expect(await store.create(key, Buffer.from('first'))).toBe(true);
    expect(await store.create(key, Buffer.from('second'))).toBe(false);
    expect((await store.get(key))?.toString()).toBe('first');
    await store.put(key, Buffer.from('replaced'));
    expect((await store.get(key))?.toString()).toBe('replaced');
    expect(store.keyAt(store.locate(key))).toBe(key);
    expect(() => store.locate('../outside.txt')).toThrow(/invalid object key "..\/outside.txt"/);
    expect(() => store.locate('a/./b')).toThrow(/invalid object key/);
  });

  test('a missing artifact fails for good, naming its key', async () => {
    const { artifacts } = openStores(options);
    const ref = await putArtifact(artifacts, 'Findings kept in the store.');
    expect(await getArtifact(artifacts, ref.id)).toBe('Findings kept in the store.');
    const missing = `sha256:${sha256('never stored')}`;
    const failure = await failureOf(getArtifact(artifacts, missing));
    expect(failure.type).toBe(FailureTypes.ArtifactMissing);
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain(
      `artifact ${missing} is missing from the store (key ${missing.slice(7, 9)}/${missing.slice(7)}.md)`,
    );
  });

  test('a final report and its provenance are written once: a second publish with other content is refused', async () => {
    const activities = createActivities(options);
    const { artifacts, reports } = openStores(options);
    const first = await putArtifact(artifacts, '# Report\n\nThe first body.');
    const second = await putArtifact(artifacts, '# Report\n\nA different body.');
    const published = await activities.publishReport({
      report: first,
      provenance: PROVENANCE,
      kind: 'final',
    });
    // The name carries the run id: another run of the same workflow id gets its own report.
    expect(path.basename(published.path)).toBe(`store_1.${PROVENANCE.runId}.md`);
    const text = await readPublished(reports, published.path);
    expect(text).toContain('The first body.');
    const provenanceBefore = (await reports.get(`store_1.${PROVENANCE.runId}.provenance.json`))!.toString();

    // A retry of the same publish finds the same bytes and succeeds.
    expect(await activities.publishReport({ report: first, provenance: PROVENANCE, kind: 'final' })).toEqual(
      published,
    );

    const failure = await failureOf(
      activities.publishReport({ report: second, provenance: PROVENANCE, kind: 'final' }),
    );
    expect(failure.type).toBe(FailureTypes.ReportExists);
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toBe(
      `the final report store_1.${PROVENANCE.runId}.md is already published with other content, and a published report is never replaced (write-once): this run has published it before`,
    );
    expect(await readPublished(reports, published.path)).toBe(text);
    expect((await reports.get(`store_1.${PROVENANCE.runId}.provenance.json`))!.toString()).toBe(
      provenanceBefore,
    );

    // A draft is replaced by the next one.
    const draft1 = await activities.publishReport({ report: first, provenance: PROVENANCE, kind: 'draft' });
    const draft2 = await activities.publishReport({ report: second, provenance: PROVENANCE, kind: 'draft' });
    expect(draft2.path).toBe(draft1.path);
    expect(await readPublished(reports, draft2.path)).toContain('A different body.');
  });
});

test('store settings that are wrong stop the process with an error naming the variable', () => {
  const bad: [NodeJS.ProcessEnv, RegExp][] = [
    [{ BATON_STORE: 'gs://bucket' }, /^BATON_STORE="gs:\/\/bucket" is not a store address/],
    [
      { BATON_STORE: 's3://Bad_Bucket' },
      /^BATON_STORE="s3:\/\/Bad_Bucket": "Bad_Bucket" is not a valid bucket name/,
    ],
    [
      { BATON_STORE: 's3://bucket/../x', AWS_REGION: 'eu-west-1' },
      /^BATON_STORE="s3:\/\/bucket\/..\/x": the prefix/,
    ],
    [{ BATON_STORE: 's3://bucket' }, /needs a region: set AWS_REGION/],
    [
      { BATON_STORE: 's3://bucket', BATON_S3_ENDPOINT: 'not a url' },
      /^BATON_S3_ENDPOINT="not a url" is not a URL/,
    ],
    [
      { BATON_STORE: 's3://bucket', BATON_S3_ENDPOINT: 'http://key:secret@minio:9000' },
      /^BATON_S3_ENDPOINT must be an http:\/\/ or https:\/\/ URL without credentials/,
    ],
    [
      {
        BATON_STORE: 's3://bucket',
        BATON_S3_ENDPOINT: 'http://minio:9000',
        BATON_S3_FORCE_PATH_STYLE: 'yes',
      },
      /^BATON_S3_FORCE_PATH_STYLE must be "on" or "off"/,
    ],
    [{ BATON_S3_ENDPOINT: 'http://minio:9000' }, /^BATON_S3_ENDPOINT set, but BATON_STORE is not/],
  ];
  for (const [env, message] of bad) expect(() => activityOptionsFromEnv(env)).toThrow(message);
  // The secret in a rejected endpoint is not repeated.
  expect(() =>
    storeSettingsFromEnv({ BATON_STORE: 's3://bucket', BATON_S3_ENDPOINT: 'http://key:secret@minio:9000' }),
  ).not.toThrow(/secret/);
  expect(
    storeSettingsFromEnv({
      BATON_STORE: 's3://reports-bucket/team/baton/',
      BATON_S3_ENDPOINT: 'http://minio:9000',
    }),
  ).toEqual({
    kind: 's3',
    bucket: 'reports-bucket',
    prefix: 'team/baton/',
    endpoint: 'http://minio:9000/',
    forcePathStyle: true,
    region: 'us-east-1',
  });
  expect(storeSettingsFromEnv({})).toEqual({ kind: 'local' });
  // Credentials from the environment read are used, and printing the settings never shows them.
  const withKeys = storeSettingsFromEnv({
    BATON_STORE: 's3://bucket',
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'secret-canary-123',
  });
  expect(withKeys).toMatchObject({ kind: 's3', credentials: expect.any(Function) });
  expect(JSON.stringify(withKeys)).not.toMatch(/AKIDEXAMPLE|secret-canary-123/);
});

test('a draft that cannot be read blocks the decision, saying why, in npm start and the inbox (npm run baton: below)', async () => {
  const stores = openStores(await tempActivityOptions());
  const status = {
    workflowId: 'store-blocked',
    phase: 'awaiting-report-approval',
    steps: [],
    pendingGate: {
      gate: 'report',
      since: PROVENANCE.startedAt,
      stage: 'primary',
      approvers: ['alice'],
      quorum: 1,
      approvals: [],
      reminders: [],
    },
    report: {
      artifact: { id: `sha256:${'1'.repeat(64)}`, bytes: 1 },
      draftPath: `/data/reports/store-blocked.${PROVENANCE.runId}.draft.md`,
    },
  } as const;
  const why = `the draft report cannot be read, so no decision is taken on it (the task waits at the report gate): report store-blocked.${PROVENANCE.runId}.draft.md is not in the report store this process reads (check that it uses the workers' BATON_STORE, or BATON_REPORT_DIR)`;
  await expect(readDraft(stores, status.report)).rejects.toThrow(why);
  // npm start, even with --auto-approve, sends nothing (the client is never used).
  const prompt = gatePrompt({
    client: undefined as never,
    workflowId: status.workflowId,
    me: 'alice',
    autoApprove: true,
    interactive: false,
    stores,
    view: undefined as never,
  });
  await expect(prompt(status as unknown as TaskStatus)).rejects.toThrow(why);
  // The inbox offers no Approve button, and says why; with a readable draft, it does.
  const viewer: Viewer = { approver: 'alice', csrf: 'token', via: 'proxy' };
  const blocked = String(await decisionPanel(status as unknown as TaskStatus, viewer, { error: why }));
  expect(blocked).not.toContain('value="approve"');
  expect(blocked).toContain('The draft cannot be read here, so it cannot be approved here:');
  expect(blocked).not.toContain('/data/reports'); // the worker's folder is not shown, only the name
  const readable = String(
    await decisionPanel(status as unknown as TaskStatus, viewer, { text: 'The draft.' }),
  );
  expect(readable).toContain('value="approve"');
});

/** The fixture config with a playbook that has a fixed plan and a report gate alice decides. */
async function sharedConfig(): Promise<string> {
  const configDir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-store-config-'));
  await fs.cp(FIXTURE_CONFIG, configDir, { recursive: true });
  await fs.writeFile(
    path.join(configDir, 'playbooks', 'shared.yaml'),
    [
      'id: shared',
      'description: A fixed plan and a report gate.',
      'agents: [researcher, analyst]',
      'limits: { maxSteps: 2, maxDepth: 0, maxParallel: 2 }',
      'gates:',
      '  report: { required: true, approvers: [alice] }',
      'fixedPlan:',
      '  rationale: Gather, then analyse.',
      '  steps:',
      '    - { id: gather, agent: researcher, question: Gather the facts. }',
      '    - { id: weigh, agent: analyst, question: Weigh the facts., dependsOn: [gather] }',
      '',
    ].join('\n'),
  );
  return configDir;
}

/** A worker process's environment: its own fresh (and, if all goes well, untouched) folders, the bucket for the store. */
async function workerOn(
  label: string,
  common: { taskQueue: string; standIn: StandIn; configDir: string; bucketEnv: NodeJS.ProcessEnv },
  extra: Partial<WorkerEnv> = {},
): Promise<{ disk: string; env: WorkerEnv }> {
  const disk = await fs.mkdtemp(path.join(os.tmpdir(), `baton-store-${label}-`));
  // Its own copy of the config too: nothing on disk is shared.
  const configDir = await fs.mkdtemp(path.join(os.tmpdir(), `baton-store-${label}-config-`));
  await fs.cp(common.configDir, configDir, { recursive: true });
  const { bucketEnv } = common;
  return {
    disk,
    env: {
      TEMPORAL_ADDRESS: process.env.BATON_TEST_TEMPORAL_ADDRESS!,
      BATON_TASK_QUEUE: common.taskQueue,
      ANTHROPIC_BASE_URL: common.standIn.url,
      BATON_CONFIG_DIR: configDir,
      BATON_ARTIFACT_DIR: path.join(disk, 'artifacts'),
      BATON_REPORT_DIR: path.join(disk, 'reports'),
      BATON_TRACES: 'off',
      BATON_STORE: bucketEnv.BATON_STORE!,
      BATON_S3_ENDPOINT: bucketEnv.BATON_S3_ENDPOINT!,
      AWS_REGION: bucketEnv.AWS_REGION!,
      AWS_ACCESS_KEY_ID: bucketEnv.AWS_ACCESS_KEY_ID!,
      AWS_SECRET_ACCESS_KEY: bucketEnv.AWS_SECRET_ACCESS_KEY!,
      ...extra,
    },
  };
}

/** Every object in the bucket: key and raw bytes, as the bucket's owner (or a thief) sees them. */
async function rawObjects(bucket: string): Promise<Map<string, Buffer>> {
  const s3 = testS3Client(endpoint());
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  const objects = new Map<string, Buffer>();
  for (const { Key } of listed.Contents ?? []) {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key }));
    objects.set(Key!, Buffer.from(await got.Body!.transformToByteArray()));
  }
  return objects;
}

describe('worker processes on the bucket', () => {
  const ctx = useTestServer();
  const processes = new Processes();
  let standIn: StandIn;
  let configDir: string;
  beforeAll(async () => {
    standIn = await startStandIn();
    configDir = await sharedConfig();
  });
  afterAll(async () => {
    await processes.killAll();
    await standIn?.close();
  });

  test('two that share only the bucket and Temporal: one runs the steps and the draft, the other, on another disk, publishes the signed-off report', async () => {
    const { bucket, env } = await freshBucket('team');
    const common = { taskQueue: uniqueId('store'), standIn, configDir, bucketEnv: env };
    const a = await workerOn('a', common);
    const first = await processes.startWorker('worker-a', a.env);
    const workflowId = uniqueId('store-shared');
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue: common.taskQueue,
      workflowId,
      args: [{ question: 'Do two disks share a report?', playbook: 'shared' }],
    });
    const atGate = await waitForStatus(
      handle,
      (s) => s.pendingGate?.gate === 'report',
      'the report gate',
      60_000,
    );
    // Anyone with the store settings reads the draft, wherever it was written.
    const reader = storesFromEnv(env);
    expect(atGate.report!.draftPath).toMatch(new RegExp(`^s3://${bucket}/team/reports/`));
    expect((await readPublished(reader.reports, atGate.report!.draftPath!)).split('\n')[0]).toContain(
      '**DRAFT awaiting sign-off: not final.**',
    );
    // npm run baton with the store settings shows the draft; without them, it cannot read it and does not approve.
    const baton = (argv: string[], cliEnv: NodeJS.ProcessEnv) =>
      captured((io) => runCli(argv, { client: ctx.client, env: cliEnv, ...io }));
    expect((await baton(['show', '--full', workflowId], env)).out).toContain('----- draft report -----');
    expect(await baton(['approve', workflowId, '--as', 'alice'], {})).toEqual({
      code: 1,
      out: [],
      err: [
        expect.stringMatching(
          /^not sent: the draft report cannot be read, so no decision is taken on it \(the task waits at the report gate\): report .*\.draft\.md is not in the report store this process reads/,
        ),
      ],
    });
    await first.kill();

    // The second worker has never seen the first one's findings or report body, except in the bucket.
    const b = await workerOn('b', common);
    await processes.startWorker('worker-b', b.env);
    await handle.signal(approve, { by: 'alice', gate: 'report' });
    const result = await handle.result();
    expect(result.outcome).toBe('completed');
    const { runId } = result.provenance;
    const name = `${workflowId}.${runId}`;
    expect(result.reportPath).toBe(`s3://${bucket}/team/reports/${name}.md`);

    // The raw objects in the bucket: the findings and report bodies by hash, the draft, the report and its provenance.
    const keys = [...(await rawObjects(bucket)).keys()].sort();
    expect(keys.filter((k) => k.startsWith('team/reports/'))).toEqual(
      [`${name}.draft.md`, `${name}.draft.provenance.json`, `${name}.md`, `${name}.provenance.json`].map(
        (k) => `team/reports/${k}`,
      ),
    );
    expect(keys.filter((k) => k.startsWith('team/artifacts/')).length).toBeGreaterThanOrEqual(3);
    const report = (await reader.reports.get(`${name}.md`))!.toString();
    expect(report.split('\n')[0]).toMatch(/^> \*\*AI-generated content\.\*\*/);
    expect(report).toContain(`Sign-off: report approved by alice`);
    expect(JSON.parse((await reader.reports.get(`${name}.provenance.json`))!.toString())).toMatchObject({
      workflowId,
      runId,
      reportKind: 'final',
      contentHash: result.provenance.contentHash,
    });
    // Neither worker wrote anything to its own disk.
    for (const disk of [a.disk, b.disk]) expect(await fs.readdir(disk)).toEqual([]);
  }, 180_000);

  test('with payload encryption on, the bucket holds only ciphertext under the payload keys, and readers with the key read it', async () => {
    const { bucket, env } = await freshBucket('sealed');
    const key = randomBytes(32).toString('base64');
    const keys = { BATON_ENCRYPTION_KEY: key, BATON_ENCRYPTION_KEY_ID: 'store-key-1' };
    const common = { taskQueue: uniqueId('store-sealed'), standIn, configDir, bucketEnv: env };
    const publisher = generatePublisherKey();
    await processes.startWorker(
      'worker-sealed',
      (await workerOn('sealed', common, { ...keys, BATON_PUBLISHER_KEY: publisher.pem })).env,
    );
    const keyring = encryptionFromEnv(keys)!;
    const client = new Client({
      connection: ctx.client.connection,
      dataConverter: dataConverterFor(keyring),
    });
    const question = 'Which secret plans does the sealed bucket keep?';
    const handle = await client.workflow.start(researchTask, {
      taskQueue: common.taskQueue,
      workflowId: uniqueId('store-sealed'),
      args: [{ question, playbook: 'shared' }],
    });
    const atGate = await waitForStatus(
      handle,
      (s) => s.pendingGate?.gate === 'report',
      'the report gate',
      60_000,
    );
    await handle.signal(approve, { by: 'alice', gate: 'report' });
    const result = await handle.result();
    expect(result.outcome).toBe('completed');

    const objects = await rawObjects(bucket);
    expect(objects.size).toBeGreaterThanOrEqual(7); // 3+ artifacts, draft and final with provenance
    const reader = storesFromEnv({ ...env, ...keys });
    for (const [objectKey, raw] of objects) {
      // Sealed: the magic, then an encrypted payload naming the payload codec's key id and cipher.
      expect(raw.subarray(0, SEALED_MAGIC.length)).toEqual(SEALED_MAGIC);
      const payload = temporal.api.common.v1.Payload.decode(raw.subarray(SEALED_MAGIC.length));
      const meta = (name: string) => Buffer.from(payload.metadata[name]!).toString('utf8');
      expect([meta('encoding'), meta(KEY_ID_METADATA), meta(CIPHER_METADATA)]).toEqual([
        ENCRYPTED_ENCODING,
        'store-key-1',
        CIPHER,
      ]);
      // No plaintext: not the question, not the label, not the stand-in's findings.
      const text = raw.toString('latin1');
      for (const plain of [question, 'AI-generated content', 'Gather the facts', 'workflowId', 'sha256:']) {
        expect(text).not.toContain(plain);
      }
      // The reader with the key opens each one.
      const store = objectKey.startsWith('sealed/reports/') ? reader.reports : reader.artifacts;
      expect(
        (await store.get(objectKey.replace(/^sealed\/(reports|artifacts)\//, '')))!.length,
      ).toBeGreaterThan(0);
    }
    // The draft and the report read through the store as people read them.
    expect(await readPublished(reader.reports, atGate.report!.draftPath!)).toContain(question);
    expect(await readPublished(reader.reports, result.reportPath!)).toContain(
      'Sign-off: report approved by alice',
    );
    // npm run audit reads the report through the store, with the key it already uses: the hash it
    // computes from the body it read is the one the workflow recorded.
    const audit = await captured((io) =>
      runAudit([handle.workflowId, '--out', '-'], { client, env: { ...env, ...keys }, ...io }),
    );
    const record = JSON.parse(audit.out.join('\n')) as AuditRecord;
    expect(record.verification).toMatchObject({
      file: result.reportPath,
      actual: result.provenance.contentHash,
      expected: result.provenance.contentHash,
    });
    // So does npm run audit -- --verify, given the report's s3:// address.
    const publishers = path.join(
      await fs.mkdtemp(path.join(os.tmpdir(), 'baton-store-publishers-')),
      'publishers.yaml',
    );
    await fs.writeFile(
      publishers,
      `publishers:\n  - id: sealed-worker\n    publicKey: ${publisher.key.publicKey}\n`,
    );
    const verified = await auditVerify(result.reportPath!, publishers, { ...env, ...keys });
    expect(verified).toMatchObject({ code: 0, err: [] });
    // A sealed object moved to another key does not open: a report cannot be swapped for another.
    const sealer = sealerFor(keyring);
    const sealed = sealer.seal('a.md', Buffer.from('report A'));
    expect(sealer.open('a.md', sealed).toString()).toBe('report A');
    expect(() => sealer.open('b.md', sealed)).toThrow(
      'object b.md was sealed for another key ("a.md"): refused',
    );
  }, 180_000);
});
