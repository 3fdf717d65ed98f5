/**
 * Issue 7, the approval inbox, end to end: the inbox in-process (`startInbox`), a real worker whose
 * model activities are plain functions, the real Temporal dev server, and a real headless Chromium
 * (driven by playwright-core; local/browser.ts says which). A person signs in with their token, finds the
 * task in their list, approves the plan, watches the steps complete, asks for changes and signs off
 * the report; someone who is not an approver of the gate sees the workflow's refusal; requests
 * without a session, without the CSRF token or, behind a proxy, without the proxy's secret are
 * refused. Each page is saved to .baton/screenshots/inbox-*.png.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { Plan } from '../config/schema';
import { openStores } from '../activities/store';
import { startInbox, SESSION_COOKIE, type Inbox } from '../inbox/app';
import { hashToken, newToken } from '../inbox/auth';
import { inboxOptionsFromEnv, NO_IDENTITY_SOURCE, PROXY_SECRET_HEADER } from '../inbox/options';
import { chromiumPath } from '../local/browser';
import { researchTask } from '../workflows';
import { status as statusQuery } from '../contract/messages';
import {
  fakeModelActivities,
  tempActivityOptions,
  uniqueId,
  useTestServer,
  waitForStatus,
  withWorker,
  runScript,
} from './helpers';

const ROOT = path.join(__dirname, '..');
const SCREENSHOTS = path.join(ROOT, '.baton', 'screenshots');
const QUESTION = 'How do heat pumps compare with gas boilers for old houses?';

/** The lead's plan at the top: two gathering steps, one of them decomposed, then an analysis. */
const PARENT_PLAN: Plan = {
  rationale: 'Gather the costs, break the field evidence down further, then weigh one against the other.',
  steps: [
    {
      id: 's1',
      agent: 'researcher',
      question: 'What do installation and running costs look like?',
      dependsOn: [],
      decompose: false,
    },
    {
      id: 's2',
      agent: 'researcher',
      question: 'What does field evidence say about efficiency in old houses?',
      dependsOn: [],
      decompose: true,
    },
    {
      id: 's3',
      agent: 'analyst',
      question: 'Weigh costs against efficiency.',
      dependsOn: ['s1', 's2'],
      decompose: false,
    },
  ],
};
/** The child's plan, one level deeper: the depth budget of the `gated` playbook is spent there. */
const CHILD_PLAN: Plan = {
  rationale: 'Two kinds of field study.',
  steps: [
    { id: 'c1', agent: 'researcher', question: 'Field trials in the UK.', dependsOn: [], decompose: false },
    { id: 'c2', agent: 'researcher', question: 'Field trials in Germany.', dependsOn: [], decompose: false },
  ],
};

jest.setTimeout(180_000);

const ctx = useTestServer();
let browser: Browser;
/** Browser sessions of the running test: closed (their pages stop polling) before the inbox closes. */
const contexts: BrowserContext[] = [];

async function newContext(options: Parameters<Browser['newContext']>[0] = {}): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, ...options });
  contexts.push(context);
  return context;
}

const closeContexts = () => Promise.all(contexts.splice(0).map((c) => c.close()));
afterEach(closeContexts);

beforeAll(async () => {
  // Never skipped: without a browser this test cannot say anything, so it fails and says why.
  browser = await chromium.launch({ executablePath: await chromiumPath(), headless: true });
  await fs.mkdir(SCREENSHOTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
});

const shot = (page: Page, name: string) =>
  page.screenshot({ path: path.join(SCREENSHOTS, `inbox-${name}.png`), fullPage: true });

/** A tokens file outside the repository, as a deployment keeps it, for these approvers. */
async function tokensFile(approvers: string[]): Promise<{ file: string; tokens: Record<string, string> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-inbox-'));
  const tokens = Object.fromEntries(approvers.map((a) => [a, newToken()]));
  const file = path.join(dir, 'inbox-tokens.yaml');
  const lines = Object.entries(tokens).map(([a, t]) => `${a}: ${hashToken(t)}`);
  await fs.writeFile(file, `# approver id: sha256 of their token\n${lines.join('\n')}\n`, { mode: 0o600 });
  return { file, tokens };
}

/** A browser session signed in with `token`. */
async function signIn(inbox: Inbox, token: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await newContext();
  const page = await context.newPage();
  await page.goto(`${inbox.url}/`);
  await page.getByLabel('Approver token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${inbox.url}/`);
  return { context, page };
}

/** The steps of the plan tree in page order, nested ones included: [element id, state]. */
async function steps(page: Page): Promise<[string | null, string | null][]> {
  return Promise.all(
    (await page.locator('li.step').all()).map(
      async (li) =>
        [await li.getAttribute('id'), await li.getAttribute('data-state')] as [string | null, string | null],
    ),
  );
}

/** Clicks a decision button and returns the inbox's answer as text (what #decision-result then shows). */
async function decide(page: Page, button: string): Promise<string> {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/task/decide') && r.request().method() === 'POST'),
    page.getByRole('button', { name: button }).click(),
  ]);
  return (await response.text())
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

test('an approver signs in, approves the plan, watches the steps, and signs off the report; others are refused', async () => {
  const { file, tokens } = await tokensFile(['alice', 'dave']);
  const stepsMayFinish = deferred();
  const options = await tempActivityOptions();
  const { activities, calls } = fakeModelActivities(options, {
    plan: (input) => ({
      valid: true,
      plan: input.limits.depth === 0 ? PARENT_PLAN : CHILD_PLAN,
      usage: { inputTokens: 120, outputTokens: 80 },
      model: input.lead.model,
    }),
    // Steps wait until the test has seen them running in the browser.
    step: () => stepsMayFinish.promise,
  });
  const logs: string[] = [];
  await withWorker(ctx, activities, async (taskQueue) => {
    const inbox = await startInbox({
      client: ctx.client,
      stores: openStores(options),
      identity: { kind: 'tokens', file },
      port: 0,
      refreshMs: 500,
      people: new Map([['alice', 'Alice Example']]),
      log: (line) => logs.push(line),
    });
    try {
      const handle = await ctx.client.workflow.start(researchTask, {
        taskQueue,
        workflowId: uniqueId('inbox'),
        args: [{ question: QUESTION, playbook: 'gated' }], // plan and report gates: alice or bob
      });
      const id = handle.workflowId;
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');

      // Without a session: pages send you to sign in, a decision is refused, and the task is untouched.
      const anonymous = await fetch(`${inbox.url}/task?id=${encodeURIComponent(id)}`, { redirect: 'manual' });
      expect(anonymous.status).toBe(303);
      expect(anonymous.headers.get('location')).toBe(
        `/sign-in?next=${encodeURIComponent(`/task?id=${encodeURIComponent(id)}`)}`,
      );
      const forged = await fetch(`${inbox.url}/task/decide`, {
        method: 'POST',
        headers: { Origin: inbox.url, 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ id, decision: 'approve', gate: 'plan' }).toString(),
        redirect: 'manual',
      });
      expect(forged.status).toBe(401);
      expect(await forged.text()).toContain('You are not signed in, so nothing was done.');

      // Alice signs in: a wrong token first.
      const { context: aliceContext, page } = await (async () => {
        const context = await newContext();
        const p = await context.newPage();
        await p.goto(`${inbox.url}/`);
        expect(new URL(p.url()).pathname).toBe('/sign-in');
        await shot(p, 'sign-in');
        await p.getByLabel('Approver token').fill('bti_not-a-token');
        await p.getByRole('button', { name: 'Sign in' }).click();
        await p.getByText('That token is not valid').waitFor();
        await p.getByLabel('Approver token').fill(tokens.alice!);
        await p.getByRole('button', { name: 'Sign in' }).click();
        await p.waitForURL(`${inbox.url}/`);
        return { context, page: p };
      })();
      const cookie = (await aliceContext.cookies()).find((c) => c.name === SESSION_COOKIE)!;
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
      await page.getByText('Signed in as Alice Example').waitFor();

      // Her list shows the task (visibility catches up; the list refreshes itself).
      await page.getByText(id, { exact: true }).waitFor({ timeout: 20_000 });
      const row = page.locator('tr', { has: page.getByText(id, { exact: true }) });
      await expect(row.textContent()).resolves.toContain('plan gate');
      await expect(row.textContent()).resolves.toContain(QUESTION);
      await shot(page, 'pending');
      await page.getByRole('button', { name: 'All' }).click();
      await page.getByText(id, { exact: true }).waitFor({ timeout: 20_000 });
      await page.getByRole('button', { name: 'Mine' }).click();

      // The task page at the plan gate: the plan as a tree, the decomposed step announced.
      await page.getByRole('link', { name: QUESTION }).click();
      await page.getByRole('heading', { name: 'Decision needed: the plan gate' }).waitFor();
      await expect(page.locator('.rationale').textContent()).resolves.toBe(PARENT_PLAN.rationale);
      expect(await steps(page)).toEqual([
        ['step-s1', 'pending'],
        ['step-s2', 'pending'],
        ['step-s3', 'pending'],
      ]);
      await expect(page.locator('#step-s3').textContent()).resolves.toMatch(/after s1, s2/);
      await expect(page.locator('#step-s2').textContent()).resolves.toContain(
        'Will be planned again one level deeper (depth 1), as a child task.',
      );
      await shot(page, 'task-plan');

      // Approve the plan: the workflow's answer comes back on the page.
      await page.getByRole('button', { name: 'Approve' }).click();
      await page.locator('#decision-result').getByText('approved (plan gate, 1 of 1 approvals)').waitFor();
      expect(calls.plan.filter((p) => p.limits.depth === 0)).toHaveLength(1); // planned once, not re-planned

      // The page refreshes itself: steps show as running, then (released) done, with the child's tree.
      await page.locator('#step-s1[data-state="running"]').waitFor({ timeout: 20_000 });
      await page.getByText(`${id}/step-s2`, { exact: true }).first().waitFor({ timeout: 20_000 });
      await shot(page, 'task-running');
      stepsMayFinish.resolve();
      await page
        .getByRole('heading', { name: 'Decision needed: the report gate' })
        .waitFor({ timeout: 30_000 });
      await page.locator('#step-s3[data-state="done"]').waitFor();
      expect(await steps(page)).toEqual([
        ['step-s1', 'done'],
        ['step-s2', 'done'],
        ['step-s2/c1', 'done'],
        ['step-s2/c2', 'done'],
        ['step-s3', 'done'],
      ]);
      const s1 = (await page.locator('#step-s1').textContent()) ?? '';
      expect(s1).toContain('summary of s1');
      expect(s1).toContain('source for s1');
      expect(s1).toContain('15 tokens');
      await expect(page.locator('[id="step-s2/c1"]').textContent()).resolves.toContain('depth 1');
      await expect(page.locator('.draft div.report').textContent()).resolves.toContain(
        'Claim from s1 [step:s1]',
      );
      const atReport = await handle.query(statusQuery);
      // The live region refreshes on its own poll, apart from the decision panel that shows the draft:
      // it may still show the totals from before the synthesis until its next refresh.
      await page
        .locator('table tfoot', { hasText: atReport.usage.inputTokens.toLocaleString('en-US') })
        .first()
        .waitFor({ timeout: 30_000 });
      await shot(page, 'task-report');

      // Dave may sign in, but is no approver of this gate: he reads the workflow's refusal.
      const dave = await signIn(inbox, tokens.dave!);
      await dave.page.goto(`${inbox.url}/task?id=${encodeURIComponent(id)}`);
      await dave.page.getByText('are not listed as an approver of this gate now').waitFor();
      await dave.page.getByRole('button', { name: 'Approve' }).click();
      const refusal = dave.page.locator('#decision-result .notice-refused');
      await refusal.waitFor();
      expect(await refusal.textContent()).toMatch(
        /Refused:\s*"dave" is not an approver of the report gate now \(approvers: alice, bob\)/,
      );
      await shot(dave.page, 'refused');
      expect((await handle.query(statusQuery)).pendingGate?.gate).toBe('report');

      // A POST with Alice's session but without the page's CSRF token is refused.
      const noCsrf = await fetch(`${inbox.url}/task/decide`, {
        method: 'POST',
        headers: {
          Origin: inbox.url,
          Cookie: `${SESSION_COOKIE}=${cookie.value}`,
          'Content-Type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ id, decision: 'approve', gate: 'report' }).toString(),
      });
      expect(noCsrf.status).toBe(403);
      expect(await noCsrf.text()).toContain('CSRF check');

      // A refusal in Alice's own page: a change request needs a comment.
      await page.getByRole('button', { name: 'Request changes' }).click();
      await page
        .locator('#decision-result')
        .getByText('requestChanges needs a comment saying what to change')
        .waitFor();

      // Alice asks for changes, re-running s1 first; then signs off the revised report.
      await page.getByLabel('Comment').fill('Say more about running costs.');
      await page.locator('input[name="rerun"][value="s1"]').check();
      // (Read from the answer itself: the page clears it as soon as the gate opens again.)
      expect(await decide(page, 'Request changes')).toBe('Accepted. changes-requested (report gate)');
      await page.getByText("re-run 1 time at a reviewer's request").waitFor({ timeout: 30_000 });
      // The gate opens again on the revised draft (the panel refreshes itself).
      await page
        .locator('.draft div.report', { hasText: 'Revised for: Say more about running costs.' })
        .waitFor({ timeout: 30_000 });
      await page.getByRole('heading', { name: 'Decision needed: the report gate' }).waitFor();
      await page.getByLabel('Comment').fill('Good to go.');
      await page.getByRole('button', { name: 'Approve' }).click();
      await page.locator('#decision-result').getByText('approved (report gate, 1 of 1 approvals)').waitFor();
      await page.getByText('This task has ended (completed)').waitFor({ timeout: 30_000 });
      await page.locator('#live').getByText('Published:').waitFor({ timeout: 30_000 });
      // The answer of the plan gate was cleared when the report gate opened; this is the last one.
      await expect(page.locator('#decision-result').textContent()).resolves.toMatch(
        /^\s*Accepted\.\s*approved \(report gate, 1 of 1 approvals\)\s*$/,
      );
      const history = page.locator('table.audit');
      await expect(history.textContent()).resolves.toContain('Say more about running costs.');
      await expect(history.textContent()).resolves.toContain('Good to go.');
      await shot(page, 'completed');

      const result = await handle.result();
      expect(result.outcome).toBe('completed');
      expect(result.provenance.approvals.map((a) => [a.gate, a.by, a.comment])).toEqual([
        ['plan', 'alice', undefined],
        ['report', 'alice', 'Good to go.'],
      ]);
      expect(calls.step.filter((s) => s.step.id === 's1')).toHaveLength(2);
      // The inbox logs each sign-in and decision.
      expect(logs).toEqual(
        expect.arrayContaining([
          'inbox: alice signed in',
          'inbox: a sign-in with an unknown token was refused',
          expect.stringMatching(/^inbox: dave approve report on \S+: refused \("dave" is not an approver/),
        ]),
      );

      // Signing out ends the session: the old cookie opens nothing.
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.waitForURL(/\/sign-in$/);
      const stale = await fetch(`${inbox.url}/`, {
        headers: { Cookie: `${SESSION_COOKIE}=${cookie.value}` },
        redirect: 'manual',
      });
      expect(stale.status).toBe(303);
    } finally {
      stepsMayFinish.resolve();
      await closeContexts();
      await inbox.close();
    }
  });
});

test('behind a proxy, the identity header counts only on requests carrying the proxy secret', async () => {
  const proxySecret = randomBytes(32).toString('base64url');
  const inbox = await startInbox({
    client: ctx.client,
    identity: { kind: 'header', header: 'X-Forwarded-User', proxySecret },
    port: 0,
  });
  try {
    const get = (headers: Record<string, string>) => fetch(`${inbox.url}/`, { headers, redirect: 'manual' });
    const direct = await get({ 'X-Forwarded-User': 'alice' });
    expect(direct.status).toBe(401);
    expect(await direct.text()).toContain('only through its authenticating proxy');
    expect((await get({ 'X-Forwarded-User': 'alice', [PROXY_SECRET_HEADER]: 'guess' })).status).toBe(401);
    const noUser = await get({ [PROXY_SECRET_HEADER]: proxySecret });
    expect(noUser.status).toBe(401);
    expect(await noUser.text()).toContain('The proxy sent no usable identity in X-Forwarded-User.');
    // Sign-in pages do not exist in this mode; the proxy signs people in.
    expect((await fetch(`${inbox.url}/sign-in`, { redirect: 'manual' })).status).toBe(303);

    // Through the "proxy": the browser sends what the proxy would add.
    const context = await newContext({
      viewport: { width: 1200, height: 700 },
      extraHTTPHeaders: { 'X-Forwarded-User': 'carol', [PROXY_SECRET_HEADER]: proxySecret },
    });
    const page = await context.newPage();
    const response = await page.goto(`${inbox.url}/?all=1`);
    expect(response?.status()).toBe(200);
    await page.getByText('Signed in as carol').waitFor();
    await page.getByRole('heading', { name: 'All tasks waiting for a decision' }).waitFor();
    await shot(page, 'proxy');
  } finally {
    await closeContexts();
    await inbox.close();
  }
});

test('the inbox refuses to start without an identity source, or with a tokens file it cannot use', async () => {
  expect(() => inboxOptionsFromEnv([], {})).toThrow(NO_IDENTITY_SOURCE);
  expect(() => inboxOptionsFromEnv([], { BATON_INBOX_IDENTITY: 'header:X-Forwarded-User' })).toThrow(
    /needs BATON_INBOX_PROXY_SECRET/,
  );
  expect(() =>
    inboxOptionsFromEnv([], {
      BATON_INBOX_IDENTITY: 'header:X Forwarded',
      BATON_INBOX_PROXY_SECRET: 'x'.repeat(40),
    }),
  ).toThrow('is not an HTTP header name');
  expect(() => inboxOptionsFromEnv(['--port', '70000'], { BATON_INBOX_TOKENS_FILE: '/x' })).toThrow(
    '--port must be a port number from 0 to 65535',
  );
  expect(
    inboxOptionsFromEnv(['--port=9000'], { BATON_INBOX_TOKENS_FILE: '/etc/baton/t.yaml' }),
  ).toMatchObject({
    port: 9000,
    identity: { kind: 'tokens', file: '/etc/baton/t.yaml' },
  });

  const missing = path.join(os.tmpdir(), uniqueId('no-such-tokens'), 'tokens.yaml');
  await expect(
    startInbox({ client: ctx.client, identity: { kind: 'tokens', file: missing }, port: 0 }),
  ).rejects.toThrow(`BATON_INBOX_TOKENS_FILE=${missing} cannot be read`);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-inbox-'));
  const bad = path.join(dir, 'tokens.yaml');
  await fs.writeFile(bad, 'alice: 5f4dcc3b5aa765d61d8327deb882cf99\n');
  await expect(
    startInbox({ client: ctx.client, identity: { kind: 'tokens', file: bad }, port: 0 }),
  ).rejects.toThrow('alice: must be "sha256:" and 64 lower-case hex digits');

  // The script itself, as an operator runs it: exit 1 and what to set.
  const env = { ...process.env };
  for (const name of ['BATON_INBOX_IDENTITY', 'BATON_INBOX_TOKENS_FILE', 'BATON_INBOX_PROXY_SECRET'])
    delete env[name];
  const run = await runScript('inbox/main.ts', [], env);
  expect(run.code).toBe(1);
  expect(run.stderr).toContain('the inbox needs an identity source');
});
