/**
 * `npm run inbox`: the approval inbox on http://127.0.0.1:8234 (see ./app.ts), connected to
 * Temporal as the worker is. `npm run inbox -- new-token <approver id>` makes an approver token.
 */
import { Client, Connection } from '@temporalio/client';
import { runMain } from '../lib/cli';
import { dataConverterFromEnv } from '../workers/codec';
import { connectionOptions, temporalOptionsFromEnv } from '../workers/options';
import { PROJECT_ROOT } from '../activities/options';
import { startInbox, type Inbox } from './app';
import { hashToken, IDENTITY_PATTERN, isInside, loadPeople, newToken, TokenStore } from './auth';
import { inboxOptionsFromEnv, USAGE, type InboxOptions } from './options';

function newTokenCommand(args: string[]): number {
  const [approver, ...rest] = args;
  if (approver === undefined || rest.length || !IDENTITY_PATTERN.test(approver)) {
    console.error('usage: npm run inbox -- new-token <approver id>   (an id from config/approvers.yaml)');
    return 2;
  }
  const token = newToken();
  const file = process.env.BATON_INBOX_TOKENS_FILE || '<the file BATON_INBOX_TOKENS_FILE names>';
  console.log(`Token for ${approver}: give it to them privately; it is not stored anywhere:\n\n  ${token}\n`);
  console.log(
    `Add this line to ${file} (keep that file outside the repository):\n\n  ${approver}: ${hashToken(token)}\n`,
  );
  return 0;
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  if (argv[0] === 'new-token') return newTokenCommand(argv.slice(1));
  let options: InboxOptions;
  let temporal: ReturnType<typeof temporalOptionsFromEnv>;
  let dataConverter: ReturnType<typeof dataConverterFromEnv>;
  try {
    options = inboxOptionsFromEnv(argv, process.env);
    temporal = temporalOptionsFromEnv();
    dataConverter = dataConverterFromEnv();
    if (options.identity.kind === 'tokens') {
      // Read now, so a missing or malformed file stops the start with its reason.
      const store = new TokenStore(options.identity.file);
      if (isInside(options.identity.file, PROJECT_ROOT)) {
        console.error(
          `inbox: warning: ${store.where()} is inside the repository; keep it outside, so that it never ends up in git`,
        );
      }
    }
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return 1;
  }
  const people = loadPeople(options.configDir, (line) => console.error(line));
  if (options.identity.kind === 'tokens' && people.size) {
    const unknown = new TokenStore(options.identity.file).approvers.filter((a) => !people.has(a));
    if (unknown.length) {
      console.error(
        `inbox: warning: ${unknown.join(', ')} ha${unknown.length === 1 ? 's' : 've'} a token but ${unknown.length === 1 ? 'is' : 'are'} not in ${options.configDir}/approvers.yaml; they can decide only at gates open to anyone`,
      );
    }
  }

  let connection: Connection;
  try {
    connection = await Connection.connect(connectionOptions(temporal));
  } catch (err) {
    console.error(`error: cannot reach Temporal at ${temporal.address}: ${(err as Error).message}`);
    return 1;
  }
  const client = new Client({ connection, namespace: temporal.namespace, dataConverter });
  let inbox: Inbox;
  try {
    inbox = await startInbox({
      client,
      identity: options.identity,
      port: options.port,
      secureCookie: options.secureCookie,
      people,
    });
  } catch (err) {
    await connection.close();
    console.error(`error: ${(err as Error).message}`);
    return 1;
  }
  const how =
    options.identity.kind === 'tokens'
      ? `approvers sign in with their token (${options.identity.file})`
      : `identity from the ${options.identity.header} header, through the proxy only`;
  console.log(`Baton inbox on ${inbox.url} (namespace ${temporal.namespace}; ${how}). Ctrl-C stops it.`);

  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await inbox.close();
  await connection.close();
  return 0;
}

if (require.main === module) runMain(main);
