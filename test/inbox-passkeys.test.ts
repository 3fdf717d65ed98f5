/**
 * Issue 14, item 3: deciding with a passkey in the inbox, end to end. A real headless Chromium
 * (playwright-core) with a virtual authenticator (the DevTools protocol's WebAuthn domain) per
 * person, the inbox in-process on http://localhost, real workers and the real Temporal dev server.
 *
 * Alice and Bob enrol passkeys on the inbox's enrolment page, which prints the approvers.yaml line;
 * the test's config lists those lines (config stays reviewed: the inbox writes none). On a task of
 * the `signed` playbook the attacks come first and are refused, each with the workflow's reason on
 * the page and in the inbox's log: Bob's passkey asserting for Alice, an assertion whose signature
 * was changed on its way, and an assertion made for an older opening of the gate. Then Alice's and
 * Bob's passkeys approve; the task completes, its audit trail and provenance record the approvals
 * as signed, with the passkey each verified with. On an unsigned playbook the page says "unsigned".
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { openStores } from '../activities/store';
import { readPasskeyLine } from '../config/schema';
import { status as statusQuery } from '../contract/messages';
import { startInbox, type Inbox } from '../inbox/app';
import { hashToken, newToken } from '../inbox/auth';
import { chromiumPath } from '../local/browser';
import { researchTask } from '../workflows';
import {
  fakeModelActivities,
  tempActivityOptions,
  uniqueId,
  useTestServer,
  waitForStatus,
  withWorker,
} from './helpers';
import { signedConfig } from './signing';

jest.setTimeout(240_000);

const ctx = useTestServer();
let browser: Browser;
const contexts: BrowserContext[] = [];
const SCREENSHOTS = path.join(__dirname, '..', '.baton', 'screenshots');

beforeAll(async () => {
  browser = await chromium.launch({ executablePath: await chromiumPath(), headless: true });
  await fs.mkdir(SCREENSHOTS, { recursive: true });
});
afterAll(async () => {
  await Promise.all(contexts.splice(0).map((c) => c.close()));
  await browser?.close();
});

const shot = (page: Page, name: string) =>
  page.screenshot({ path: path.join(SCREENSHOTS, `inbox-passkey-${name}.png`), fullPage: true });

/** A tokens file outside the repository for these approvers. */
async function tokensFile(approvers: string[]): Promise<{ file: string; tokens: Record<string, string> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-inbox-passkeys-'));
  const tokens = Object.fromEntries(approvers.map((a) => [a, newToken()]));
  const file = path.join(dir, 'inbox-tokens.yaml');
  await fs.writeFile(
    file,
    Object.entries(tokens)
      .map(([a, t]) => `${a}: ${hashToken(t)}\n`)
      .join(''),
    {
      mode: 0o600,
    },
  );
  return { file, tokens };
}

/**
 * A browser page with its own virtual authenticator (a platform authenticator that keeps resident
 * credentials, verifies the user and simulates their presence), as a person's device.
 */
async function device(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return page;
}

async function signIn(page: Page, base: string, token: string): Promise<void> {
  await page.goto(`${base}/sign-in`);
  await page.getByLabel('Approver token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/`);
}

const signOut = async (page: Page): Promise<void> => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/sign-in$/);
};

/** Enrols a passkey on the enrolment page; returns the line it prints for approvers.yaml. */
async function enrol(page: Page, base: string, name: string): Promise<string> {
  await page.goto(`${base}/passkey`);
  await page.getByRole('button', { name: 'Create a passkey' }).click();
  const line = (await page.locator('#passkey-line').textContent({ timeout: 20_000 }))?.trim() ?? '';
  await shot(page, `enrolled-${name}`);
  return line;
}

/** The text of an inbox answer (HTML), as a person reads it: tags and spacing dropped, entities decoded. */
const ENTITIES: Record<string, string> = {
  '&quot;': '"',
  '&#39;': "'",
  '&lt;': '<',
  '&gt;': '>',
  '&amp;': '&',
};
const textOf = (html: string): string =>
  html
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(quot|#39|lt|gt|amp);/g, (e) => ENTITIES[e]!)
    .replace(/\s+/g, ' ')
    .trim();

/**
 * Clicks a decision button (the page's script has the passkey sign, then posts the decision) and
 * returns the inbox's answer as text: read from the response itself, as the page clears the answer
 * once the gate opens again.
 */
async function decide(page: Page, button: string): Promise<string> {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/task/decide') && r.request().method() === 'POST', {
      timeout: 30_000,
    }),
    page.getByRole('button', { name: button }).click(),
  ]);
  return textOf(await response.text());
}

test('passkeys: enrolled in the inbox, listed in config, approve a signed task; forged, tampered and replayed assertions are refused', async () => {
  const { file, tokens } = await tokensFile(['alice', 'bob']);
  const logs: string[] = [];
  // The workers' folders (their store, which the inbox reads drafts from); their config comes later.
  const options = await tempActivityOptions();
  const inbox: Inbox = await startInbox({
    client: ctx.client,
    stores: openStores(options),
    identity: { kind: 'tokens', file },
    port: 0,
    refreshMs: 500,
    log: (line) => logs.push(line),
  });
  // The relying party is the host: WebAuthn takes host names, not IP addresses.
  const base = inbox.url.replace('127.0.0.1', 'localhost');
  try {
    // Enrolment: each person's device makes a passkey; the page prints the line to commit.
    const alice = await device();
    await signIn(alice, base, tokens.alice!);
    const aliceLine = await enrol(alice, base, 'alice');
    const bob = await device();
    await signIn(bob, base, tokens.bob!);
    const bobLine = await enrol(bob, base, 'bob');
    for (const line of [aliceLine, bobLine]) {
      expect(line).toMatch(
        /^webauthn-es256 localhost [A-Za-z0-9_-]+ [A-Za-z0-9_-]{44} (alice|bob)-\d{4}-\d\d-\d\d$/,
      );
      expect(readPasskeyLine(line)).toHaveProperty('passkey');
    }
    expect(logs).toContain('inbox: alice enrolled a passkey (line printed for review)');

    // The reviewer commits the lines: here, the test's config lists them.
    const config = await signedConfig({}, { alice: [aliceLine], bob: [bobLine] });
    const { activities } = fakeModelActivities({ ...options, configDir: config });
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await ctx.client.workflow.start(researchTask, {
        taskQueue,
        workflowId: uniqueId('passkey'),
        args: [{ question: 'Q?', playbook: 'signed' }], // plan: 2 of alice, bob, carol; report: alice
      });
      const id = handle.workflowId;
      const taskUrl = `${base}/task?id=${encodeURIComponent(id)}`;
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');

      // Attack: Bob's device, signed in as Alice. His passkey signs; the task refuses it as hers.
      await signOut(bob);
      await signIn(bob, base, tokens.alice!);
      await bob.goto(taskUrl);
      await bob.getByText('Signed decisions:').waitFor();
      expect(await decide(bob, 'Approve')).toMatch(
        /^Refused: no passkey of "alice" matches: the credential \S+… is not one of them$/,
      );
      await shot(bob, 'refused-other-person');
      await signOut(bob);
      await signIn(bob, base, tokens.bob!);

      // Alice and Bob approve the plan with their own passkeys.
      await alice.goto(taskUrl);
      expect(await decide(alice, 'Approve')).toBe('Accepted. waiting (plan gate, 1 of 2 approvals)');
      await alice.getByText('approved so far by alice (signed with a passkey)').waitFor();
      await shot(alice, 'plan-signed');
      await bob.goto(taskUrl);
      expect(await decide(bob, 'Approve')).toBe('Accepted. approved (plan gate, 2 of 2 approvals)');

      // Attack: Alice's assertion at the report gate, its signature changed on its way to the inbox.
      await alice
        .getByRole('heading', { name: 'Decision needed: the report gate' })
        .waitFor({ timeout: 30_000 });
      // The region refreshes itself until the draft shows; then it holds still for the click.
      await alice.locator('.draft div.report').waitFor();
      let original = '';
      await alice.route(`${base}/task/decide`, async (route) => {
        original = route.request().postData() ?? '';
        const fields = new URLSearchParams(original);
        const signature = fields.get('signature')!;
        fields.set(
          'signature',
          `${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`,
        );
        await route.continue({ postData: fields.toString() });
      });
      await alice.getByLabel('Comment').fill('Ship it.');
      expect(await decide(alice, 'Approve')).toMatch(
        /^Refused: bad signature: the passkey assertion does not verify with alice's passkey \S+… \(changed after signing, or forged\)$/,
      );
      await alice.unroute(`${base}/task/decide`);

      // Alice asks for changes: the gate opens again, a new instance.
      await alice.getByLabel('Comment').fill('Say more.');
      expect(await decide(alice, 'Request changes')).toBe('Accepted. changes-requested (report gate)');
      const reopened = await waitForStatus(
        handle,
        (s) => s.pendingGate?.gate === 'report' && s.revisions.report === 1,
        'the report gate again',
      );
      expect(reopened.pendingGate?.instance).toBe(3);

      // Attack: the untampered assertion, made for the gate's earlier opening, sent again.
      const replay = await alice.request.post(`${base}/task/decide`, {
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: base, 'HX-Request': 'true' },
        data: original,
      });
      const replayed = textOf(await replay.text());
      expect(replayed).toBe('Refused: signed for an older instance of the report gate (2; open now: 3)');

      // Alice signs off the revised report with her passkey.
      await alice.goto(taskUrl);
      await alice.getByLabel('Comment').fill('Good to go.');
      expect(await decide(alice, 'Approve')).toBe('Accepted. approved (report gate, 1 of 1 approvals)');
      const result = await handle.result();
      expect(result.outcome).toBe('completed');
      await alice.goto(taskUrl);
      await alice.locator('table.audit').getByText('signed', { exact: true }).first().waitFor();
      await shot(alice, 'completed');

      // Audited: each refusal in the inbox's log (a refused Update leaves nothing in history), each
      // approval in the task's audit trail as signed, and in the provenance with its passkey.
      const refusals = logs.filter((l) => / refused \(/.test(l));
      expect(refusals).toEqual([
        expect.stringMatching(
          /^inbox: alice approve plan with a passkey on .*: refused \(no passkey of "alice" matches/,
        ),
        expect.stringMatching(/^inbox: alice approve report with a passkey on .*: refused \(bad signature/),
        expect.stringMatching(
          /^inbox: alice approve report with a passkey on .*: refused \(signed for an older instance/,
        ),
      ]);
      const accepted = result.provenance.audit.filter((e) => e.event === 'decision' && e.accepted);
      expect(accepted.map((e) => [e.by, e.decision, e.signed])).toEqual([
        ['alice', 'approve', true],
        ['bob', 'approve', true],
        ['alice', 'requestChanges', true],
        ['alice', 'approve', true],
      ]);
      const keyOf = (line: string) => (readPasskeyLine(line) as { passkey: unknown }).passkey;
      expect(
        result.provenance.approvals.map((a) => [a.gate, a.by, a.statement?.signature.alg, a.statement?.key]),
      ).toEqual([
        ['plan', 'alice', 'webauthn', keyOf(aliceLine)],
        ['plan', 'bob', 'webauthn', keyOf(bobLine)],
        ['report', 'alice', 'webauthn', keyOf(aliceLine)],
      ]);

      // An unsigned playbook: the page says so, and the approval is shown unsigned.
      const plain = await ctx.client.workflow.start(researchTask, {
        taskQueue,
        workflowId: uniqueId('unsigned'),
        args: [{ question: 'Q?', playbook: 'gated' }],
      });
      await waitForStatus(plain, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
      await alice.goto(`${base}/task?id=${encodeURIComponent(plain.workflowId)}`);
      await alice.getByText('Unsigned:').waitFor();
      expect(await decide(alice, 'Approve')).toBe('Accepted. approved (plan gate, 1 of 1 approvals)');
      await alice.locator('table.audit').getByText('unsigned', { exact: true }).waitFor();
      expect((await plain.query(statusQuery)).audit.find((e) => e.event === 'decision')?.signed).toBe(false);
      await plain.terminate('test done');
    });
  } finally {
    await Promise.all(contexts.splice(0).map((c) => c.close()));
    await inbox.close();
  }
});
