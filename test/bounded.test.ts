/**
 * Bounded input (issue 14, item 5), on the real dev server with a real worker: ten megabytes of
 * hostile decision signals and oversized `decide` Updates from a non-approver are refused by size
 * before anything from them is stored, recorded by size and sha256 with clipped fields only, and the
 * task still completes with an audit trail (and provenance) of bounded size. Many small refusals
 * keep a bounded number of entries and one running summary.
 */
import { createHash } from 'node:crypto';
import { researchTask } from '../workflows';
import { STEPS_PER_RUN } from '../workflows/batches';
import {
  boundedError,
  boundedOutcome,
  FindingsSchema,
  MAX_SOURCE_BYTES_PER_STEP,
  ReportSchema,
} from '../contract/activities';
import {
  approve,
  audit as auditQuery,
  decide,
  MAX_DECISION_PAYLOAD_BYTES,
  MAX_REFUSED_DECISION_ENTRIES,
  status as statusQuery,
  type AuditEntry,
  type BatchResult,
  type TokenUsage,
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

const ctx = useTestServer();

const MB = 1024 * 1024;
const json = (value: unknown) => JSON.stringify(value);
const bytesOf = (value: unknown) => Buffer.byteLength(json(value), 'utf8');
const sha256Of = (value: unknown) =>
  `sha256:${createHash('sha256').update(json(value), 'utf8').digest('hex')}`;

const refusedDecisions = (audit: AuditEntry[]) =>
  audit.filter((e) => e.event === 'decision' && e.accepted === false);

/** About 1.5 MB of nesting: objects inside arrays inside objects, each level carrying some text. */
function deeplyNested(levels: number, filler: string): unknown {
  let value: unknown = { end: true };
  for (let i = 0; i < levels; i++) value = { by: [value, filler] };
  return value;
}

/** ~1.5 MB payloads of every hostile shape: huge fields, unknown fields, nesting, not an object. */
function hostilePayloads(): { signal: 'approve' | 'reject' | 'requestChanges'; payload: unknown }[] {
  const big = (c: string) => c.repeat(Math.round(1.5 * MB));
  return [
    { signal: 'approve', payload: { by: big('m') } },
    { signal: 'approve', payload: { by: 'mallory', comment: big('c') } },
    { signal: 'reject', payload: { by: 'mallory', [big('k')]: 1 } },
    {
      signal: 'requestChanges',
      payload: { by: 'mallory', comment: 'x', extra: big('é').slice(0, 0.75 * MB) },
    },
    { signal: 'approve', payload: deeplyNested(1000, 'n'.repeat(1500)) },
    { signal: 'reject', payload: big('s') },
    { signal: 'approve', payload: Array.from({ length: 150_000 }, (_, i) => i * 1000) },
  ];
}

test('ten megabytes of hostile signals and Updates from a non-approver: refused by size, audited bounded, the task completes', async () => {
  const { activities } = fakeModelActivities(await tempActivityOptions());
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('bounded'),
      args: [{ question: 'Q?', playbook: 'gated' }],
    });
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');

    const hostile = hostilePayloads();
    let sent = 0;
    for (const { signal, payload } of hostile) {
      await handle.signal(signal, payload);
      sent += bytesOf(payload);
    }
    // A burst over the server's buffered-events size (2 MB by default) makes it fail the workflow
    // task in flight to flush them to history; until a retry completes, queries and Updates are
    // refused ("Workflow Task in failed state"). The worker then handles every signal.
    const status = await pollUntil(
      () => handle.query(statusQuery).catch(() => undefined),
      (s) => s !== undefined && refusedDecisions(s.audit).length === hostile.length,
      'the refusals',
      60_000,
    ).then((s) => s!);
    // Oversized Updates: refused by size before any other check, nothing recorded.
    const updates: unknown[] = [
      { decision: 'approve', by: 'mallory', comment: 'u'.repeat(MB) },
      { decision: 'approve', by: 'alice', comment: 'a'.repeat(MAX_DECISION_PAYLOAD_BYTES) },
      { decision: 'reject', by: 'mallory', junk: 'j'.repeat(1.5 * MB) },
    ];
    for (const request of updates) {
      expect(await refusalOf(handle, request)).toBe(
        `payload too large: ${bytesOf(request)} bytes (max ${MAX_DECISION_PAYLOAD_BYTES})`,
      );
      sent += bytesOf(request);
    }
    expect(sent).toBeGreaterThan(10 * MB);

    const refusals = refusedDecisions(status.audit);
    hostile.forEach(({ signal, payload }, i) => {
      const entry = refusals[i]!;
      expect(entry).toMatchObject({
        gate: 'plan',
        event: 'decision',
        decision: signal,
        via: 'signal',
        accepted: false,
        reason: `payload too large: ${bytesOf(payload)} bytes (max ${MAX_DECISION_PAYLOAD_BYTES})`,
        payload: { bytes: bytesOf(payload), sha256: sha256Of(payload) },
      });
      expect(entry.comment).toBeUndefined();
      expect((entry.by ?? '').length).toBeLessThanOrEqual(64);
      expect(bytesOf(entry)).toBeLessThan(2048);
    });
    expect(refusals[0]!.by).toMatch(/^m{60,64}/); // the huge `by`, clipped
    expect(refusals[1]!.by).toBe('mallory');
    expect(refusals[5]!.by).toBe('(unknown)'); // not an object
    expect(bytesOf(status)).toBeLessThan(64 * 1024);
    expect(status.pendingGate?.approvals).toEqual([]); // nothing counted

    // The gate is as it was: a proper approval passes it, and the task completes.
    await handle.signal(approve, { by: 'alice' });
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'report', 'the report gate', 30_000);
    await handle.executeUpdate(decide, { args: [{ decision: 'approve', by: 'bob' }] });
    const result = await handle.result();
    expect(result.outcome).toBe('completed');
    expect(refusedDecisions(result.provenance.audit)).toHaveLength(hostile.length);
    expect(bytesOf(result.provenance)).toBeLessThan(64 * 1024);
    expect(bytesOf(await handle.query(auditQuery))).toBeLessThan(hostile.length * 2048 + 8192);
  });
}, 180_000);

test('many small refused signals: a bounded number of entries, then one running summary', async () => {
  const { activities } = fakeModelActivities(await tempActivityOptions());
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('bounded-many'),
      args: [{ question: 'Q?', playbook: 'gated' }],
    });
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
    const payloads = Array.from({ length: 500 }, (_, i) => ({ by: `mallory-${i}`, comment: 'let me in' }));
    const total = payloads.reduce((sum, p) => sum + bytesOf(p), 0);
    for (let i = 0; i < payloads.length; i += 25) {
      await Promise.all(payloads.slice(i, i + 25).map((p) => handle.signal(approve, p)));
    }
    const more = payloads.length - MAX_REFUSED_DECISION_ENTRIES;
    const audit = await pollUntil(
      () => handle.query(auditQuery),
      (a) => refusedDecisions(a).some((e) => e.more?.count === more),
      'the summary of refusals',
      60_000,
    );
    const refusals = refusedDecisions(audit);
    expect(refusals).toHaveLength(MAX_REFUSED_DECISION_ENTRIES + 1);
    expect(refusals.slice(0, -1).every((e) => e.payload && e.reason?.includes('not an approver'))).toBe(true);
    expect(refusals.at(-1)).toMatchObject({
      event: 'decision',
      accepted: false,
      more: { count: more, bytes: total - refusals.slice(0, -1).reduce((s, e) => s + e.payload!.bytes, 0) },
      reason: expect.stringMatching(new RegExp(`^${more} more refused decisions, \\d+ bytes in all$`)),
    });
    expect(bytesOf(audit)).toBeLessThan(MAX_REFUSED_DECISION_ENTRIES * 1024 + 8192);

    await handle.signal(approve, { by: 'alice' });
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'report', 'the report gate', 30_000);
    await handle.signal(approve, { by: 'bob' });
    expect((await handle.result()).outcome).toBe('completed');
    expect(bytesOf((await handle.query(statusQuery)).audit)).toBeLessThan(
      MAX_REFUSED_DECISION_ENTRIES * 1024 + 8192,
    );
  });
}, 180_000);

/** Temporal's default limit on one payload (`limit.blobSize.error`). */
const TEMPORAL_PAYLOAD_LIMIT = 2 * MB;

test("a batch child's result stays under Temporal's 2 MB payload limit at the schemas' worst", () => {
  // The character whose JSON is longest (`\u0001`: six bytes), everywhere a model or a person writes.
  const worst = (chars: number) => '\u0001'.repeat(chars);
  const findings = FindingsSchema.parse({
    summary: worst(600),
    findings: 'by reference',
    sources: Array.from({ length: 20 }, () => ({ title: worst(300), url: worst(2000) })),
  });
  expect(bytesOf(findings.sources)).toBeGreaterThan(250 * 1024); // before the caps: ~260 KB a step
  // A decomposed step's summary is its sub-report's, which may be longer.
  const summary = ReportSchema.shape.summary.parse(worst(1000));
  expect(boundedOutcome(summary, findings.sources).sources).toEqual([]); // not even the first fits
  // Sources that fill the cap: the first ones that fit are kept.
  const fitting = FindingsSchema.shape.sources.parse(
    Array.from({ length: 20 }, () => ({ title: worst(20), url: worst(100) })),
  );
  const outcome = boundedOutcome(summary, fitting);
  expect(bytesOf(outcome.sources)).toBeLessThanOrEqual(MAX_SOURCE_BYTES_PER_STEP);
  expect(bytesOf(outcome.sources)).toBeGreaterThan(MAX_SOURCE_BYTES_PER_STEP - 1024);
  expect(outcome.sourcesNote).toMatch(/^sources clipped to \d+ of 20/);
  const usage: TokenUsage = {
    inputTokens: Number.MAX_SAFE_INTEGER,
    outputTokens: Number.MAX_SAFE_INTEGER,
    cacheReadInputTokens: Number.MAX_SAFE_INTEGER,
    cacheCreationInputTokens: Number.MAX_SAFE_INTEGER,
    costUsd: Number.MAX_VALUE,
  };
  const step: BatchResult['steps'][number] = {
    id: 'x'.repeat(32),
    revision: Number.MAX_SAFE_INTEGER,
    attempt: Number.MAX_SAFE_INTEGER,
    agent: 'a'.repeat(40),
    decompose: true,
    state: 'skipped',
    // Temporal's longest workflow id (1000 bytes), every one of them escaped.
    childWorkflowId: worst(1000),
    ...outcome,
    result: { id: `sha256:${'f'.repeat(64)}`, bytes: Number.MAX_SAFE_INTEGER },
    sourcesRef: { id: `sha256:${'f'.repeat(64)}`, bytes: Number.MAX_SAFE_INTEGER },
    retrievedRef: { id: `sha256:${'f'.repeat(64)}`, bytes: Number.MAX_SAFE_INTEGER },
    retrieved: Number.MAX_SAFE_INTEGER,
    usage,
    error: boundedError(worst(100_000)),
    startedAt: new Date(0).toISOString(),
    finishedAt: new Date(0).toISOString(),
  };
  const agents = Object.fromEntries(
    Array.from({ length: 20 }, (_, i) => [`agent-${i}`.padEnd(40, 'x'), usage]),
  );
  const result: BatchResult = {
    steps: Array.from({ length: STEPS_PER_RUN }, () => step),
    usage: { ...usage, byAgent: agents },
  };
  const bytes = bytesOf(result);
  console.log(
    `worst-case researchBatch result: ${bytes} bytes for ${STEPS_PER_RUN} steps (${bytesOf(step)} a step)`,
  );
  expect(bytes).toBeLessThan(0.85 * TEMPORAL_PAYLOAD_LIMIT);
});
