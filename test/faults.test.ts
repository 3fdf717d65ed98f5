/**
 * A misbehaving model, end to end: the fault proxy (standin/proxy.ts) in front of the stand-in,
 * the real activities and SDK, a real worker and server. Each fault is either retried per the
 * agent's policy (3 attempts here, 2 s heartbeat and 5 s stream-idle timeouts) or fails the step clearly, and the task
 * then follows its playbook.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createActivities } from '../activities';
import { startFaultProxy, type FaultProxy, type FaultRule } from '../standin/proxy';
import { startStandIn, type StandIn } from '../standin/server';
import { researchTask } from '../workflows';
import { tempActivityOptions, uniqueId, useTestServer, withWorker } from './helpers';

const FAST_CONFIG = path.join(__dirname, 'fixtures', 'config-fast');

const ctx = useTestServer();
let standIn: StandIn;
let proxy: FaultProxy;
beforeAll(async () => {
  standIn = await startStandIn();
});
afterAll(async () => {
  await standIn?.close();
});
// A fresh proxy per test: its rules and counts are that test's alone.
beforeEach(async () => {
  proxy = await startFaultProxy({ target: standIn.url });
});
afterEach(async () => {
  await proxy.close();
});

async function run(playbook: string) {
  const options = { ...(await tempActivityOptions(FAST_CONFIG, true)), baseURL: proxy.url };
  return withWorker(ctx, createActivities(options), async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('fault'),
      args: [{ question: 'What is in the box?', playbook }],
    });
    return handle.result().then(
      (result) => ({ result, error: undefined }),
      (error: unknown) => ({ result: undefined, error: error as WorkflowFailedError }),
    );
  });
}

const step = { tool: 'submit_findings' };

test.each<[string, FaultRule]>([
  ['529 overloaded, twice', { kind: 'status', status: 529, count: 2, match: step }],
  ['500 server error', { kind: 'status', status: 500, match: step }],
  ['429 with retry-after', { kind: 'status', status: 429, retryAfterSeconds: 1, match: step }],
  ['a connection dropped mid-stream', { kind: 'drop-mid-stream', match: step }],
  ['malformed JSON in the stream', { kind: 'truncate-json', match: step }],
  ['a response that never comes (cut after timeouts.streamIdle)', { kind: 'hang', match: step }],
])(
  '%s: retried per the agent policy, and the task completes',
  async (_name, rule) => {
    proxy.add(rule);
    const { result, error } = await run('one-step');
    expect(error).toBeUndefined();
    expect(result?.outcome).toBe('completed');
    const injected = Object.values(proxy.stats().injected).reduce((a, b) => a + b, 0);
    expect(injected).toBe(rule.count ?? 1);
  },
  30_000,
);

test('a call slower than the heartbeat timeout is not presumed dead: the worker heartbeats while it waits', async () => {
  // 3.5 s before the stand-in even sees the request: past the agents' 2 s heartbeat timeout, within
  // their 5 s streamIdle. Heartbeats come from the worker, so the call is made once.
  proxy.add({ kind: 'delay', ms: 3500, match: step });
  const calls = () => standIn.stats().byTool.submit_findings ?? 0;
  const before = calls();
  const { result, error } = await run('one-step');
  expect(error).toBeUndefined();
  expect(result?.outcome).toBe('completed');
  expect(proxy.stats().injected.delay).toBe(1);
  expect(calls() - before).toBe(1);
});

test('an auth failure (401) fails the step at once, without retrying, and says what to fix', async () => {
  proxy.add({ kind: 'status', status: 401, count: Infinity, match: step });
  const { error } = await run('one-step');
  expect(error?.cause?.message).toMatch(
    /^step "gather" \(agent "researcher"\) failed: .*model API answered 401: .*set a valid ANTHROPIC_API_KEY/,
  );
  expect(proxy.stats().injected['401']).toBe(1);
});

test('a model that refuses to answer in structure fails the step after the policy attempts', async () => {
  proxy.add({ kind: 'refusal', count: Infinity, match: step });
  const { error } = await run('one-step');
  expect(error?.cause?.message).toMatch(
    /^step "gather" \(agent "researcher"\) failed: .*the model refused to give its submit_findings answer \(stop reason refusal\)/,
  );
  expect(proxy.stats().injected.refusal).toBe(3);
});

test('with a skip policy, a step that keeps failing is left out and the report says so', async () => {
  proxy.add({ kind: 'status', status: 500, count: Infinity, match: step });
  const { result, error } = await run('one-step-skip');
  expect(error).toBeUndefined();
  expect(proxy.stats().injected['500']).toBe(3);
  const text = await fs.readFile(result!.reportPath!, 'utf8');
  expect(text).toContain(
    '## Gaps\nThese steps did not complete (they failed and were skipped, or the token budget ran out), so the report does not cover them:\n- **gather** (researcher)',
  );
});
