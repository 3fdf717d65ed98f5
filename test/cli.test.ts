/**
 * `npm run baton`: the reviewer's CLI, run in-process through `runCli` against the real test server
 * and a real worker whose model activities are plain functions. What is asserted is what a user
 * reads: the lines printed and the exit code.
 */
import type { Client } from '@temporalio/client';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { runCli, USAGE, type CliDeps } from '../cli/baton';
import { formatDecideResult, pendingQuery } from '../client';
import { formatAudit } from '../cli/format';
import { researchTask } from '../workflows';
import { BATON_AWAITING, BATON_PENDING_GATE, status as statusQuery } from '../contract/messages';
import {
  DEFAULT_PLAN,
  fakeModelActivities,
  pollUntil,
  tempActivityOptions,
  uniqueId,
  waitForStatus,
  withWorker,
  useTestServer,
  captured,
  type CapturedRun,
  runScript,
} from './helpers';
import { nodeSigner, signedConfig } from './signing';

const ctx = useTestServer();

type Run = CapturedRun;

/** Runs one command line in-process, collecting what it prints. */
function cli(argv: string[], deps: Partial<Omit<CliDeps, 'out' | 'err'>> = {}): Promise<Run> {
  return captured((io) => runCli(argv, { client: ctx.client, env: {}, ...deps, ...io }));
}

/**
 * Runs a command until its output satisfies `predicate`. Visibility (what `pending` lists) is
 * updated a moment after the workflow changes its search attributes, so a list is polled, with a
 * bounded wait, rather than read once.
 */
function cliUntil(argv: string[], predicate: (run: Run) => boolean, what: string): Promise<Run> {
  return pollUntil(() => cli(argv), predicate, what);
}

/** The `pending` line for one task, if listed. */
const lineFor = (run: Run, workflowId: string): string | undefined =>
  run.out.find((line) => line.startsWith(`${workflowId} `));

const start = (taskQueue: string, playbook: string) =>
  ctx.client.workflow.start(researchTask, {
    taskQueue,
    workflowId: uniqueId('cli'),
    args: [{ question: 'How do A and B compare?', playbook }],
  });

describe('baton CLI', () => {
  test('pending, show and decisions on a gated task, from the plan gate to a rejected report', async () => {
    const options = await tempActivityOptions();
    const { activities, calls } = fakeModelActivities(options);
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue, 'gated');
      const id = handle.workflowId;
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');

      const all = await cliUntil(
        ['pending'],
        (r) => lineFor(r, id) !== undefined,
        'pending to list the task',
      );
      expect(all.code).toBe(0);
      expect(lineFor(all, id)).toMatch(
        /^cli-\S+\s+plan gate {2}waiting for alice, bob {2}started \d{4}-\d\d-\d\dT\S+Z {2}\(awaiting-plan-approval\)$/,
      );
      const forAlice = await cliUntil(
        ['pending', '--approver', 'alice'],
        (r) => lineFor(r, id) !== undefined,
        'pending --approver alice to list the task',
      );
      expect(lineFor(forAlice, id)).toContain('plan gate');
      // Visibility already shows the task's attributes (alice's list has it): mallory's list is final.
      const forMallory = await cli(['pending', '--approver', 'mallory']);
      expect(forMallory.code).toBe(0);
      expect(lineFor(forMallory, id)).toBeUndefined();

      // Before execution, show lays out the plan's steps as pending.
      const planned = await cli(['show', id]);
      expect(planned.code).toBe(0);
      expect(planned.out).toEqual(
        expect.arrayContaining([
          `task ${id}`,
          'question: How do A and B compare?',
          'playbook: gated',
          'phase: awaiting-plan-approval',
          'plan (3 steps): Two independent gathering steps, then an analysis of both.',
          '├─ step s1 [researcher] pending',
          '└─ step s3 [analyst] pending',
          '   ├─ after s1, s2',
          '   └─ question: Weigh A against B.',
          'waiting at the plan gate (primary) for 1 approval(s) from alice, bob',
        ]),
      );

      const refused = await cli(['approve', id, '--as', 'mallory']);
      expect(refused).toEqual({
        code: 1,
        out: [],
        err: ['refused: "mallory" is not an approver of the plan gate now (approvers: alice, bob)'],
      });
      const still = await handle.query(statusQuery);
      expect(still.pendingGate?.gate).toBe('plan');
      expect(calls.step).toHaveLength(0);

      // Identity from BATON_APPROVER when there is no --as.
      const approved = await cli(['approve', id, '--gate', 'plan', '--comment', 'fine'], {
        env: { BATON_APPROVER: 'alice' },
      });
      expect(approved).toEqual({
        code: 0,
        out: ['accepted: approved (plan gate, 1 of 1 approvals)'],
        err: [],
      });

      const atReport = await waitForStatus(
        handle,
        (s) => s.pendingGate?.gate === 'report',
        'the report gate',
      );
      await cliUntil(
        ['pending', '--approver', 'bob'],
        (r) => lineFor(r, id)?.includes('report gate') === true,
        'pending to show the report gate',
      );

      const shown = await cli(['show', id]);
      expect(shown.code).toBe(0);
      expect(shown.err).toEqual([]);
      expect(shown.out).toEqual(
        expect.arrayContaining([
          'phase: awaiting-report-approval',
          '├─ step s1 [researcher] done: summary of s1',
          '│  └─ question: Gather evidence A.',
          '├─ step s2 [researcher] done: summary of s2',
          '└─ step s3 [analyst] done: summary of s3',
          '   ├─ after s1, s2',
          'waiting at the report gate (primary) for 1 approval(s) from alice, bob',
          // Plan, three steps and the draft: 10 in / 5 out each.
          expect.stringMatching(/^tokens: 50 in, 25 out \(/),
          `audit (${atReport.audit.length} entries):`,
        ]),
      );
      // The whole audit trail, in order, at the end.
      const auditLines = atReport.audit.map((e) => `  ${formatAudit(e)}`);
      expect(shown.out.slice(-auditLines.length)).toEqual(auditLines);
      expect(auditLines.join('\n')).toContain('plan: approve by alice via update "fine": accepted');

      // Refusals come back in the workflow's own words.
      expect(await cli(['request-changes', id, '--as', 'bob'])).toEqual({
        code: 1,
        out: [],
        err: ['refused: requestChanges needs a comment saying what to change'],
      });
      expect(
        (await cli(['request-changes', id, '--as', 'bob', '--comment', 'again', '--rerun', 's1,nope'])).err,
      ).toEqual(['refused: rerunSteps names unknown step(s): nope']);
      expect((await cli(['approve', id, '--as', 'bob', '--gate', 'plan'])).err).toEqual([
        'refused: the plan gate is not pending; the pending gate is report',
      ]);
      expect(calls.synthesis).toHaveLength(1);

      const rejected = await cli([
        'reject',
        id,
        '--as',
        'bob',
        '--gate',
        'report',
        '--comment',
        'not convincing',
      ]);
      expect(rejected).toEqual({ code: 0, out: ['accepted: rejected (report gate)'], err: [] });
      const result = await handle.result();
      expect(result.outcome).toBe('rejected');
      expect(result.reportPath).toBeUndefined();

      // A finished task has nothing left to decide, and leaves the pending list.
      expect(await cli(['approve', id, '--as', 'alice'])).toEqual({
        code: 1,
        out: [],
        err: [`refused: task ${id} is no longer running (completed); nothing is left to decide`],
      });
      await cliUntil(['pending'], (r) => lineFor(r, id) === undefined, 'the task to leave the pending list');
      expect((await cli(['show', id])).out).toContain('phase: rejected');
    });
  });

  test('show: the draft at a glance, --full for all of it, --diff for what changed in the plan and the draft', async () => {
    const options = await tempActivityOptions();
    const revisedPlan = {
      rationale: 'Gather A and C, then weigh them.',
      steps: [
        DEFAULT_PLAN.steps[0]!,
        { id: 's4', agent: 'researcher', question: 'Gather evidence C.', dependsOn: [], decompose: false },
        { ...DEFAULT_PLAN.steps[2]!, question: 'Weigh A against C.', dependsOn: ['s1', 's4'] },
      ],
    };
    const { activities } = fakeModelActivities(options, {
      plan: (input, call) => ({
        valid: true,
        plan: call === 1 ? DEFAULT_PLAN : revisedPlan,
        usage: { inputTokens: 10, outputTokens: 5 },
        model: input.lead.model,
      }),
    });
    // The CLI reads drafts through the store the worker writes.
    const env = {
      BATON_ARTIFACT_DIR: options.artifactDir,
      BATON_REPORT_DIR: options.reportDir,
      PAGER: 'less -R',
    };
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue, 'gated');
      const id = handle.workflowId;
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
      expect((await cli(['show', '--diff', id], { env })).out).toEqual(
        expect.arrayContaining([
          'plan changes: none (the plan was not revised)',
          'draft changes: none (no earlier draft)',
        ]),
      );
      await cli(['request-changes', id, '--as', 'alice', '--comment', 'C instead of B']);
      await waitForStatus(
        handle,
        (s) => s.pendingGate?.gate === 'plan' && s.revisions.plan === 1,
        'the revised plan',
      );
      const planDiff = await cli(['show', id, '--diff'], { env });
      expect(planDiff.code).toBe(0);
      expect(planDiff.out).toEqual(
        expect.arrayContaining([
          'plan changes (against the plan shown before):',
          '  ~ rationale: Two independent gathering steps, then an analysis of both. → Gather A and C, then weigh them.',
          '  + s4 [researcher] Gather evidence C.',
          '  - s2 [researcher] Gather evidence B.',
          '  ~ s3 question: Weigh A against B. → Weigh A against C.',
          '  ~ s3 dependsOn: s1, s2 → s1, s4',
        ]),
      );
      await cli(['approve', id, '--as', 'alice']);
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'report', 'the report gate');

      // At a glance: title, size, summary and where to read it all, not the draft itself.
      const glance = await cli(['show', id], { env });
      expect(glance.out).toEqual(
        expect.arrayContaining([
          '  Draft report: Report',
          expect.stringMatching(/^ {2}\d+ words, \d+ lines, \d+(\.\d)? k?B/),
          '  Summary: Claim from s1 [step:s1]',
          `  Read it all: npm run baton -- show --full ${id} | less -R`,
        ]),
      );
      expect(glance.out.join('\n')).not.toContain('Claim from s4');
      const full = await cli(['show', '--full', id], { env });
      expect(full.out).toEqual(
        expect.arrayContaining([
          '----- draft report -----',
          'Claim from s4 [step:s4]',
          '----- end of draft -----',
        ]),
      );

      await cli(['request-changes', id, '--as', 'bob', '--comment', 'Say more.']);
      await waitForStatus(
        handle,
        (s) => s.pendingGate?.gate === 'report' && s.revisions.report === 1,
        'the revised draft',
      );
      expect((await cli(['show', id], { env })).out).toContain(
        `  What changed since the previous draft: npm run baton -- show --diff ${id}`,
      );
      const draftDiff = await cli(['show', '--diff', id], { env });
      expect(draftDiff.out).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^draft changes \(sha256:[0-9a-f]{12}… → sha256:[0-9a-f]{12}…\):$/),
          expect.stringMatching(/^--- previous draft\s+sha256:/),
          expect.stringMatching(/^\+\+\+ this draft\s+sha256:/),
          '+Revised for: Say more.',
          ' Claim from s3 [step:s3]',
        ]),
      );
      expect((await cli(['approve', id, '--as', 'alice'], { env })).out).toEqual([
        'accepted: approved (report gate, 1 of 1 approvals)',
      ]);
      expect((await handle.result()).outcome).toBe('completed');
      expect((await cli(['show', '--full', id], { env })).out).toEqual(
        expect.arrayContaining(['----- report -----', 'Revised for: Say more.']),
      );
    });
  });

  test('with a quorum, a partial approval answers "waiting" and the list stops asking that person', async () => {
    // A quorum over 1 needs signed decisions: the `signed` playbook, plan 2 of alice, bob, carol.
    const alice = nodeSigner('alice');
    const configDir = await signedConfig({ alice, bob: nodeSigner('bob'), carol: nodeSigner('carol') });
    const keyFile = path.join(configDir, 'alice.key');
    await fs.writeFile(keyFile, alice.pem, { mode: 0o600 });
    const { activities } = fakeModelActivities(await tempActivityOptions(configDir));
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue, 'signed');
      const id = handle.workflowId;
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
      expect(await cli(['approve', id, '--as', 'alice', '--key', keyFile])).toEqual({
        code: 0,
        out: ['accepted: waiting (plan gate, 1 of 2 approvals)'],
        err: [],
      });
      const forBob = await cliUntil(
        ['pending', '--approver', 'bob'],
        (r) => lineFor(r, id)?.includes('waiting for bob, carol') === true,
        'the list to wait for bob and carol only',
      );
      expect(lineFor(forBob, id)).toContain('plan gate');
      expect(lineFor(await cli(['pending', '--approver', 'alice']), id)).toBeUndefined();
      await handle.terminate('test over');
    });
  });

  test('unknown workflow ids are named in the error, exit 1', async () => {
    const missing = uniqueId('no-such-task');
    for (const argv of [
      ['show', missing],
      ['approve', missing, '--as', 'alice'],
    ]) {
      const run = await cli(argv);
      expect(run.code).toBe(1);
      expect(run.out).toEqual([]);
      expect(run.err).toEqual([`error: no task with workflow id "${missing}" on this namespace (default)`]);
    }
  });

  test('usage: help answers 0; unknown commands and bad options name the problem and answer 2', async () => {
    for (const argv of [[], ['--help'], ['approve', '--help']]) {
      const run = await cli(argv);
      expect(run).toEqual({ code: 0, out: USAGE.split('\n'), err: [] });
    }
    const cases: [string[], string][] = [
      [['frobnicate'], 'error: unknown command "frobnicate"'],
      [['pending', '--as', 'alice'], 'error: unknown option --as for pending'],
      [['approve', 'wf-1', '--rerun', 's1'], 'error: unknown option --rerun for approve'],
      [['approve'], 'error: approve needs a workflow id'],
      [['show', 'a', 'b'], 'error: unexpected argument "b" for show'],
      [['approve', 'wf-1', '--comment'], 'error: --comment needs a value'],
      [['approve', 'wf-1', '--gate', 'final'], 'error: --gate must be plan, report or tool (got "final")'],
      [
        ['request-changes', 'wf-1', '--comment', 'x', '--rerun', ','],
        'error: --rerun needs step ids, e.g. --rerun s1,s2',
      ],
    ];
    for (const [argv, message] of cases) {
      const run = await cli(argv);
      expect({ argv, code: run.code, first: run.err[0] }).toEqual({ argv, code: 2, first: message });
      expect(run.err.slice(2)).toEqual(USAGE.split('\n'));
    }
  });

  test('pending says so when nothing waits', async () => {
    // A shared test server always has someone's task at a gate, so this one asks a client with an empty list.
    const empty = {
      options: { namespace: 'default' },
      workflow: { list: () => (async function* () {})() },
    } as unknown as Client;
    expect(await cli(['pending'], { client: empty })).toEqual({
      code: 0,
      out: ['no task is waiting for a decision'],
      err: [],
    });
  });

  test('pendingQuery is the documented query, quotes escaped; the server finds an approver with a quote; no worker, no hang', async () => {
    expect(pendingQuery()).toBe("BatonPendingGate IS NOT NULL AND ExecutionStatus = 'Running'");
    expect(pendingQuery('alice')).toBe(
      "BatonPendingGate IS NOT NULL AND ExecutionStatus = 'Running' AND BatonAwaiting IN ('alice', '*')",
    );
    expect(pendingQuery("o'brien")).toBe(
      "BatonPendingGate IS NOT NULL AND ExecutionStatus = 'Running' AND BatonAwaiting IN ('o''brien', '*')",
    );
    // No worker polls this queue: the execution only carries the attributes a gated task would.
    const taskQueue = uniqueId('nobody-polls');
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('cli-quote'),
      args: [{ question: 'q' }],
      typedSearchAttributes: [
        { key: BATON_PENDING_GATE, value: 'plan' },
        { key: BATON_AWAITING, value: ["o'brien"] },
      ],
    });
    try {
      const run = await cliUntil(
        ['pending', '--approver', "o'brien"],
        (r) => lineFor(r, handle.workflowId) !== undefined,
        "o'brien's pending list",
      );
      expect(lineFor(run, handle.workflowId)).toMatch(/plan gate {2}waiting for o'brien {2}started /);

      // No worker answers queries and Updates for this task: the CLI gives up and says what to check.
      const noAnswer = `error: task ${handle.workflowId} did not answer within 0.5 s: is a Baton worker polling task queue "${taskQueue}"?`;
      expect(await cli(['show', handle.workflowId], { workerTimeoutMs: 500 })).toEqual({
        code: 1,
        out: [],
        err: [noAnswer],
      });
      expect(await cli(['approve', handle.workflowId, '--as', "o'brien"], { workerTimeoutMs: 500 })).toEqual({
        code: 1,
        out: [],
        err: [
          `${noAnswer} The decision may still reach the task when a worker picks it up; check with: npm run baton -- show ${handle.workflowId}`,
        ],
      });
    } finally {
      await handle.terminate('test over');
    }
  });

  test('formatDecideResult', () => {
    expect(
      formatDecideResult({
        accepted: true,
        gate: 'report',
        outcome: 'changes-requested',
        approvals: 0,
        quorum: 1,
      }),
    ).toBe('accepted: changes-requested (report gate)');
  });

  test('the script itself: help without a server, exit codes, and a real connection', async () => {
    const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      runScript('cli/baton.ts', args, { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', ...env });
    // Nothing listens at 127.0.0.1:1: help and usage errors must not need the server.
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: npm run baton -- <command>');
    const bad = await run(['frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('error: unknown command "frobnicate"');
    const missing = uniqueId('no-such-task');
    const show = await run(['show', missing], { TEMPORAL_ADDRESS: process.env.BATON_TEST_TEMPORAL_ADDRESS });
    expect(show).toMatchObject({ code: 1, stdout: '' });
    expect(show.stderr).toContain(`no task with workflow id "${missing}"`);
  });
});
