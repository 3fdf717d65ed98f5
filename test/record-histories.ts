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
import { startDevServer } from '../scripts/temporal';
import { ensureSearchAttributes } from '../workers/search-attributes';
import { researchTask } from '../workflows';
import { approve, decide, requestChanges, status } from '../workflows/messages';
import { DEFAULT_PLAN, fakeModelActivities, tempActivityOptions, waitForStatus } from './helpers';

type Handle = Awaited<ReturnType<Client['workflow']['start']>>;

interface Scenario {
  name: string;
  playbook: string;
  /** Sends the decisions the scenario needs; the task then runs to its end. */
  drive(handle: Handle): Promise<void>;
}

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
    name: 'decomposed',
    playbook: 'open',
    async drive() {
      // No gates: the fake planner below makes step s1 decompose into a child.
    },
  },
  {
    name: 'fixed-deadline',
    playbook: 'fixed',
    async drive() {
      // The plan gate auto-approves after its 1 s deadline.
    },
  },
];

async function main(version: string | undefined): Promise<void> {
  if (!version || !/^v\d+$/.test(version)) throw new Error('usage: npm run histories:record -- v<N>');
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const dir = path.join(__dirname, 'histories', version);
  await fs.mkdir(dir, { recursive: true });
  const server = await startDevServer({});
  try {
    await ensureSearchAttributes(server.env.connection, server.namespace);
    const client = server.env.client;
    for (const scenario of SCENARIOS) {
      const decomposing = {
        ...DEFAULT_PLAN,
        steps: DEFAULT_PLAN.steps.map((s, i) => ({ ...s, decompose: i === 0 })),
      };
      const { activities } = fakeModelActivities(await tempActivityOptions(), {
        plan: (input) => ({
          valid: true,
          plan: scenario.name === 'decomposed' && input.limits.depth === 0 ? decomposing : DEFAULT_PLAN,
          usage: { inputTokens: 10, outputTokens: 5 },
          model: input.lead.model,
        }),
      });
      const taskQueue = `record-${scenario.name}`;
      const worker = await Worker.create({
        connection: server.env.nativeConnection,
        taskQueue,
        activities,
        workflowsPath: require.resolve('../workflows'),
      });
      const workflowId = `${version}-${scenario.name}`;
      // Queries need a worker: read the children's ids before it stops.
      const children = await worker.runUntil(async () => {
        const handle = await client.workflow.start(researchTask, {
          taskQueue,
          workflowId,
          args: [{ question: `Recorded scenario ${scenario.name}`, playbook: scenario.playbook }],
        });
        await scenario.drive(handle);
        await handle.result();
        const final = await handle.query(status);
        return final.steps.flatMap((s) => (s.childWorkflowId ? [s.childWorkflowId] : []));
      });
      const ids = [workflowId, ...children];
      for (const id of ids) {
        const history = await client.workflow.getHandle(id).fetchHistory();
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

main(process.argv[2]).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
