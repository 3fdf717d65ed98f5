/**
 * `npm run histories:record -- <version>`: runs the scenarios below on a fresh dev server and
 * writes each workflow's event history (children included) to test/histories/<version>/, for the
 * replay tests. Record once per released workflow version and commit the files: they are what
 * proves a later change still replays the tasks that were running when it shipped.
 *
 * Model calls are the deterministic fakes of the workflow tests, so histories are small and
 * re-recording gives the same command sequence.
 */
import { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { command, runMain, UsageError } from '../lib/cli';
import { startDevServer } from '../local/temporal';
import { ensureSearchAttributes } from '../workers/search-attributes';
import { researchTask } from '../workflows';
import type { Plan } from '../config/schema';
import { approve, decide, requestChanges, type TokenUsage } from '../contract/messages';
import { DEFAULT_PLAN, fakeModelActivities, tempActivityOptions, waitForStatus } from './helpers';

type Handle = Awaited<ReturnType<Client['workflow']['start']>>;

interface Scenario {
  name: string;
  playbook: string;
  /** Sends the decisions the scenario needs; the task then runs to its end. */
  drive(handle: Handle): Promise<void>;
  /** The plan the fake lead makes at the top level (default: DEFAULT_PLAN). */
  plan?: Plan;
  /** Tokens each step reports (default: the fakes' 15). */
  stepUsage?: TokenUsage;
}

/** n steps; each after the tenth depends on the step ten before it. */
const chainOf = (n: number): Plan => ({
  rationale: 'Many angles.',
  steps: Array.from({ length: n }, (_, i) => ({
    id: `s${i + 1}`,
    agent: 'researcher',
    question: `Angle ${i + 1}.`,
    dependsOn: i >= 10 ? [`s${i - 9}`] : [],
    decompose: false,
  })),
});

const SCENARIOS: Scenario[] = [
  {
    name: 'gated-approved',
    playbook: 'gated',
    async drive(handle) {
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'plan gate');
      await handle.signal(approve, { by: 'alice' });
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'report', 'report gate');
      await handle.executeUpdate(decide, { args: [{ decision: 'approve', by: 'bob' }] });
    },
  },
  {
    name: 'quorum-revised',
    playbook: 'quorum',
    async drive(handle) {
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'plan gate');
      await handle.signal(approve, { by: 'mallory' }); // refused
      await handle.signal(requestChanges, { by: 'alice', comment: 'narrower' });
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan' && s.revisions.plan === 1, 're-plan');
      await handle.executeUpdate(decide, { args: [{ decision: 'approve', by: 'alice' }] });
      await handle.executeUpdate(decide, { args: [{ decision: 'approve', by: 'carol' }] });
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'report', 'report gate');
      await handle.executeUpdate(decide, {
        args: [{ decision: 'requestChanges', by: 'alice', comment: 'more on B', rerunSteps: ['s2'] }],
      });
      await waitForStatus(
        handle,
        (s) => s.pendingGate?.gate === 'report' && s.revisions.report === 1,
        'revision',
      );
      await handle.signal(approve, { by: 'alice' });
    },
  },
  {
    name: 'fixed-deadline',
    playbook: 'fixed',
    async drive() {
      // The plan gate auto-approves after its 1 s deadline.
    },
  },
  {
    name: 'decomposed',
    playbook: 'open',
    plan: { ...DEFAULT_PLAN, steps: DEFAULT_PLAN.steps.map((s, i) => ({ ...s, decompose: i === 0 })) },
    async drive() {
      // No gates: step s1 decomposes into a child.
    },
  },
  {
    // v3: the token budget stops scheduling after two steps of 300 tokens.
    name: 'budget-stopped',
    playbook: 'budgeted',
    stepUsage: { inputTokens: 200, outputTokens: 100 },
    async drive() {},
  },
  {
    // v3: a plan over STEPS_PER_RUN runs in researchBatch children.
    name: 'batched',
    playbook: 'batched',
    plan: chainOf(120),
    async drive() {},
  },
];

const USAGE = `usage: npm run histories:record -- v<N>

Runs the scenarios of test/record-histories.ts on a fresh dev server and writes each workflow's
event history (children included) to test/histories/v<N>/, for the replay tests.`;

const main = command(
  { name: 'histories:record', usage: USAGE, options: {}, allowPositionals: true },
  async ({ positionals }) => {
    const [version, ...rest] = positionals;
    if (!version || rest.length || !/^v\d+$/.test(version)) {
      throw new UsageError(`expected one version such as v4, got ${JSON.stringify(positionals)}`);
    }
    await record(version);
    return 0;
  },
);

async function record(version: string): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const dir = path.join(__dirname, 'histories', version);
  await fs.mkdir(dir, { recursive: true });
  const server = await startDevServer({});
  try {
    await ensureSearchAttributes(server.env.connection, server.namespace);
    const client = server.env.client;
    for (const scenario of SCENARIOS) {
      const { stepUsage } = scenario;
      const { activities } = fakeModelActivities(await tempActivityOptions(), {
        plan: (input) => ({
          valid: true,
          plan: input.limits.depth === 0 ? (scenario.plan ?? DEFAULT_PLAN) : DEFAULT_PLAN,
          usage: { inputTokens: 10, outputTokens: 5 },
          model: input.lead.model,
        }),
        ...(stepUsage ? { stepUsage: () => stepUsage } : {}),
      });
      const taskQueue = `record-${scenario.name}`;
      const worker = await Worker.create({
        connection: server.env.nativeConnection,
        taskQueue,
        activities,
        workflowsPath: require.resolve('../workflows'),
      });
      const workflowId = `${version}-${scenario.name}`;
      await worker.runUntil(async () => {
        const handle = await client.workflow.start(researchTask, {
          taskQueue,
          workflowId,
          args: [{ question: `Recorded scenario ${scenario.name}`, playbook: scenario.playbook }],
        });
        await scenario.drive(handle);
        await handle.result();
      });
      // The task and every child it started (decomposed steps, batches), from the histories.
      for (const ids = [workflowId]; ids.length > 0;) {
        const id = ids.shift()!;
        const history = await client.workflow.getHandle(id).fetchHistory();
        for (const e of history.events ?? []) {
          const child = e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId;
          if (child) ids.push(child);
        }
        // The file name is the workflow id (encoded): replay needs it, as child ids derive from it.
        const file = path.join(dir, `${encodeURIComponent(id)}.json`);
        // Proto JSON, the form `temporal workflow show --output json` writes and replay reads.
        await fs.writeFile(file, `${historyToJSON(history)}\n`);
        console.log(`recorded ${file} (${history.events?.length ?? 0} events)`);
      }
    }
  } finally {
    await server.stop();
  }
}

if (require.main === module) runMain(main);
