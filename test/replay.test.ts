/**
 * Every recorded history of every released workflow version (test/histories/<version>/) must
 * replay against today's workflow code: that is what keeps a deploy from breaking tasks that are
 * running. Record new ones with `npm run histories:record -- v<N>` when a version is released.
 */
import { Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { recordedHistories } from './recorded-histories';

test('there are recorded histories of the released versions, covering every workflow type', async () => {
  const all = await recordedHistories();
  expect(all.length).toBeGreaterThanOrEqual(5);
  const types = new Set(
    all.map(({ history }) => {
      const first = (
        history as {
          events: { workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } } }[];
        }
      ).events[0];
      return first?.workflowExecutionStartedEventAttributes?.workflowType?.name;
    }),
  );
  expect([...types].sort()).toEqual(['researchBatch', 'researchSubtask', 'researchTask']);
});

test('every recorded history replays against the current workflow code', async () => {
  const results: { name: string; error?: string }[] = [];
  const all = await recordedHistories();
  const replays = Worker.runReplayHistories(
    { workflowBundle: { codePath: process.env.BATON_TEST_WORKFLOW_BUNDLE! } },
    all.map(({ workflowId, history }) => ({ workflowId, history })),
  );
  for await (const result of replays) results.push({ name: result.workflowId, error: result.error?.message });
  expect(results).toEqual(all.map(({ workflowId }) => ({ name: workflowId, error: undefined })));
});

/** Ids of the patches a history recorded (core_patch markers). */
function patchesIn(history: unknown): string[] {
  type Marker = { markerName?: string; details?: Record<string, { payloads?: { data?: string }[] }> };
  const events = (history as { events: { markerRecordedEventAttributes?: Marker }[] }).events;
  return events.flatMap(({ markerRecordedEventAttributes: m }) => {
    const data = m?.markerName === 'core_patch' ? m.details?.['patch-data']?.payloads?.[0]?.data : undefined;
    return data ? [(JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as { id: string }).id] : [];
  });
}

test('the draft preview is versioned: v1 tasks ran without it, v2 tasks with it, and both replay above', async () => {
  const byName = new Map((await recordedHistories()).map((r) => [r.name, r.history]));
  for (const scenario of ['gated-approved', 'quorum-revised']) {
    expect([scenario, patchesIn(byName.get(`v1/v1-${scenario}.json`))]).toEqual([scenario, []]);
    expect([scenario, patchesIn(byName.get(`v2/v2-${scenario}.json`))]).toEqual([
      scenario,
      ['draft-preview-before-report-gate'],
    ]);
  }
});

test('an incompatible change is caught: replay fails with a DeterminismViolationError', async () => {
  const all = await recordedHistories();
  const task = all.find(({ name }) => name.endsWith('gated-approved.json'))!;
  await expect(
    Worker.runReplayHistory(
      { workflowsPath: require.resolve('./fixtures/incompatible/workflows') },
      task.history,
      task.workflowId,
    ),
  ).rejects.toBeInstanceOf(DeterminismViolationError);
});
