/**
 * The inbox as the browser tests use it: started on loopback with one approver, alice, who signs in
 * with a token (inbox/auth.ts), reading the stores of the activities under test.
 */
import type { Client } from '@temporalio/client';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { openStores, type StoreOptions } from '../activities/store';
import { startInbox, type Inbox } from '../inbox/app';
import { hashToken, newToken } from '../inbox/auth';

/** An inbox whose one approver is alice, and her token. */
export async function startAliceInbox(
  client: Client,
  options: StoreOptions,
  refreshMs: number,
): Promise<{ inbox: Inbox; token: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-inbox-'));
  const token = newToken();
  const tokensFile = path.join(dir, 'tokens.yaml');
  await fs.writeFile(tokensFile, `alice: ${hashToken(token)}\n`, { mode: 0o600 });
  const inbox = await startInbox({
    client,
    stores: openStores(options),
    identity: { kind: 'tokens', file: tokensFile },
    port: 0,
    refreshMs,
    log: () => undefined,
  });
  return { inbox, token };
}

/** Signs in on `page` with the token, and waits for the list of pending decisions. */
export async function signIn(page: Page, inbox: Inbox, token: string): Promise<void> {
  await page.goto(`${inbox.url}/`);
  await page.getByLabel('Approver token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${inbox.url}/`);
}
