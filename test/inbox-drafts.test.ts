/**
 * Issue 20, reviewing in the inbox: the draft report rendered from Markdown, with citations that
 * lead to their references, nothing of the model's own HTML or script left, and after a request for
 * changes, what changed since the draft the reviewer read. Real parts throughout: the real
 * activities (synthesis included) against the offline stand-in model, whose report carries hostile
 * Markdown; the real Temporal dev server; a real headless Chromium. Each view is saved as a PNG in
 * the test's temporary folder (its path is printed).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createActivities } from '../activities';
import { chromiumPath } from '../local/browser';
import { startStandIn, type StandIn, type StandInRequest, type StandInReply } from '../standin/server';
import { researchTask } from '../workflows';
import { tempActivityOptions, uniqueId, useTestServer, waitForStatus, withWorker } from './helpers';
import { signIn, startAliceInbox } from './inbox-session';

jest.setTimeout(180_000);

const QUESTION = 'Which insulation pays back fastest in a terraced house?';
const PLAN = {
  rationale: 'Costs first, then savings.',
  steps: [
    { id: 's1', agent: 'researcher', question: 'What does each kind cost?', dependsOn: [], decompose: false },
    {
      id: 's2',
      agent: 'analyst',
      question: 'What does each save a year?',
      dependsOn: ['s1'],
      decompose: false,
    },
  ],
};
/** The plan after the reviewer asked for grants to be covered: one step added, one question changed. */
const REVISED_PLAN = {
  rationale: 'Costs and grants first, then savings.',
  steps: [
    PLAN.steps[0]!,
    { id: 'g1', agent: 'researcher', question: 'Which grants apply?', dependsOn: [], decompose: false },
    { ...PLAN.steps[1]!, question: 'What does each save a year, net of grants?', dependsOn: ['s1', 'g1'] },
  ],
};

/** What a hostile or careless model may put in a report: raw HTML, script, handlers, bad links. */
const HOSTILE = [
  'Loft insulation pays back first [step:s1], cavity walls next [step:s2].',
  '<script>window.__pwned = "script"</script>',
  '<img src="x" onerror="window.__pwned = \'img\'">',
  '<iframe src="https://attacker.invalid/frame"></iframe>',
  '<a href="javascript:window.__pwned = \'link\'">click me</a> and [a markdown link](javascript:window.__pwned=1)',
  '<div style="position:fixed;inset:0" onclick="window.__pwned = \'div\'">covering div</div>',
  '| Measure | Payback |\n|---|--:|\n| Loft | 2 years [step:s1] |\n| Cavity wall | 4 years [step:s2] |',
  'A real source: [the survey](https://example.org/survey).',
].join('\n\n');

/** The second draft, after the request for changes: one claim changed, one paragraph added. */
const REVISED = HOSTILE.replace('cavity walls next', 'solid walls last').concat(
  '\n\nRunning costs, as asked: about 120 a year saved on gas [step:s2].',
);

function respond(req: StandInRequest): StandInReply | undefined {
  if (req.toolName === 'submit_plan') {
    return { kind: 'tool', input: req.userText.includes('<change_request') ? REVISED_PLAN : PLAN };
  }
  if (req.toolName === 'submit_report') {
    const revised = req.userText.includes('<change_request');
    return {
      kind: 'tool',
      input: {
        title: 'Insulation payback',
        summary: revised ? 'Loft first; running costs added.' : 'Loft first, then walls.',
        markdown: revised ? REVISED : HOSTILE,
      },
    };
  }
  return undefined;
}

let standIn: StandIn;
let browser: Browser;
let shots: string;
const ctx = useTestServer();

beforeAll(async () => {
  standIn = await startStandIn({ respond });
  browser = await chromium.launch({ executablePath: await chromiumPath(), headless: true });
  shots = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-inbox-drafts-'));
  console.log(`inbox screenshots: ${shots}`);
});
afterAll(async () => {
  await browser?.close();
  await standIn?.close();
});

const shot = (page: Page, name: string) =>
  page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });

/** Nothing the model wrote as HTML is an element, a handler or a script URL in the page, and none of it ran. */
async function expectNoModelHtml(page: Page, scope: string): Promise<void> {
  const report = page.locator(scope);
  await expect(report.locator('script, iframe, img, div[style], [onclick], [onerror]').count()).resolves.toBe(
    0,
  );
  await expect(report.locator('a[href^="javascript:" i]').count()).resolves.toBe(0);
  // No element keeps an event handler, a style or a source, whatever its name.
  await expect(
    report.locator('xpath=.//*[@*[starts-with(name(), "on")] or @style or @src or @srcdoc]').count(),
  ).resolves.toBe(0);
  // Every link is to http(s) or to a reference entry on the page.
  for (const link of await report.locator('a').all()) {
    expect(await link.getAttribute('href')).toMatch(/^(https:\/\/|#ref-step-)/);
  }
  // The model's markup reads as text, and nothing of it ran.
  await expect(report.textContent()).resolves.toContain('<script>window.__pwned = "script"</script>');
  await expect(page.evaluate(() => (globalThis as { __pwned?: string }).__pwned)).resolves.toBeUndefined();
}

test('the draft is rendered with working citations and no model HTML; after a request for changes the inbox shows what changed', async () => {
  const options = { ...(await tempActivityOptions()), baseURL: standIn.url };
  const dialogs: string[] = [];

  await withWorker(ctx, createActivities(options), async (taskQueue) => {
    const { inbox, token } = await startAliceInbox(ctx.client, options, 500);
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    try {
      const handle = await ctx.client.workflow.start(researchTask, {
        taskQueue,
        workflowId: uniqueId('inbox-drafts'),
        args: [{ question: QUESTION, playbook: 'gated' }],
      });
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');

      const page = await context.newPage();
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      await signIn(page, inbox, token);
      await page.goto(`${inbox.url}/task?id=${encodeURIComponent(handle.workflowId)}`);
      await page.getByRole('heading', { name: 'Decision needed: the plan gate' }).waitFor();
      await expect(page.locator('details.changes').count()).resolves.toBe(0);

      // The plan sent back: the re-opened gate shows what changed in it.
      await page.getByLabel('Comment').fill('Cover the grants too.');
      await page.getByRole('button', { name: 'Request changes' }).click();
      const planChanges = page.locator('details.changes');
      await planChanges.waitFor({ timeout: 60_000 });
      await expect(planChanges.locator('summary').textContent()).resolves.toBe(
        'What changed since the previous plan',
      );
      const delta = (await planChanges.locator('ul.plan-delta li').allTextContents()).map((t) =>
        t.replace(/\s+/g, ' ').trim(),
      );
      expect(delta).toEqual([
        'Rationale: Costs first, then savings. Costs and grants first, then savings.',
        'Added step g1 (researcher): Which grants apply?',
        'Step s2: question What does each save a year? What does each save a year, net of grants? dependsOn s1 s1, g1',
      ]);
      await expect(planChanges.locator('ins').first().textContent()).resolves.toBe(
        'Costs and grants first, then savings.',
      );
      await shot(page, 'plan-changes');
      await page.getByRole('button', { name: 'Approve' }).click();
      await page
        .getByRole('heading', { name: 'Decision needed: the report gate' })
        .waitFor({ timeout: 60_000 });

      // Rendered: the title, the label, a table; no worker path.
      const draft = page.locator('.draft div.report');
      await draft.getByRole('heading', { name: 'Insulation payback', level: 1 }).waitFor();
      await expect(draft.locator('blockquote').first().textContent()).resolves.toContain(
        'AI-generated content',
      );
      await expect(draft.locator('table td').allTextContents()).resolves.toContain('Cavity wall');
      // No tool retrieved the survey: the citation pass left it as text marked unverified, no link.
      await expect(draft.getByRole('link', { name: 'the survey' }).count()).resolves.toBe(0);
      await expect(draft.textContent()).resolves.toContain(
        'the survey (unverified source, not retrieved by any tool: https://example.org/survey) [unverified]',
      );
      await expect(page.locator('.draft').textContent()).resolves.not.toContain(options.reportDir);
      await expectNoModelHtml(page, '.draft div.report');

      // A citation leads to its entry under References, which names the step.
      const citation = draft.locator('a.cite', { hasText: '[step:s2]' }).first();
      await expect(citation.getAttribute('href')).resolves.toBe('#ref-step-s2');
      await citation.click();
      await page.waitForURL(/#ref-step-s2$/);
      const entry = page.locator('li#ref-step-s2');
      await expect(entry.textContent()).resolves.toContain('What does each save a year, net of grants?');
      await expect(page.locator('li#ref-step-s2:target').count()).resolves.toBe(1);
      await shot(page, 'draft-rendered');

      // Alice asks for changes; the gate opens on the new draft with what changed since hers.
      await page.getByLabel('Comment').fill('Add the running costs.');
      await page.getByRole('button', { name: 'Request changes' }).click();
      const changes = page.locator('details.changes');
      await changes.waitFor({ timeout: 60_000 });
      await expect(changes.locator('summary').textContent()).resolves.toBe(
        'What changed since the previous draft',
      );
      await expect(changes.locator('ins').allTextContents()).resolves.toEqual(
        expect.arrayContaining([
          expect.stringContaining('solid'),
          expect.stringContaining('Running costs, as asked'),
        ]),
      );
      await expect(changes.locator('del').allTextContents()).resolves.toEqual(
        expect.arrayContaining([expect.stringContaining('cavity')]),
      );
      await expect(changes.locator('.diff-stats').textContent()).resolves.toMatch(/lines? added/);
      // The diff shows the model's markup as text too.
      await expect(changes.locator('script, img, iframe').count()).resolves.toBe(0);
      await page.locator('.draft div.report', { hasText: 'Running costs, as asked' }).waitFor();
      await expectNoModelHtml(page, '.draft div.report');
      await shot(page, 'draft-changes');

      // Signed off: the published report is rendered the same way.
      await page.getByRole('button', { name: 'Approve' }).click();
      await page.locator('details.published div.report').waitFor({ timeout: 60_000 });
      await expectNoModelHtml(page, 'details.published div.report');
      await page.locator('details.published a.cite', { hasText: '[step:s1]' }).first().click();
      await page.waitForURL(/#ref-step-s1$/);
      await shot(page, 'published');
      expect((await handle.result()).outcome).toBe('completed');
      expect(dialogs).toEqual([]);
    } finally {
      await context.close();
      await inbox.close();
    }
  });
});
