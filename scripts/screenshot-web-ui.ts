/**
 * `npx tsx scripts/screenshot-web-ui.ts [--out docs/web-ui-timeline.png] [--chromium /usr/bin/chromium]`
 *
 * Takes the documentation's picture of the Temporal Web UI: a completed research task's timeline,
 * with the summary Baton gives each activity (`s2 · analyst: …`, `plan · lead`) and each decomposed
 * step's child workflow. Everything runs here and is gone afterwards: an in-memory dev server with
 * its Web UI, the offline stand-in model (with a little latency, so the timeline has width), a
 * worker, one task started as `npm start` starts it and approved at both gates through the `decide`
 * Update, then headless Chromium (playwright-core) on the workflow page.
 *
 * Chromium: `--chromium <path>`, else the one local/browser.ts finds (`CHROMIUM_PATH`, the one npm
 * brings, /usr/bin/chromium).
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { activityOptionsFromEnv, PROJECT_ROOT } from '../activities/options';
import { sendDecision, startResearchTask, watchTask, type TaskEnd } from '../client';
import { SEARCH_ATTRIBUTES } from '../contract/messages';
import { Cleanup } from '../lib/cleanup';
import { command, runMain } from '../lib/cli';
import { chromiumPath } from '../local/browser';
import { OFFLINE_STAND_IN_KEY } from '../local/environment';
import { freePort, startDevServer } from '../local/temporal';
import { startStandIn } from '../standin/server';
import { runWorker } from '../workers/runtime';

const QUESTION = 'Why do solid-state batteries matter for electric cars?';
const APPROVER = 'alice@example.com';

const USAGE = `usage: npx tsx scripts/screenshot-web-ui.ts [--out <png>] [--chromium <path>]

  --out <png>        where to save the picture (default: docs/web-ui-timeline.png)
  --chromium <path>  the Chromium to drive (default: the one local/browser.ts finds)`;

const main = command(
  {
    name: 'screenshot-web-ui',
    usage: USAGE,
    options: { out: { type: 'string' }, chromium: { type: 'string' } },
  },
  async ({ values }) => {
    const cleanup = new Cleanup();
    try {
      return await screenshot(
        path.resolve(values.out ?? path.join(PROJECT_ROOT, 'docs', 'web-ui-timeline.png')),
        values.chromium,
        cleanup,
      );
    } finally {
      await cleanup.run();
    }
  },
);

async function screenshot(out: string, chromiumGiven: string | undefined, cleanup: Cleanup): Promise<number> {
  const executablePath = chromiumGiven ?? (await chromiumPath());
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const server = await startDevServer({
    uiPort: await freePort(),
    searchAttributes: [...SEARCH_ATTRIBUTES],
    log: (line) => console.log(line),
  });
  cleanup.defer(() => server.stop());
  console.log(`Temporal Web UI: ${server.uiUrl}`);
  const standIn = await startStandIn({ latencyMs: 400 });
  cleanup.defer(() => standIn.close());

  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-screenshot-'));
  const temporal = {
    address: server.address,
    namespace: server.namespace,
    taskQueue: 'baton-screenshot',
    tls: false,
  };
  const worker = await runWorker({
    temporal,
    activityOptions: {
      ...activityOptionsFromEnv({}),
      apiKey: OFFLINE_STAND_IN_KEY,
      baseURL: standIn.url,
      artifactDir: path.join(scratch, 'artifacts'),
      reportDir: path.join(scratch, 'reports'),
    },
  });
  cleanup.defer(() => worker.stop());

  const client = server.env.client;
  const workflowId = 'research-why-solid-state-batteries-matter';
  const handle = await startResearchTask(client, {
    taskQueue: temporal.taskQueue,
    workflowId,
    question: QUESTION,
    playbook: 'research-brief',
    by: APPROVER,
  });
  let end: TaskEnd | undefined;
  for await (const event of watchTask(client, workflowId, { pollMs: 300 })) {
    if (event.kind === 'closed') end = event.end;
    else if (event.kind === 'unanswered') throw event.error;
    else if (!event.last && event.status.pendingGate) {
      const { gate, approvals } = event.status.pendingGate;
      if (approvals.some((a) => a.by === APPROVER)) continue;
      const outcome = await sendDecision(handle, { decision: 'approve', by: APPROVER, gate });
      if (!outcome.accepted) throw new Error(`the ${gate} gate refused ${APPROVER}: ${outcome.reason}`);
      console.log(`approved the ${gate} gate`);
    }
  }
  if (!end) throw new Error('the task did not end');
  if ('error' in end) throw end.error;
  const { outcome } = end.value as { outcome: string };
  const { runId } = await handle.describe();
  console.log(`task ${workflowId}: ${outcome}`);

  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  cleanup.defer(() => browser.close());
  // Tall enough for the whole timeline without the page's inner scrolling.
  const page = await browser.newPage({ viewport: { width: 1400, height: 2000 } });
  const url = `${server.uiUrl}/namespaces/${server.namespace}/workflows/${encodeURIComponent(workflowId)}/${runId}/timeline`;
  console.log(`opening ${url}`);
  await page.goto(url, { waitUntil: 'networkidle' });
  // The timeline labels its rows with the activities' summaries once the history has loaded.
  await page.getByText('synthesize · lead').first().waitFor({ timeout: 30_000 });
  // Oldest first: the plan at the top, publishing at the bottom.
  await page.getByRole('button', { name: 'Descending' }).click();
  await page.waitForTimeout(1000);
  // From the task's title to the end of the timeline, without the navigation bar on the left.
  const title = await page.getByRole('heading', { name: workflowId }).first().boundingBox();
  const section = page.getByRole('heading', { name: 'Timeline', exact: true }).locator('xpath=../../..');
  const timeline = await section.boundingBox();
  if (!title || !timeline) throw new Error('the workflow page did not show its title and timeline');
  // The chart's box is taller than what it draws: end below the time axis's labels.
  let bottom = 0;
  for (const label of await section.locator('.tick-label').all()) {
    const box = await label.boundingBox();
    if (box) bottom = Math.max(bottom, box.y + box.height);
  }
  const top = Math.max(title.y - 16, 0);
  const clip = {
    x: timeline.x - 16,
    y: top,
    width: Math.min(timeline.width + 32, 1400 - timeline.x + 16),
    height: (bottom || timeline.y + timeline.height) + 16 - top,
  };
  await fs.mkdir(path.dirname(out), { recursive: true });
  await page.screenshot({ path: out, clip });
  console.log(`saved ${out} (${(await fs.stat(out)).size} bytes)`);
  return 0;
}

if (require.main === module) runMain(main);
