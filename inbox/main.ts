/**
 * `npm run inbox`: the approval inbox on http://127.0.0.1:8234 (see ./app.ts), connected to
 * Temporal as the worker is. `npm run inbox -- new-token <approver id>` makes an approver token.
 */
import { PROJECT_ROOT } from '../activities/options';
import { connectClient, type ConnectedClient } from '../client';
import { command, runMain, UsageError } from '../lib/cli';
import { closeOnSignal } from '../lib/signals';
import { dataConverterFromEnv } from '../workers/codec';
import { temporalOptionsFromEnv } from '../workers/options';
import { startInbox, type Inbox } from './app';
import { hashToken, IDENTITY_PATTERN, isInside, loadPeople, newToken, TokenStore } from './auth';
import { INBOX_COMMAND, inboxOptionsFromEnv, type InboxOptions } from './options';

const NEW_TOKEN = {
  name: 'npm run inbox -- new-token',
  usage: 'usage: npm run inbox -- new-token <approver id>   (an id from config/approvers.yaml)',
  options: {},
  allowPositionals: true,
} as const;

/** Prints a new token for `approver` and the line to add to the tokens file. */
function printNewToken(positionals: string[]): number {
  const [approver, ...rest] = positionals;
  if (approver === undefined) throw new UsageError('an approver id is required');
  if (rest.length) throw new UsageError(`unexpected argument "${rest[0]}"`);
  if (!IDENTITY_PATTERN.test(approver)) throw new UsageError(`"${approver}" is not an approver id`);
  const token = newToken();
  const file = process.env.BATON_INBOX_TOKENS_FILE || '<the file BATON_INBOX_TOKENS_FILE names>';
  console.log(`Token for ${approver}: give it to them privately; it is not stored anywhere:\n\n  ${token}\n`);
  console.log(
    `Add this line to ${file} (keep that file outside the repository):\n\n  ${approver}: ${hashToken(token)}\n`,
  );
  return 0;
}

/**
 * The tokens file, read now so that a missing or malformed one stops the start with its reason;
 * warns when it is inside the repository. Undefined behind a proxy.
 */
function readTokens(options: InboxOptions): TokenStore | undefined {
  if (options.identity.kind !== 'tokens') return undefined;
  const store = new TokenStore(options.identity.file);
  if (isInside(options.identity.file, PROJECT_ROOT)) {
    console.error(
      `inbox: warning: ${store.where()} is inside the repository; keep it outside, so that it never ends up in git`,
    );
  }
  return store;
}

/** Serves the inbox until SIGINT or SIGTERM. */
async function serve(argv: string[]): Promise<number> {
  let options: InboxOptions;
  let tokens: TokenStore | undefined;
  let settings: Pick<Parameters<typeof connectClient>[0] & object, 'temporal' | 'dataConverter'>;
  try {
    options = inboxOptionsFromEnv(argv, process.env);
    settings = { temporal: temporalOptionsFromEnv(), dataConverter: dataConverterFromEnv() };
    tokens = readTokens(options);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    console.error(`error: ${(err as Error).message}`);
    return 1;
  }
  const people = loadPeople(options.configDir, (line) => console.error(line));
  const unknown = people.size ? (tokens?.approvers.filter((a) => !people.has(a)) ?? []) : [];
  if (unknown.length) {
    console.error(
      `inbox: warning: ${unknown.join(', ')} ha${unknown.length === 1 ? 's' : 've'} a token but ${unknown.length === 1 ? 'is' : 'are'} not in ${options.configDir}/approvers.yaml; they can decide only at gates open to anyone`,
    );
  }

  let connected: ConnectedClient;
  try {
    connected = await connectClient(settings);
  } catch (err) {
    console.error(`error: cannot reach Temporal at ${settings.temporal!.address}: ${(err as Error).message}`);
    return 1;
  }
  let inbox: Inbox;
  try {
    inbox = await startInbox({
      client: connected.client,
      identity: options.identity,
      port: options.port,
      secureCookie: options.secureCookie,
      people,
    });
  } catch (err) {
    await connected.close();
    console.error(`error: ${(err as Error).message}`);
    return 1;
  }
  const how =
    options.identity.kind === 'tokens'
      ? `approvers sign in with their token (${options.identity.file})`
      : `identity from the ${options.identity.header} header, through the proxy only`;
  console.log(
    `Baton inbox on ${inbox.url} (namespace ${connected.temporal.namespace}; ${how}). Ctrl-C stops it.`,
  );
  return closeOnSignal('inbox', async () => {
    await inbox.close();
    await connected.close();
  });
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'new-token') {
    return command(NEW_TOKEN, ({ positionals }) => Promise.resolve(printNewToken(positionals)))(
      argv.slice(1),
    );
  }
  return command(INBOX_COMMAND, () => serve(argv))(argv);
}

if (require.main === module) runMain(main);
