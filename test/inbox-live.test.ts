/**
 * Issue 20, live words in the inbox: while a step's model call streams, the task page shows what the
 * model has written so far under the running step (read from the server's description of the task,
 * client/live.ts, never from its history), as text: the model's HTML, script and terminal escapes
 * never reach the page as markup or control characters. Once the step is done, its summary shows
 * instead. Real parts: the real activities against the offline stand-in model (streaming slowly,
 * its findings scripted by the `respond` hook), the real Temporal dev server, a headless Chromium.
 */
import { chromium, type Browser } from 'playwright-core';
import { createActivities } from '../activities';
import { chromiumPath } from '../local/browser';
import { defaultReply } from '../standin/replies';
import { startStandIn, type StandIn, type StandInRequest, type StandInReply } from '../standin/server';
import { researchTask } from '../workflows';
import { historyText, tempActivityOptions, uniqueId, useTestServer, withWorker } from './helpers';
import { signIn, startAliceInbox } from './inbox-session';

jest.setTimeout(120_000);

const PLAN = {
  rationale: 'One look at the costs.',
  steps: [
    { id: 's1', agent: 'researcher', question: 'What does each kind cost?', dependsOn: [], decompose: false },
  ],
};

/** What a hostile model may write in its findings: markup, script, a handler, terminal escapes. */
const HOSTILE = [
  'Loft insulation costs least.',
  '<script>window.__pwned = "script"</script>',
  '<img src=x onerror="window.__pwned = 1">',
  '\u001b[2J\u001b[31mred alert\u001b[0m \u001b]8;;https://attacker.invalid\u0007a link\u001b]8;;\u0007',
  'Cavity walls come next.',
].join(' ');

function respond(req: StandInRequest): StandInReply | undefined {
  if (req.toolName === 'submit_plan') return { kind: 'tool', input: PLAN };
  if (req.toolName === 'submit_findings') {
    const base = defaultReply(req);
    if (base.kind !== 'tool') return base;
    // Short enough that the first words the server sees (a heartbeat's) hold the markup.
    return {
      kind: 'tool',
      input: {
        ...(base.input as object),
        summary: 'Loft first.',
        findings: `${HOSTILE} ${HOSTILE} ${HOSTILE}`,
      },
    };
  }
  return undefined;
}

let standIn: StandIn;
let browser: Browser;
const ctx = useTestServer();

beforeAll(async () => {
  // Each reply streams over 8 s: the step's call is in flight for many of the page's refreshes, even on a
  // loaded machine (at 2 s, a busy CI run once saw the step finish before the page showed its words).
  standIn = await startStandIn({ respond, latencyMs: 8000 });
  browser = await chromium.launch({ executablePath: await chromiumPath(), headless: true });
});
afterAll(async () => {
  await browser?.close();
  await standIn?.close();
});

test("the task page shows a running step's live words as text, then its summary; the model's markup and escapes never reach it", async () => {
  const options = { ...(await tempActivityOptions()), baseURL: standIn.url };

  await withWorker(ctx, createActivities(options), async (taskQueue) => {
    const { inbox, token } = await startAliceInbox(ctx.client, options, 300);
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const violations: string[] = [];
      page.on('console', (m) => {
        if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
      });
      await signIn(page, inbox, token);

      const handle = await ctx.client.workflow.start(researchTask, {
        taskQueue,
        workflowId: uniqueId('inbox-live'),
        args: [{ question: 'Which insulation is cheapest?', playbook: 'open' }],
      });
      await page.goto(`${inbox.url}/task?id=${encodeURIComponent(handle.workflowId)}`);

      // While s1 runs: the tail of what the model has written, under the step, as text.
      const words = page.locator('li#step-s1[data-state="running"] .live-words');
      await words.waitFor({ timeout: 60_000 });
      const text = (await words.textContent()) ?? '';
      expect(text).toContain('researcher is writing:');
      expect(text).toContain('<script>window.__pwned');
      for (const control of ['\u001b', '\u0007', '\u009b']) expect(text).not.toContain(control);
      await expect(words.locator('script, img, [onerror]').count()).resolves.toBe(0);

      // Done: the summary, and no live words left.
      await page.locator('li#step-s1[data-state="done"] .step-summary').waitFor({ timeout: 60_000 });
      expect((await handle.result()).outcome).toBe('completed');
      await page.locator('.live-words').first().waitFor({ state: 'detached', timeout: 30_000 });

      // Nothing of the model's markup ran or became an element; no script was refused by the CSP.
      await expect(page.locator('main script, main img, main [onerror]').count()).resolves.toBe(0);
      await expect(
        page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned),
      ).resolves.toBeUndefined();
      expect(violations).toEqual([]);
      // The words were never an event of the task's history.
      expect(await historyText(handle)).not.toMatch(/heartbeatDetails/i);
    } finally {
      await context.close();
      await inbox.close();
    }
  });
});
