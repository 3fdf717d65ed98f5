/**
 * The workflow bundle as workers load it (workers/bundle.ts, BUNDLER_OPTIONS): its inline source map
 * leaves out the sources' text, which every worker would otherwise hold in both of its threads, and
 * still maps a waiting task's stack trace back to the files of workflows/.
 */
import { promises as fs } from 'node:fs';
import { researchTask } from '../workflows';
import {
  fakeModelActivities,
  tempActivityOptions,
  uniqueId,
  useTestServer,
  waitForStatus,
  withWorker,
} from './helpers';

const ctx = useTestServer();

/** The source map inlined at the end of a bundle. */
function inlineSourceMap(code: string): { sources: string[]; sourcesContent?: unknown[] } {
  const found = /\/\/# sourceMappingURL=data:application\/json;(?:charset=utf-8;)?base64,(\S+)\s*$/.exec(
    code,
  );
  expect(found).not.toBeNull();
  return JSON.parse(Buffer.from(found![1]!, 'base64').toString('utf8')) as {
    sources: string[];
    sourcesContent?: unknown[];
  };
}

test("the bundle's inline source map names the workflow files without their text", async () => {
  const code = await fs.readFile(process.env.BATON_TEST_WORKFLOW_BUNDLE!, 'utf8');
  const map = inlineSourceMap(code);
  expect(map.sources.some((s) => s.endsWith('workflows/research.ts'))).toBe(true);
  expect(map.sourcesContent ?? []).toEqual([]);
});

test('a task waiting at its plan gate answers the stack trace query with workflows/ files, lines and columns', async () => {
  const { activities } = fakeModelActivities(await tempActivityOptions());
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('bundle'),
      args: [{ question: 'Q?', playbook: 'gated' }],
    });
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
    const stack = await handle.query<string>('__stack_trace');
    expect(stack).toMatch(/workflows\/[a-z-]+\.ts:\d+:\d+/);
    await handle.terminate('bundle test done');
  });
});
