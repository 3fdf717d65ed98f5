/**
 * `npm run audit`: the audit export, run in-process through `runAudit` against the real test server
 * and real workers whose model activities are plain functions; and as a script, for what needs a
 * process (help without a server, an unreachable server). The pure parts (the hash check, the
 * labels, argument parsing, which source wins) are tested directly.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sha256 } from '../activities/artifacts';
import { BODY_END, BODY_START, renderReport } from '../activities/report';
import {
  AUDIT_FORMAT,
  type AuditRecord,
  type AuditSources,
  type HistoryFacts,
  type Publishers,
} from '../cli/audit-record';
import { buildAuditRecord } from '../cli/audit-build';
import { explicitLabels, embeddedProvenance, reportBody, verifyReport } from '../cli/audit-verify';
import { signProvenance } from '../activities/signing';
import { defaultOutPath, parseAuditArgs, runAudit, USAGE, type AuditDeps } from '../cli/audit';
import { researchTask } from '../workflows';
import {
  approve,
  decide,
  status as statusQuery,
  type AuditEntry,
  type Provenance,
  type ResearchTaskResult,
} from '../contract/messages';
import {
  DEFAULT_PLAN,
  fakeModelActivities,
  tempActivityOptions,
  uniqueId,
  useTestServer,
  waitForStatus,
  withWorker,
  captured,
  type CapturedRun,
  runScript,
  testPublishersFile,
  TEST_PUBLISHER,
} from './helpers';

const ctx = useTestServer();

type Run = CapturedRun;

/** A config folder whose publishers.yaml lists the key test workers sign with. */
let publishersDir: string;
beforeAll(async () => {
  publishersDir = path.dirname(await testPublishersFile());
});

/** Runs one command line in-process, collecting what it prints. */
function audit(argv: string[], deps: Partial<Omit<AuditDeps, 'out' | 'err'>> = {}): Promise<Run> {
  return captured((io) =>
    runAudit(argv, { client: ctx.client, env: { BATON_CONFIG_DIR: publishersDir }, ...deps, ...io }),
  );
}

/** Exports a task to a fresh file and reads it back. */
async function exportTask(
  workflowId: string,
  deps: Partial<Omit<AuditDeps, 'out' | 'err'>> = {},
  extra: string[] = [],
): Promise<{ run: Run; file: string; record: AuditRecord }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-audit-'));
  const file = path.join(dir, 'audit.json');
  const run = await audit([workflowId, '--out', file, ...extra], deps);
  const record = JSON.parse(await fs.readFile(file, 'utf8')) as AuditRecord;
  return { run, file, record };
}

const decisions = (audit: AuditEntry[] | null): AuditEntry[] =>
  (audit ?? []).filter((e) => e.event === 'decision');

const start = (taskQueue: string, playbook = 'gated') =>
  ctx.client.workflow.start(researchTask, {
    taskQueue,
    workflowId: uniqueId('audit'),
    args: [{ question: 'How do A and B compare?', playbook }],
  });

describe('audit export against real tasks', () => {
  test('a gated task run to completion: plan, decisions, steps, models, usage, labels, provenance, verified; then tampered', async () => {
    const options = await tempActivityOptions();
    const { activities } = fakeModelActivities(options);
    const { handle, result } = await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue);
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
      // A refused decision by signal, an approval by Update, and the report signed off by signal.
      await handle.signal(approve, { by: 'mallory', gate: 'plan' });
      await waitForStatus(handle, (s) => decisions(s.audit).length === 1, "mallory's refused decision");
      await handle.executeUpdate(decide, {
        args: [{ decision: 'approve', by: 'alice', gate: 'plan', comment: 'fine' }],
      });
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'report', 'the report gate');
      await handle.signal(approve, { by: 'bob', gate: 'report' });
      const result: ResearchTaskResult = await handle.result();

      // With the workers' artifact store, where the citation re-check reads the retrieval record.
      const env = { BATON_CONFIG_DIR: publishersDir, BATON_ARTIFACT_DIR: options.artifactDir };
      const { run, file, record } = await exportTask(handle.workflowId, { env });
      expect(run).toEqual({
        code: 0,
        out: [
          `wrote ${file}`,
          `task ${handle.workflowId} (run ${handle.firstExecutionRunId}): COMPLETED, outcome completed, phase completed`,
          'plan: 3 step(s); steps recorded: 3; decisions: 3',
          `report ${result.reportPath} (final): verified: the sha256 of the body of ${result.reportPath} equals the content hash recorded in the workflow result (provenance.contentHash); the provenance is signed by publisher "test-worker" (ed25519 key ${TEST_PUBLISHER.keyId}, listed in ${path.relative(process.cwd(), path.join(publishersDir, 'publishers.yaml'))})`,
          `citations: 0 cited, every one backed by the retrieval record ${result.provenance.citations!.retrievalRecord.id}`,
        ],
        err: [],
      });

      expect(record).toMatchObject({
        format: AUDIT_FORMAT,
        complete: true,
        missing: [],
        workflow: {
          namespace: 'default',
          workflowId: handle.workflowId,
          runId: handle.firstExecutionRunId,
          type: 'researchTask',
          status: 'COMPLETED',
          taskQueue,
          parent: null,
        },
        task: {
          question: 'How do A and B compare?',
          playbook: 'gated',
          depth: 0,
          phase: 'completed',
          outcome: 'completed',
          error: null,
        },
        configDigest: result.provenance.configDigest,
        plan: DEFAULT_PLAN,
        planAttempts: 1,
        pendingGate: null,
        approvals: result.provenance.approvals,
        sources: { steps: 'status query', provenance: 'workflow result' },
      });
      expect(Date.parse(record.workflow.closeTime!)).toBeGreaterThanOrEqual(
        Date.parse(record.workflow.startTime),
      );
      // An unsigned playbook: each approval says it was taken as given.
      expect(record.approvals?.map((a) => [a.gate, a.by, a.check.signing, a.check.verified])).toEqual([
        ['plan', 'alice', 'unsigned', null],
        ['report', 'bob', 'unsigned', null],
      ]);
      // Every decision, with who made it, how, and whether it was accepted; and the gate events.
      expect(decisions(record.audit).map((e) => [e.gate, e.decision, e.by, e.via, e.accepted])).toEqual([
        ['plan', 'approve', 'mallory', 'signal', false],
        ['plan', 'approve', 'alice', 'update', true],
        ['report', 'approve', 'bob', 'signal', true],
      ]);
      expect(decisions(record.audit)[1]!.comment).toBe('fine');
      expect(record.audit!.map((e) => e.event)).toEqual(
        expect.arrayContaining(['gate-opened', 'gate-closed']),
      );
      expect(record.audit).toEqual(await handle.query(statusQuery).then((s) => s.audit));

      // Steps: agent, model, question, state, summary, sources, usage, timings.
      expect(record.steps).toHaveLength(3);
      for (const [i, step] of record.steps!.entries()) {
        const planned = DEFAULT_PLAN.steps[i]!;
        expect(step).toMatchObject({
          id: planned.id,
          agent: planned.agent,
          model: 'test-specialist-model',
          question: planned.question,
          dependsOn: planned.dependsOn,
          state: 'done',
          summary: `summary of ${planned.id}`,
          sources: [{ title: `source for ${planned.id}` }],
          usage: { inputTokens: 10, outputTokens: 5 },
          childWorkflowIds: [],
          error: null,
        });
        expect(step.durationMs).toBeGreaterThanOrEqual(0);
        expect(step.result?.id).toMatch(/^sha256:[0-9a-f]{64}$/);
      }

      expect(record.models).toEqual({
        lead: {
          model: 'test-lead-model',
          role: 'Plans and synthesizes.',
          lead: true,
          from: 'provenance',
          answeredAs: ['test-lead-model'],
        },
        analyst: expect.objectContaining({ model: 'test-specialist-model', lead: false, from: 'provenance' }),
        researcher: expect.objectContaining({
          model: 'test-specialist-model',
          answeredAs: ['test-specialist-model'],
        }),
      });
      // Plan, three steps and one synthesis: 10 in / 5 out each.
      expect(record.usage).toEqual({
        inputTokens: 50,
        outputTokens: 25,
        byAgent: {
          lead: { inputTokens: 20, outputTokens: 10 },
          researcher: { inputTokens: 20, outputTokens: 10 },
          analyst: { inputTokens: 10, outputTokens: 5 },
        },
      });
      // The history, read without a worker, sums to the same.
      expect(record.history?.usage).toEqual(record.usage);

      expect(record.report).toEqual({
        kind: 'final',
        path: result.reportPath,
        draftPath: null,
        artifact: result.report,
        contentHash: result.provenance.contentHash,
      });
      expect(record.report?.contentHash).toBe(result.report?.id);
      expect(record.labels.explicit?.aiGenerated).toBe(true);
      expect(record.labels.explicit?.top).toMatch(
        /^> \*\*AI-generated content\.\*\* This report was written by AI agents \(models: test-lead-model, test-specialist-model\)/,
      );
      expect(record.labels.explicit?.top).toContain('Sign-off: plan approved by alice at');
      expect(record.labels.explicit?.bottom).toContain(
        `Content hash (sha256 of the text between the body markers): \`${result.provenance.contentHash}\``,
      );
      expect(record.labels.provenance).toEqual(result.provenance);
      expect(record.labels.provenanceInReport).toEqual({ found: true, matchesResult: true });
      expect(record.labels.provenanceFile).toEqual({
        path: result.reportPath!.replace(/\.md$/, '.provenance.json'),
        found: true,
        matchesResult: true,
      });
      expect(record.verification).toEqual({
        verified: true,
        check: 'match',
        reason: expect.any(String),
        file: result.reportPath,
        kind: 'final',
        expected: result.provenance.contentHash,
        expectedFrom: 'the workflow result (provenance.contentHash)',
        actual: result.provenance.contentHash,
        signature: {
          verified: true,
          keyId: TEST_PUBLISHER.keyId,
          publisher: 'test-worker',
          reason: expect.stringContaining('the provenance is signed by publisher "test-worker"'),
        },
      });

      // What the history holds: the decisions as delivered, the draft and the final report.
      expect(record.history?.signals.map((s) => [s.name, (s.payload as { by: string }).by])).toEqual([
        ['approve', 'mallory'],
        ['approve', 'bob'],
      ]);
      expect(record.history?.updates).toEqual([
        expect.objectContaining({
          name: 'decide',
          request: { decision: 'approve', by: 'alice', gate: 'plan', comment: 'fine' },
          result: expect.objectContaining({ accepted: true, gate: 'plan', outcome: 'approved' }),
          failure: null,
        }),
      ]);
      expect(record.history?.publications.map((p) => p.kind)).toEqual(['draft', 'final']);
      expect(record.history?.stepRuns.map((r) => [r.step, r.outcome, r.model])).toEqual([
        ['s1', 'completed', 'test-specialist-model'],
        ['s2', 'completed', 'test-specialist-model'],
        ['s3', 'completed', 'test-specialist-model'],
      ]);
      expect(record.history?.close).toMatchObject({ event: 'completed', failure: null });
      return { handle, result };
    });

    // Tampered body: the export still completes, says why the report does not verify, exits 3.
    const original = await fs.readFile(result.reportPath!, 'utf8');
    await fs.writeFile(result.reportPath!, original.replace('Claim from s2', 'Claim from nowhere'), 'utf8');
    const tampered = await exportTask(handle.workflowId, { workerTimeoutMs: 1_000 });
    expect(tampered.run.code).toBe(3);
    expect(tampered.record.verification).toMatchObject({
      verified: false,
      check: 'mismatch',
      expected: result.provenance.contentHash,
      actual: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
    });
    expect(tampered.record.verification.actual).not.toBe(result.provenance.contentHash);
    expect(tampered.run.err).toContain(
      `report NOT verified (mismatch): ${tampered.record.verification.reason}`,
    );
    expect(tampered.record.verification.reason).toContain('is not the one published');
    // Only the body changed: the labels and the provenance inside the file still match the result.
    expect(tampered.record.labels.provenanceInReport).toEqual({ found: true, matchesResult: true });

    // An untouched copy given with --report verifies against the same recorded hash.
    const copy = path.join(path.dirname(tampered.file), 'copy.md');
    await fs.writeFile(copy, original, 'utf8');
    const checked = await exportTask(handle.workflowId, { workerTimeoutMs: 1_000 }, ['--report', copy]);
    expect(checked.run.code).toBe(0);
    expect(checked.record.verification).toMatchObject({ verified: true, check: 'match', file: copy });
  });

  test('a task waiting at its gates: the plan gate, then the report gate with a draft that verifies', async () => {
    const options = await tempActivityOptions();
    const { activities } = fakeModelActivities(options);
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue);
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');

      const atPlan = await exportTask(handle.workflowId);
      expect(atPlan.run.code).toBe(0);
      expect(atPlan.run.err).toEqual([]);
      expect(atPlan.run.out).toContain('report: none (no report has been published yet)');
      expect(atPlan.record).toMatchObject({
        complete: true,
        workflow: { status: 'RUNNING', closeTime: null },
        task: { phase: 'awaiting-plan-approval', outcome: null },
        plan: DEFAULT_PLAN,
        pendingGate: { gate: 'plan', approvers: ['alice', 'bob'], quorum: 1, approvals: [] },
        approvals: null,
        steps: [],
        report: null,
        labels: { explicit: null, provenance: null, provenanceInReport: null, provenanceFile: null },
        verification: { verified: false, check: 'no-report', file: null },
      });
      // Models come from the config snapshot the task loaded: no provenance exists yet.
      expect(atPlan.record.models.lead).toEqual({
        model: 'test-lead-model',
        role: 'Plans and synthesizes.',
        lead: true,
        from: 'config snapshot',
        answeredAs: ['test-lead-model'],
      });
      expect(atPlan.record.audit?.map((e) => [e.gate, e.event])).toEqual([['plan', 'gate-opened']]);

      await handle.signal(approve, { by: 'alice', gate: 'plan' });
      const atReport = await waitForStatus(
        handle,
        (s) => s.pendingGate?.gate === 'report',
        'the report gate',
      );
      const { run, record } = await exportTask(handle.workflowId);
      expect(run.code).toBe(0);
      expect(record).toMatchObject({
        complete: true,
        missing: [],
        workflow: { status: 'RUNNING' },
        task: { phase: 'awaiting-report-approval' },
        pendingGate: { gate: 'report' },
        report: {
          kind: 'draft',
          path: null,
          draftPath: atReport.report!.draftPath,
          artifact: atReport.report!.artifact,
        },
        verification: {
          verified: true,
          check: 'match',
          kind: 'draft',
          file: atReport.report!.draftPath,
          expected: atReport.report!.artifact.id,
          expectedFrom: 'the status query (report.artifact.id)',
        },
      });
      expect(record.steps?.map((s) => s.state)).toEqual(['done', 'done', 'done']);
      expect(decisions(record.audit).map((e) => [e.gate, e.by, e.accepted])).toEqual([
        ['plan', 'alice', true],
      ]);
      expect(record.labels.explicit?.top).toContain('**DRAFT awaiting sign-off: not final.**');
      // Without a workflow result, the provenance is the draft's own; it is compared with nothing.
      expect(record.labels.provenance).toMatchObject({ reportKind: 'draft', workflowId: handle.workflowId });
      expect(record.labels.provenanceInReport).toEqual({ found: true, matchesResult: null });
      await handle.terminate('test over');
    });
  });

  test('a decomposed step: its child workflow id in the step and the history; the child exported on its own', async () => {
    const top = {
      rationale: 'One big step.',
      steps: [
        { id: 'big', agent: 'researcher', question: 'A large sub-question.', dependsOn: [], decompose: true },
      ],
    };
    const options = await tempActivityOptions();
    const { activities } = fakeModelActivities(options, {
      plan: (input) => ({
        valid: true,
        plan: input.limits.depth === 0 ? top : DEFAULT_PLAN,
        usage: { inputTokens: 1, outputTokens: 1 },
        model: input.lead.model,
      }),
    });
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue, 'open');
      const result = await handle.result();
      const childId = `${handle.workflowId}/step-big`;
      const { run, record } = await exportTask(handle.workflowId);
      expect(run.code).toBe(0);
      expect(record.steps).toEqual([
        expect.objectContaining({ id: 'big', state: 'done', decompose: true, childWorkflowIds: [childId] }),
      ]);
      expect(record.history?.stepRuns).toEqual([
        expect.objectContaining({
          step: 'big',
          agent: 'researcher',
          question: 'A large sub-question.',
          via: 'child workflow',
          childWorkflowId: childId,
          outcome: 'completed',
        }),
      ]);
      // The child's usage (its plan, three steps, its synthesis) is in the parent's, as the workflow sums it.
      expect(record.usage).toEqual(result.provenance.usage);
      expect(record.history?.usage).toEqual(result.provenance.usage);
      expect(record.verification.verified).toBe(true);
      // No gates in this playbook: no decisions, and the label says no sign-off was required.
      expect(decisions(record.audit)).toEqual([]);
      expect(record.labels.explicit?.top).toContain(
        'Sign-off: no human sign-off was required by the playbook.',
      );

      const child = await exportTask(childId);
      expect(child.run.code).toBe(0);
      expect(child.record).toMatchObject({
        workflow: { type: 'researchSubtask', status: 'COMPLETED', parent: { workflowId: handle.workflowId } },
        task: { question: 'A large sub-question.', playbook: 'open', depth: 1, phase: 'completed' },
        plan: DEFAULT_PLAN,
        // The sub-report is an artifact for the parent's synthesis, never a published file.
        report: {
          kind: null,
          path: null,
          draftPath: null,
          contentHash: null,
          artifact: { id: expect.stringMatching(/^sha256:/) },
        },
        verification: { verified: false, check: 'no-report' },
        missing: [
          {
            part: 'result',
            reason: `a researchSubtask task has no report or provenance of its own: its parent's result carries them (export ${handle.workflowId} for them)`,
          },
        ],
      });
      expect(child.record.steps?.map((s) => s.id)).toEqual(['s1', 's2', 's3']);
      expect(child.record.models.lead).toMatchObject({ model: 'test-lead-model', from: 'config snapshot' });
    });
  });

  test('an unknown workflow id: a clear error, exit 1, nothing written', async () => {
    const missing = uniqueId('no-such-task');
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-audit-'));
    const file = path.join(dir, 'audit.json');
    expect(await audit([missing, '--out', file])).toEqual({
      code: 1,
      out: [],
      err: [`error: no task with workflow id "${missing}" on this namespace (default)`],
    });
    await expect(fs.access(file)).rejects.toThrow();
  });

  test('no worker: a completed task and a task at its gate are exported from the history and the result, saying what is missing', async () => {
    const options = await tempActivityOptions();
    const { activities } = fakeModelActivities(options);
    let taskQueue = '';
    const { done, waiting } = await withWorker(ctx, activities, async (queue) => {
      taskQueue = queue;
      const done = await start(queue);
      await waitForStatus(done, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
      await done.signal(approve, { by: 'alice' });
      await waitForStatus(done, (s) => s.pendingGate?.gate === 'report', 'the report gate');
      await done.signal(approve, { by: 'bob' });
      await done.result();

      const waiting = await start(queue);
      await waitForStatus(waiting, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
      await waiting.signal(approve, { by: 'mallory' });
      await waitForStatus(waiting, (s) => decisions(s.audit).length === 1, "mallory's refused decision");
      return { done, waiting };
    });
    // The worker has stopped: nobody answers queries on this queue any more.
    try {
      const result = await done.result();
      const completed = await exportTask(done.workflowId, { workerTimeoutMs: 1_000 });
      expect(completed.run.code).toBe(0);
      expect(completed.record.complete).toBe(false);
      expect(completed.record.missing.map((m) => m.part)).toEqual(['status', 'steps']);
      expect(completed.record.missing[0]!.reason).toContain(`task queue "${taskQueue}"`);
      expect(completed.record.missing[0]!.reason).toMatch(/no worker/);
      expect(completed.run.err).toEqual(
        completed.record.missing.map((m) => `warning: incomplete export: ${m.part}: ${m.reason}`),
      );
      expect(completed.record).toMatchObject({
        workflow: { status: 'COMPLETED' },
        task: { question: 'How do A and B compare?', playbook: 'gated', phase: null, outcome: 'completed' },
        configDigest: result.provenance.configDigest,
        plan: DEFAULT_PLAN,
        approvals: result.provenance.approvals,
        audit: result.provenance.audit,
        steps: null,
        usage: result.provenance.usage,
        report: { kind: 'final', path: result.reportPath, contentHash: result.provenance.contentHash },
        labels: { provenance: result.provenance },
        verification: { verified: true, check: 'match' },
        sources: {
          plan: 'event history',
          audit: 'workflow result (provenance.audit)',
          steps: null,
          usage: 'workflow result',
        },
      });
      expect(completed.record.models.researcher).toMatchObject({
        model: 'test-specialist-model',
        from: 'provenance',
      });
      // Each step's run as the history records it.
      expect(completed.record.history?.stepRuns.map((r) => [r.step, r.agent, r.outcome, r.summary])).toEqual([
        ['s1', 'researcher', 'completed', 'summary of s1'],
        ['s2', 'researcher', 'completed', 'summary of s2'],
        ['s3', 'analyst', 'completed', 'summary of s3'],
      ]);

      const gate = await exportTask(waiting.workflowId, { workerTimeoutMs: 1_000 });
      expect(gate.run.code).toBe(0);
      expect(gate.record.missing.map((m) => m.part)).toEqual([
        'status',
        'steps',
        'phase and pending gate',
        'audit',
      ]);
      expect(gate.record.missing.find((m) => m.part === 'audit')!.reason).toContain('history.signals');
      expect(gate.record).toMatchObject({
        workflow: { status: 'RUNNING' },
        task: { question: 'How do A and B compare?', playbook: 'gated', phase: null, outcome: null },
        plan: DEFAULT_PLAN,
        pendingGate: null,
        audit: null,
        usage: { inputTokens: 10, outputTokens: 5, byAgent: { lead: { inputTokens: 10, outputTokens: 5 } } },
        sources: {
          question: 'event history (input)',
          configDigest: 'event history (config snapshot)',
          usage: 'event history (summed from activity and child results)',
        },
        verification: { verified: false, check: 'no-report' },
      });
      expect(gate.record.configDigest).toBe(result.provenance.configDigest);
      expect(gate.record.models.lead).toMatchObject({ model: 'test-lead-model', from: 'config snapshot' });
      // The refused decision is in the history as delivered.
      expect(gate.record.history?.signals).toEqual([
        expect.objectContaining({ name: 'approve', payload: { by: 'mallory' } }),
      ]);
    } finally {
      await waiting.terminate('test over');
    }
  });

  test('no worker has ever polled the queue: the status query is not even waited for', async () => {
    const taskQueue = uniqueId('nobody-polls');
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('audit-idle'),
      args: [{ question: 'Anyone there?' }],
    });
    try {
      // A minute of patience would be spent if the export waited for a worker: it must not.
      const began = Date.now();
      const { run, record } = await exportTask(handle.workflowId, { workerTimeoutMs: 60_000 });
      expect(Date.now() - began).toBeLessThan(30_000);
      expect(run.code).toBe(0);
      expect(record.missing[0]).toEqual({
        part: 'status',
        reason: `no worker polls task queue "${taskQueue}" (the server has seen none lately), and only a worker answers the status query; start a worker on task queue "${taskQueue}" (npm run worker with BATON_TASK_QUEUE=${taskQueue}) and export again for the full record`,
      });
      expect(record.missing.map((m) => m.part)).toEqual([
        'status',
        'steps',
        'phase and pending gate',
        'audit',
        'plan',
        'models',
      ]);
      expect(record.task).toMatchObject({ question: 'Anyone there?', playbook: 'research-brief' });
      expect(record.history?.config).toBeNull();
    } finally {
      await handle.terminate('test over');
    }
  });

  test('the default output file is beside the reports, named after the task', async () => {
    const taskQueue = uniqueId('nobody-polls');
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: `${uniqueId('audit')}/with slash`,
      args: [{ question: 'Where does it go?' }],
    });
    try {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-reports-'));
      const env = { BATON_REPORT_DIR: path.join(dir, 'reports') };
      const expected = defaultOutPath(handle.workflowId, env);
      expect(path.dirname(expected)).toBe(env.BATON_REPORT_DIR);
      expect(path.basename(expected)).toBe(
        `${handle.workflowId.replace('/with slash', '_with_slash')}.audit.json`,
      );
      const run = await audit([handle.workflowId], { env });
      expect(run.code).toBe(0);
      expect(run.out[0]).toBe(`wrote ${expected}`);
      expect(JSON.parse(await fs.readFile(expected, 'utf8'))).toMatchObject({
        format: AUDIT_FORMAT,
        workflow: { workflowId: handle.workflowId },
      });
      // `--out -`: the JSON alone on standard output, everything else on standard error.
      const piped = await audit([handle.workflowId, '--out', '-'], { env });
      expect(piped.code).toBe(0);
      expect(piped.out).toHaveLength(1);
      expect(JSON.parse(piped.out[0]!)).toMatchObject({ format: AUDIT_FORMAT });
      expect(piped.err[0]).toMatch(/^task .* RUNNING/);
    } finally {
      await handle.terminate('test over');
    }
  });
});

describe('audit command line', () => {
  test('help answers 0; bad flags name the problem and answer 2', async () => {
    for (const argv of [['--help'], ['-h'], ['some-id', '--help']]) {
      expect(await audit(argv)).toEqual({ code: 0, out: USAGE.split('\n'), err: [] });
    }
    const cases: [string[], string][] = [
      [[], 'error: a workflow id is required'],
      [['a', 'b'], 'error: unexpected argument "b"'],
      [['a', '--format', 'xml'], 'error: unknown option --format'],
      [['a', '-o', 'x'], 'error: unknown option -o'],
      [['a', '--out'], 'error: --out needs a value'],
      [['a', '--out', '--report', 'r.md'], 'error: --out needs a value'],
      [['a', '--out='], 'error: --out needs a value'],
      [['a', '--out', 'x', '--out', 'y'], 'error: --out given twice'],
      [['--out', 'x'], 'error: a workflow id is required'],
      [
        ['--verify', 'r.md', 'a'],
        'error: --verify checks one report file offline: it takes no a workflow id ("a")',
      ],
      [
        ['--verify', 'r.md', '--out', 'x'],
        'error: --verify checks one report file offline: it takes no --out',
      ],
      [['--verify', 'r.md', '--verify', 's.md'], 'error: --verify given twice'],
      [['--verify='], 'error: --verify needs a value'],
    ];
    for (const [argv, message] of cases) {
      const run = await audit(argv);
      expect({ argv, code: run.code, first: run.err[0] }).toEqual({ argv, code: 2, first: message });
      expect(run.err.slice(2)).toEqual(USAGE.split('\n'));
      expect(run.out).toEqual([]);
    }
    expect(parseAuditArgs(['--out=x.json', 'wf-1', '--report', 'r.md'])).toEqual({
      workflowId: 'wf-1',
      out: 'x.json',
      report: 'r.md',
    });
    expect(parseAuditArgs(['--', '--odd-id'])).toEqual({ workflowId: '--odd-id' });
    expect(parseAuditArgs(['--verify', 'r.md', '--publishers', 'p.yaml'])).toEqual({
      verify: 'r.md',
      publishers: 'p.yaml',
    });
  });

  test('the script itself: help without a server, an unreachable server, a real connection', async () => {
    const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      runScript('cli/audit.ts', args, { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', ...env });
    // Nothing listens at 127.0.0.1:1.
    const help = await run(['--help']);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toContain('usage: npm run audit -- <workflow id>');
    expect(await run(['--bogus'])).toMatchObject({ code: 2, stdout: '' });
    const down = await run(['some-task']);
    expect(down.code).toBe(1);
    expect(down.stdout).toBe('');
    expect(down.stderr).toMatch(
      /^error: cannot reach the Temporal server at 127\.0\.0\.1:1 within 10 s \(.+\): is it running, and are TEMPORAL_ADDRESS and TEMPORAL_TLS\* right\?\n$/,
    );
    const missing = uniqueId('no-such-task');
    const unknown = await run([missing], { TEMPORAL_ADDRESS: process.env.BATON_TEST_TEMPORAL_ADDRESS });
    expect(unknown).toEqual({
      code: 1,
      stdout: '',
      stderr: `error: no task with workflow id "${missing}" on this namespace (default)\n`,
    });
  });
});

describe('audit record (pure)', () => {
  const provenance: Provenance = {
    generator: 'baton',
    aiGenerated: true,
    workflowId: 'wf-1',
    runId: 'run-1',
    question: 'Q?',
    playbook: 'gated',
    configDigest: `sha256:${'0'.repeat(64)}`,
    agents: [{ id: 'lead', model: 'm-lead', role: 'Leads.' }],
    usage: { inputTokens: 1, outputTokens: 2, byAgent: { lead: { inputTokens: 1, outputTokens: 2 } } },
    approvals: [{ gate: 'report', by: 'alice', at: '2026-01-01T00:00:00.000Z' }],
    audit: [],
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:01:00.000Z',
    reportKind: 'final',
  };
  const body =
    '# Title\n\nA claim [step:s1] with <!-- a comment --> and trailing spaces  \n\n## References\n- s1';
  const hash = `sha256:${sha256(body)}`;
  const signed = signProvenance({ ...provenance, contentHash: hash }, TEST_PUBLISHER);
  const text = renderReport(body, signed);
  const publishers: Publishers = {
    ok: true,
    value: { list: [{ id: 'test-worker', publicKey: TEST_PUBLISHER.publicKey }], from: 'P' },
  };

  test('the body between the markers is what the content hash covers; edits anywhere in it are caught', () => {
    expect(reportBody(text)).toEqual({ ok: true, body });
    const file = 'r.md';
    const ok = verifyReport({
      file,
      kind: 'final',
      text: { ok: true, value: text },
      expected: { hash, from: 'X' },
      publishers,
    });
    expect(ok).toMatchObject({ verified: true, check: 'match', actual: hash });
    // The labels are outside the body, but a function of the signed provenance: editing them is caught.
    const relabelled = text.replace(/Sign-off: [^.]*\./g, 'Sign-off: nobody.');
    expect(
      verifyReport({
        file,
        kind: 'final',
        text: { ok: true, value: relabelled },
        expected: { hash, from: 'X' },
        publishers,
      }),
    ).toMatchObject({
      verified: false,
      check: 'label',
      reason: expect.stringContaining('r.md is not a report as Baton publishes it: the text above the body'),
    });
    for (const edited of [
      text.replace('A claim', 'A claim!'),
      text.replace('spaces  \n', 'spaces\n'),
      text.replace(`${BODY_START}\n\n`, `${BODY_START}\n\n\n`),
    ]) {
      expect(
        verifyReport({
          file,
          kind: 'final',
          text: { ok: true, value: edited },
          expected: { hash, from: 'X' },
          publishers,
        }),
      ).toMatchObject({
        verified: false,
        check: 'mismatch',
        reason: `the body of r.md is not the one published: its sha256 is ${verifyReport({ file, kind: 'final', text: { ok: true, value: edited }, expected: null, publishers }).actual}, X records ${hash}`,
      });
    }
    // Line endings converted by a checkout: not verified, but the reason says what happened.
    expect(
      verifyReport({
        file,
        kind: 'final',
        text: { ok: true, value: text.replace(/\n/g, '\r\n') },
        expected: { hash, from: 'X' },
        publishers,
      }),
    ).toMatchObject({
      verified: false,
      check: 'malformed',
      reason: expect.stringContaining(
        'its line endings were converted to CRLF: with LF line endings the body is the one published',
      ),
    });
    expect(
      verifyReport({
        file,
        kind: 'final',
        text: { ok: true, value: text.replace(BODY_END, '') },
        expected: { hash, from: 'X' },
        publishers,
      }),
    ).toMatchObject({
      verified: false,
      check: 'label',
      reason: `r.md is not a report as Baton publishes it: the text below the body (end marker, label, provenance block) is not what Baton writes for the provenance in the file: line 12 should be "${BODY_END}", found ""`,
    });
    expect(
      verifyReport({
        file,
        kind: 'final',
        text: { ok: false, reason: 'no such file' },
        expected: { hash, from: 'X' },
        publishers,
      }),
    ).toMatchObject({
      verified: false,
      check: 'unreadable',
      reason: 'cannot read r.md: no such file',
    });
    // Nothing recorded in Temporal: the file's own signed provenance is the record.
    expect(
      verifyReport({ file, kind: 'final', text: { ok: true, value: text }, expected: null, publishers }),
    ).toMatchObject({
      verified: true,
      check: 'match',
      expectedFrom: null,
      reason: expect.stringContaining('the provenance inside the report file itself (not a Temporal record)'),
      actual: hash,
    });
    const unsigned = renderReport(body, { ...provenance, contentHash: hash });
    expect(
      verifyReport({ file, kind: 'final', text: { ok: true, value: unsigned }, expected: null, publishers }),
    ).toMatchObject({ verified: false, check: 'unsigned', actual: hash });
    const noHash = renderReport(body, provenance);
    expect(
      verifyReport({ file, kind: 'final', text: { ok: true, value: noHash }, expected: null, publishers }),
    ).toMatchObject({ verified: false, check: 'no-expected-hash', actual: hash });
  });

  test('labels and the embedded provenance are read from the file', () => {
    const labels = explicitLabels(text);
    expect(labels.top).toMatch(
      /^> \*\*AI-generated content\.\*\* .*models: m-lead.*Sign-off: report approved by alice/,
    );
    expect(labels.bottom).toContain(
      `Content hash (sha256 of the text between the body markers): \`${hash}\``,
    );
    expect(embeddedProvenance(text)).toEqual(signed);
    expect(explicitLabels('no labels here')).toEqual({ top: null, bottom: null });
    expect(embeddedProvenance('nothing')).toBeUndefined();
  });

  test('built from the history alone: each part says where it came from, and what is missing says why', () => {
    const history: HistoryFacts = {
      events: 12,
      input: { question: 'Q?', playbook: 'gated' },
      config: {
        digest: provenance.configDigest,
        playbook: 'gated',
        lead: 'lead',
        agents: [
          { id: 'lead', model: 'm-lead', role: 'Leads.' },
          { id: 'researcher', model: 'm-r', role: 'Finds.' },
        ],
        gates: {},
        fixedPlan: null,
      },
      plans: [{ at: 't', valid: true, plan: DEFAULT_PLAN, problems: null, model: 'm-lead', usage: null }],
      usage: { inputTokens: 3, outputTokens: 4, byAgent: {} },
      modelsAnswered: { lead: ['m-lead-2026'] },
      signals: [],
      updates: [],
      stepRuns: [],
      publications: [{ at: 't', kind: 'draft', path: '/r/wf-1.draft.md', contentHash: hash }],
      close: null,
    };
    const sources: AuditSources = {
      exportedAt: '2026-01-02T00:00:00.000Z',
      execution: {
        namespace: 'default',
        workflowId: 'wf-1',
        runId: 'run-1',
        type: 'researchTask',
        status: 'RUNNING',
        taskQueue: 'q',
        startTime: '2026-01-01T00:00:00.000Z',
        executionTime: null,
        closeTime: null,
        historyLength: 12,
        parent: null,
      },
      status: { ok: false, reason: 'nobody answered' },
      result: { ok: false, reason: 'the task is still running' },
      history: { ok: true, value: history },
      reportFiles: {
        path: '/r/wf-1.draft.md',
        text: { ok: true, value: text },
        provenancePath: '/r/wf-1.draft.provenance.json',
        provenanceText: { ok: false, reason: 'no such file' },
      },
      publishers,
    };
    const record = buildAuditRecord(sources);
    expect(record.missing.map((m) => m.part)).toEqual(['status', 'steps', 'phase and pending gate', 'audit']);
    expect(record.missing[0]!.reason).toBe('nobody answered');
    expect(record.missing[1]!.reason).toBe(
      'only the status query has the steps\' states, and the status query could not be answered (see "status"); history.stepRuns lists each run the event history records',
    );
    expect(record).toMatchObject({
      complete: false,
      plan: DEFAULT_PLAN,
      planAttempts: 1,
      configDigest: provenance.configDigest,
      usage: history.usage,
      models: {
        lead: { model: 'm-lead', lead: true, from: 'config snapshot', answeredAs: ['m-lead-2026'] },
        researcher: { model: 'm-r', lead: false, from: 'config snapshot', answeredAs: [] },
      },
      verification: {
        verified: true,
        kind: 'draft',
        expectedFrom: 'the event history (publishReport result)',
      },
      labels: {
        provenance: signed,
        provenanceFile: { path: '/r/wf-1.draft.provenance.json', found: false, matchesResult: null },
      },
      sources: {
        question: 'report file /r/wf-1.draft.md',
        plan: 'event history',
        provenance: 'report file /r/wf-1.draft.md',
      },
    });
    expect(Object.keys(record.models)).toEqual(['lead', 'researcher']);
    // The output is plain JSON: it survives a round trip unchanged.
    expect(JSON.parse(JSON.stringify(record))).toEqual(record);
  });
});
