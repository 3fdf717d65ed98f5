/**
 * `npm start -- [options] "question"`: everything needed to watch one research task from a
 * terminal. Uses the Temporal server at TEMPORAL_ADDRESS if one answers, or starts the dev server,
 * and the offline stand-in model when no ANTHROPIC_API_KEY is set (local/environment.ts); runs a
 * worker in this process (workers/runtime.ts); starts the task; shows its progress (./follow.ts);
 * asks for approval at each gate, or approves with --auto-approve (./gate-prompt.ts); prints the
 * report's path.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import os from 'node:os';
import { ConfigError } from '../activities/config';
import {
  DocumentError,
  MAX_DOCUMENT_PAGES,
  MAX_DOCUMENTS_BYTES,
  MAX_TEXT_DOCUMENT_BYTES,
  putDocument,
  readDocumentFiles,
  type ReadDocument,
} from '../activities/documents';
import { activityOptionsFromEnv } from '../activities/options';
import { openStores } from '../activities/store';
import { connectClient, startResearchTask, workflowIdFor, type ResearchTask, type TaskEnd } from '../client';
import {
  MAX_TASK_DOCUMENTS,
  ResearchTaskInputSchema,
  type ResearchTaskResult,
  type TaskDocument,
} from '../contract/messages';
import { safeText } from '../contract/text';
import { Cleanup } from '../lib/cleanup';
import { command, parseCommandLine, runMain, UsageError } from '../lib/cli';
import { startLocalEnvironment } from '../local/environment';
import { dataConverterFor, encryptionFromEnv } from '../workers/codec';
import { temporalOptionsFromEnv } from '../workers/options';
import { installRuntime, runWorker } from '../workers/runtime';
import { sealerFor } from '../workers/store';
import { ensureSearchAttributes } from '../workers/search-attributes';
import { followTask, messageOf } from './follow';
import { formatUsageExtras } from './format';
import { gatePrompt } from './gate-prompt';
import { createView } from './live';

const USAGE = `usage: npm start -- [--auto-approve] [--full] [--playbook <id>] [--id <workflow id>] [--attach | --rerun] [--doc <file>]... "<question>"

  --auto-approve     approve every gate as the current user, without asking
  --full             at the report gate, print the whole draft (default: its title, summary and size,
                     and the command that prints it)
  --playbook <id>    playbook from config/playbooks (default: research-brief)
  --id <id>          workflow id (default: derived from the question, a hash of it and today's date)
  --attach           if a task with that id already exists, watch it instead of refusing
  --rerun            if a task with that id completed, start it again (a new run with its own report)
  --doc <file>       a PDF, Markdown or text file the question comes with (repeatable: at most ${MAX_TASK_DOCUMENTS};
                     all together at most ${MAX_DOCUMENTS_BYTES / 1024 / 1024} MiB and ${MAX_DOCUMENT_PAGES} PDF pages, a text file at most ${MAX_TEXT_DOCUMENT_BYTES / 1024} KiB)`;

const START = {
  name: 'npm start',
  usage: USAGE,
  options: {
    'auto-approve': { type: 'boolean' },
    full: { type: 'boolean' },
    attach: { type: 'boolean' },
    rerun: { type: 'boolean' },
    playbook: { type: 'string' },
    id: { type: 'string' },
    doc: { type: 'string', multiple: true },
  },
  allowPositionals: true,
} as const;

/** How often `npm start` asks its task for its status. */
const POLL_MS = 500;
/** How long the task may not answer before `npm start` gives up (it may be applying new search attributes). */
const UNANSWERED_MS = 60_000;

export interface StartArgs {
  question: string;
  autoApprove: boolean;
  full: boolean;
  attach: boolean;
  rerun: boolean;
  playbook: string;
  workflowId?: string;
  /** Files given with --doc, read and checked before anything starts (activities/documents.ts). */
  documents?: string[];
}

/** Reads the command line. @throws UsageError naming the bad argument */
export function parseStartArgs(argv: readonly string[]): StartArgs {
  const { values, positionals } = parseCommandLine(START, argv);
  const question = positionals.join(' ').trim();
  if (!question) throw new UsageError('a question is required');
  if (values.attach && values.rerun) throw new UsageError('--attach and --rerun do not go together');
  const playbook = values.playbook ?? 'research-brief';
  // The workflow's own input schema: refuse here what the task would refuse at once.
  const checked = ResearchTaskInputSchema.safeParse({ question, playbook });
  if (!checked.success) {
    throw new UsageError(checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  }
  return {
    question,
    autoApprove: values['auto-approve'] === true,
    full: values.full === true,
    attach: values.attach === true,
    rerun: values.rerun === true,
    playbook,
    ...(values.id === undefined ? {} : { workflowId: values.id }),
    ...(values.doc?.length ? { documents: values.doc } : {}),
  };
}

/** An error and its causes, e.g. "Failed to start Workflow: 3 INVALID_ARGUMENT: …". */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err.cause ? `${err.message}: ${describeError(err.cause)}` : err.message;
}

/** Starts the task, or with --attach watches the one already running under that id. Undefined: refused. */
async function startOrAttach(
  client: Client,
  args: StartArgs,
  taskQueue: string,
  me: string,
  documents: TaskDocument[],
): Promise<WorkflowHandle<ResearchTask> | undefined> {
  const workflowId = args.workflowId ?? workflowIdFor(args.question, new Date(), documents);
  try {
    return await startResearchTask(client, {
      taskQueue,
      workflowId,
      question: args.question,
      playbook: args.playbook,
      by: me,
      rerun: args.rerun,
      documents,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    const handle = client.workflow.getHandle<ResearchTask>(workflowId);
    const { status } = await handle.describe();
    const running = status.name === 'RUNNING';
    if (!args.attach) {
      console.error(
        running
          ? `error: a task with id "${workflowId}" is already running; pass --attach to watch it, or --id <another id> to start another`
          : `error: a task with id "${workflowId}" already ran and ${status.name.toLowerCase()}; its report and record stay as they are. Pass --rerun to run it again under this id (a new run with its own report), --attach to see how it ended, or --id <another id>`,
      );
      return undefined;
    }
    console.log(
      `A task with id "${workflowId}" ${running ? 'is already running' : 'exists'}: attaching to it.`,
    );
    return handle;
  }
}

/** Prints how the task ended; its exit code. */
function printOutcome(workflowId: string, end: TaskEnd): number {
  if ('error' in end) throw end.error;
  const outcome = end.value as ResearchTaskResult;
  const { usage } = outcome.provenance;
  if (outcome.outcome === 'rejected') {
    console.log(`Task ${workflowId} was rejected; no report was published.`);
    return 1;
  }
  console.log(`\nReport: ${outcome.reportPath}`);
  console.log(
    `Tokens: ${usage.inputTokens} in, ${usage.outputTokens} out. Content hash: ${outcome.provenance.contentHash}`,
  );
  for (const line of formatUsageExtras(usage)) console.log(`${line[0]!.toUpperCase()}${line.slice(1)}.`);
  return 0;
}

/** Everything after the command line: what it starts is closed by `cleanup`. */
async function start(args: StartArgs, docs: ReadDocument[], me: string, cleanup: Cleanup): Promise<number> {
  const encryption = encryptionFromEnv();
  const activityOptions = {
    ...activityOptionsFromEnv(),
    ...(encryption ? { sealer: sealerFor(encryption) } : {}),
  };
  const dataConverter = dataConverterFor(encryption);
  // The terminal shows Baton's own progress lines; the SDK's logs only when something is wrong.
  // Spans go to a file by default: on the console they would break the live view.
  const { telemetry } = installRuntime({ logLevel: 'ERROR', logFormat: 'pretty', traces: 'file' });
  if (telemetry) {
    cleanup.defer(() => telemetry.shutdown());
    console.log(`Traces: ${telemetry.where}`);
  }
  const local = await startLocalEnvironment({
    temporal: temporalOptionsFromEnv(),
    activityOptions,
    addressGiven: Boolean(process.env.TEMPORAL_ADDRESS),
    log: (line) => console.log(line),
  });
  cleanup.defer(() => local.close());
  const { temporal } = local;
  const worker = await runWorker({
    temporal,
    activityOptions: local.activityOptions,
    dataConverter,
    telemetry,
  });
  cleanup.defer(() => worker.stop());
  if (encryption) console.log(`Payload encryption: on, ${encryption.describe()}`);

  // Starting the task opens its trace; the worker's spans join it.
  const connected = await connectClient({
    temporal,
    dataConverter,
    interceptors: telemetry?.clientInterceptors,
  });
  cleanup.defer(() => connected.close());
  const { client, connection } = connected;
  const added = await ensureSearchAttributes(connection, temporal.namespace);
  if (added.length) {
    console.log(
      `Registered search attributes ${added.join(', ')}; the server may take a few seconds to apply them.`,
    );
  }
  // The documents go to the store the worker reads (sealed with encryption on); the task gets references.
  const { artifacts } = openStores(local.activityOptions);
  const documents = await Promise.all(docs.map((doc) => putDocument(artifacts, doc)));
  const handle = await startOrAttach(client, args, temporal.taskQueue, me, documents);
  if (!handle) return 1;
  const { workflowId } = handle;
  console.log(
    `Started task ${workflowId} (watch: temporal workflow query --workflow-id ${workflowId} --name status)`,
  );

  // On a terminal, a frame redrawn in place; in logs and pipes, a line for each change.
  const view = createView({
    terminal: process.stdout,
    print: (line) => console.log(line),
    restoreOnExit: true,
  });
  cleanup.defer(() => view.close());
  let unansweredSince: number | undefined;
  const end = await followTask(client, workflowId, view, {
    pollMs: POLL_MS,
    onStatus: gatePrompt({
      client,
      workflowId,
      me,
      autoApprove: args.autoApprove,
      interactive: Boolean(process.stdin.isTTY) && !args.autoApprove,
      stores: openStores(local.activityOptions),
      full: args.full,
      view,
    }),
    // A query fails while the task's last workflow task failed, e.g. in the seconds before a server
    // applies newly registered search attributes; the task retries on its own, so wait (bounded).
    onUnanswered: ({ error }) => {
      if (unansweredSince === undefined) {
        unansweredSince = Date.now();
        view.log(`  (the task does not answer yet: ${messageOf(error)}; retrying)`);
      } else if (Date.now() - unansweredSince > UNANSWERED_MS) {
        throw error;
      }
    },
  });
  view.close();
  return printOutcome(workflowId, end);
}

async function main(argv: string[]): Promise<number> {
  return command(START, async () => {
    const args = parseStartArgs(argv);
    // Every document is read and checked before anything starts; a bad one is a bad argument.
    const docs = await readDocumentFiles(args.documents ?? []).catch((err: unknown) => {
      throw err instanceof DocumentError ? new UsageError(err.message) : err;
    });
    const me = process.env.BATON_APPROVER || os.userInfo().username;
    const cleanup = new Cleanup();
    try {
      return await start(args, docs, me, cleanup);
    } catch (err) {
      // The live view and what runs are closed first, so the error is the last thing on screen.
      await cleanup.run();
      // A task's failure may carry model-written text: printed sanitized, as every surface is.
      const error =
        err instanceof ConfigError
          ? err.message
          : err instanceof WorkflowFailedError
            ? `the task failed: ${err.cause?.message ?? err.message}`
            : describeError(err);
      console.error(`error: ${safeText(error, { multiline: true })}`);
      return 1;
    } finally {
      await cleanup.run();
    }
  })(argv);
}

if (require.main === module) runMain(main);
