/**
 * `npx tsx scripts/screenshot-web-ui.ts [--out docs/web-ui-timeline.png] [--chromium /usr/bin/chromium]`
 *
 * Takes the documentation's picture of the Temporal Web UI: a completed research task's timeline,
 * with the summary Baton gives each activity (`s2 · analyst: …`, `plan · lead`) and each decomposed
 * step's child workflow. Everything runs here and is gone afterwards: an in-memory dev server with
 * its Web UI, the offline stand-in model (with a little latency, so the timeline has width), a
 * worker, one task started as `npm start` starts it and approved at both gates through the `decide`
 * Update, then headless Chromium (playwright-core, with the system's Chromium) on the workflow page.
 *
 * Chromium: `--chromium <path>`, else `CHROMIUM_PATH`, else /usr/bin/chromium (Debian: `apt-get
 * install chromium`).
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { activityOptionsFromEnv, PROJECT_ROOT } from '../activities/options';
import { OFFLINE_STAND_IN_KEY, taskMetadata } from '../cli/start';
import { runMain } from '../lib/cli';
import { startStandIn } from '../standin/server';
import { researchTask } from '../workflows';
import { decide, SEARCH_ATTRIBUTES, status as statusQuery } from '../contract/messages';
import { createBatonWorker } from '../workers/worker';
import { freePort, startDevServer } from './temporal';

const QUESTION = 'Why do solid-state batteries matter for electric cars?';
const APPROVER = 'alice@example.com';

function option(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i === -1 ? undefined : argv[i + 1];
}

async function main(argv: string[]): Promise<number> {
  const out = path.resolve(option(argv, '--out') ?? path.join(PROJECT_ROOT, 'docs', 'web-ui-timeline.png'));
  const executablePath = option(argv, '--chromium') ?? process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const server = await startDevServer({
      uiPort: await freePort(),
      searchAttributes: [...SEARCH_ATTRIBUTES],
      log: (line) => console.log(line),
    });
    cleanups.unshift(() => server.stop());
    console.log(`Temporal Web UI: ${server.uiUrl}`);
    const standIn = await startStandIn({ latencyMs: 400 });
    cleanups.unshift(() => standIn.close());

    const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-screenshot-'));
    const taskQueue = 'baton-screenshot';
    const worker = await createBatonWorker({
      connection: server.env.nativeConnection,
      namespace: server.namespace,
      taskQueue,
      activityOptions: {
        ...activityOptionsFromEnv({}),
        apiKey: OFFLINE_STAND_IN_KEY,
        baseURL: standIn.url,
        artifactDir: path.join(scratch, 'artifacts'),
        reportDir: path.join(scratch, 'reports'),
      },
    });
    const running = worker.run();
    cleanups.unshift(async () => {
      worker.shutdown();
      await running;
    });

    const client = server.env.client;
    const workflowId = 'research-why-solid-state-batteries-matter';
    const handle = await client.workflow.start(researchTask, {
      taskQueue,
      workflowId,
      args: [{ question: QUESTION, playbook: 'research-brief' }],
      ...taskMetadata(QUESTION, 'research-brief', APPROVER),
    });
    const result = handle.result();
    let done = false;
    void result.finally(() => (done = true));
    while (!done) {
      const s = await handle.query(statusQuery);
      if (s.pendingGate && !s.pendingGate.approvals.some((a) => a.by === APPROVER)) {
        await handle.executeUpdate(decide, {
          args: [{ decision: 'approve', by: APPROVER, gate: s.pendingGate.gate }],
        });
        console.log(`approved the ${s.pendingGate.gate} gate`);
      }
      await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, 300))]);
    }
    const { outcome } = await result;
    const { runId } = await handle.describe();
    console.log(`task ${workflowId}: ${outcome}`);

    const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
    cleanups.unshift(() => browser.close());
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
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  }
}

if (require.main === module) runMain(main);
