/**
 * Live words (contract/live.ts): while a specialist's model call streams, the worker hands the call's
 * words so far to its heartbeat, and a client reads them from the server's description of the task
 * (client/live.ts), readable, sanitized and bounded; none of it is an event in the task's history.
 * The stand-in streams slowly (its latency spread over the stream's events) and its model text
 * carries terminal escapes, which never reach the reader.
 */
import path from 'node:path';
import { createActivities } from '../activities';
import { liveWordsIn } from '../client/live';
import { liveWords, MAX_LIVE_CHARS, type LiveWords } from '../contract/live';
import { startStandIn, type StandIn } from '../standin/server';
import { researchTask } from '../workflows';
import { historyText, pollUntil, tempActivityOptions, uniqueId, useTestServer, withWorker } from './helpers';

const ctx = useTestServer();
let standIn: StandIn;

beforeAll(async () => {
  // 1.5 s a reply, spread over the stream's events: a call is visibly in flight for a while.
  standIn = await startStandIn({ latencyMs: 1500 });
});
afterAll(async () => {
  await standIn?.close();
});

test('model JSON becomes readable live words: keys, braces and escapes gone, sanitized, the tail kept', () => {
  const streamed =
    '{"summary":"Solid-state cells \\u001b[31mlast\\u001b[0m longer.\\n","findings":"Early \u001b]8;;x\u0007data';
  const live = liveWords(streamed, { agent: 'researcher', step: 's1' });
  expect(live).toEqual({
    agent: 'researcher',
    step: 's1',
    words: expect.stringContaining('Solid-state cells'),
    chars: streamed.length,
  });
  expect(live.words).not.toMatch(/[{}"]|summary|findings/);
  expect(live.words).not.toContain('\u001b');
  expect(live.words).not.toContain('\u0007');
  const long = liveWords(`{"findings":"${'word '.repeat(500)}end"`, { agent: 'a' });
  expect([...long.words]).toHaveLength(MAX_LIVE_CHARS);
  expect(long.words.endsWith('end')).toBe(true);
});

test("a running step's words reach a client from the server while the call streams, and stay out of the history's events", async () => {
  const options = {
    ...(await tempActivityOptions(path.join(__dirname, 'fixtures', 'config'))),
    baseURL: standIn.url,
  };
  await withWorker(ctx, createActivities(options), async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('live-words'),
      args: [{ question: 'How do solid-state batteries age?', playbook: 'open' }],
    });
    const seen: LiveWords[] = await pollUntil(
      () => liveWordsIn(ctx.client, [handle.workflowId]),
      (words) => words.some((w) => w.step !== undefined && w.words.length > 0),
      "a running step's live words",
      60_000,
    );
    const step = seen.find((w) => w.step !== undefined)!;
    expect(step.agent).toMatch(/^(researcher|analyst)$/);
    expect(step.step).toMatch(/^s\d+$/);
    expect(step.chars).toBeGreaterThan(0);
    expect([...step.words].length).toBeLessThanOrEqual(MAX_LIVE_CHARS);
    expect(step.words).not.toMatch(/[{}"]/);

    const result = await handle.result();
    expect(result.outcome).toBe('completed');
    // Nothing to show once the calls are done; heartbeats are no events of the history.
    expect(await liveWordsIn(ctx.client, [handle.workflowId])).toEqual([]);
    expect(await historyText(handle)).not.toMatch(/heartbeatDetails/i);
  });
}, 120_000);
