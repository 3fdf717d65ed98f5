/**
 * `npm start -- [options] "question"`: everything needed to watch one research task from a
 * terminal. Uses the Temporal server at TEMPORAL_ADDRESS if one answers, or starts the dev server
 * (state kept in .baton/dev-server.sqlite); uses the offline stand-in model when no
 * ANTHROPIC_API_KEY is set; runs a worker in this process; starts the task; prints progress; asks
 * for approval at each gate (or approves with --auto-approve); prints the report's path.
 */
import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowUpdateFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { NativeConnection, Runtime } from '@temporalio/worker';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { getArtifact } from '../activities/artifacts';
import { ConfigError } from '../activities/config';
import { activityOptionsFromEnv, PROJECT_ROOT } from '../activities/options';
import { freePort, startDevServer, temporalAnswers, type DevServer } from '../scripts/temporal';
import { startStandIn, type StandIn } from '../standin/server';
import { researchTask } from '../workflows';
import {
  decide,
  ResearchTaskInputSchema,
  SEARCH_ATTRIBUTES,
  status as statusQuery,
  type DecideRequest,
  type TaskStatus,
} from '../contract/messages';
import { formatPendingGate, formatUsageExtras } from './format';
import { childStatuses, createView, summaryLine, type View } from './live';
import { dataConverterFor, encryptionFromEnv } from '../workers/codec';
import { createLogger, logFormatFromEnv, runtimeLogging, secretsFromEnv } from '../workers/logging';
import { connectionOptions, logLevelFromEnv, temporalOptionsFromEnv } from '../workers/options';
import { ensureSearchAttributes } from '../workers/search-attributes';
import { setupTelemetry, telemetryOptionsFromEnv } from '../workers/telemetry';
import { createBatonWorker } from '../workers/worker';
import { runMain } from '../lib/cli';

const USAGE = `usage: npm start -- [--auto-approve] [--playbook <id>] [--id <workflow id>] [--attach] "<question>"

  --auto-approve     approve every gate as the current user, without asking
  --playbook <id>    playbook from config/playbooks (default: research-brief)
  --id <id>          workflow id (default: derived from the question and today's date)
  --attach           if a task with that id is already running, watch it instead of refusing`;

/** The key the worker sends to the offline stand-in (which accepts any); kept out of history like a real one. */
export const OFFLINE_STAND_IN_KEY = 'offline-stand-in';

export interface StartArgs {
  question: string;
  autoApprove: boolean;
  attach: boolean;
  playbook: string;
  workflowId?: string;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/** An error and its causes, e.g. "Failed to start Workflow: 3 INVALID_ARGUMENT: …". */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err.cause ? `${err.message}: ${describeError(err.cause)}` : err.message;
}

/** Parses the command line; throws an Error naming the bad argument. */
export function parseStartArgs(argv: readonly string[]): StartArgs {
  const args: Partial<StartArgs> & { autoApprove: boolean; attach: boolean; playbook: string } = {
    autoApprove: false,
    attach: false,
    playbook: 'research-brief',
  };
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--auto-approve') args.autoApprove = true;
    else if (arg === '--attach') args.attach = true;
    else if (arg === '--playbook') args.playbook = value();
    else if (arg === '--id') args.workflowId = value();
    else if (arg.startsWith('--')) throw new Error(`unknown option ${arg}`);
    else words.push(arg);
  }
  const question = words.join(' ').trim();
  if (!question) throw new Error('a question is required');
  // The workflow's own input schema: refuse here what the task would refuse at once.
  const checked = ResearchTaskInputSchema.safeParse({ question, playbook: args.playbook });
  if (!checked.success) {
    throw new Error(checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  }
  return { ...args, question };
}

/** A business id: a slug of the question and the date, e.g. `research-how-do-solid-state-2026-11-24`. */
export function workflowIdFor(question: string, date: Date): string {
  const slug = question
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .split('-')
    .slice(0, 6)
    .join('-');
  return `research-${slug || 'task'}-${date.toISOString().slice(0, 10)}`;
}

/**
 * What the Temporal Web UI and `temporal workflow describe` show for a task started here: its
 * question as the one-line summary (clipped to 200 characters), the whole question and the
 * playbook as the details (Temporal markdown).
 */
export function taskMetadata(
  question: string,
  playbook: string,
  by: string,
): { staticSummary: string; staticDetails: string } {
  return {
    staticSummary: summaryLine(question),
    staticDetails: `**Question:** ${question}\n\n**Playbook:** ${playbook} · started with \`npm start\` by ${by}`,
  };
}

/**
 * The task's status. A query fails while the task's last workflow task failed, e.g. in the seconds
 * before a server applies newly registered search attributes; the task retries on its own, so
 * this waits for it (bounded) instead of giving up.
 */
async function queryStatus(handle: WorkflowHandle, view: View): Promise<TaskStatus> {
  const deadline = Date.now() + 60_000;
  let told = false;
  for (;;) {
    try {
      return await handle.query(statusQuery);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      if (!told) view.log(`  (the task does not answer yet: ${(err as Error).message}; retrying)`);
      told = true;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** Sends a decision through the `decide` Update; prints the answer or the refusal. */
async function sendDecision(handle: WorkflowHandle, request: DecideRequest, view: View): Promise<boolean> {
  try {
    const answer = await handle.executeUpdate(decide, { args: [request] });
    view.log(
      `  ${request.decision} accepted: ${answer.outcome} (${answer.approvals} of ${answer.quorum} approvals)`,
    );
    return true;
  } catch (err) {
    if (!(err instanceof WorkflowUpdateFailedError)) throw err;
    view.log(`  ${request.decision} refused: ${err.cause?.message ?? err.message}`);
    return false;
  }
}

async function decideInTerminal(
  handle: WorkflowHandle,
  s: TaskStatus,
  me: string,
  artifactDir: string,
  view: View,
): Promise<void> {
  // The live frame stays on screen as it is, above the draft and the prompt.
  view.suspend();
  const ask = async (question: string): Promise<string> => {
    // One readline per question: between prompts the terminal belongs to the live view.
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    try {
      return await rl.question(question);
    } finally {
      rl.close();
    }
  };
  const pending = s.pendingGate!;
  const gate = pending.gate;
  console.log(`  ${formatPendingGate(pending)}`);
  if (gate === 'report' && s.report) {
    const text = await getArtifact(artifactDir, s.report.artifact.id);
    console.log(`\n----- draft report -----\n${text}\n----- end of draft -----\n`);
  }
  for (;;) {
    const answer = (await ask(`${gate} gate, deciding as ${me}: [a]pprove, [r]eject or [c]hange request? `))
      .trim()
      .toLowerCase();
    let request: DecideRequest | undefined;
    if (answer === 'a' || answer === 'approve') request = { decision: 'approve', by: me, gate };
    if (answer === 'r' || answer === 'reject') request = { decision: 'reject', by: me, gate };
    if (answer === 'c' || answer === 'change') {
      const comment = (await ask('What should change? ')).trim();
      if (comment) request = { decision: 'requestChanges', by: me, gate, comment };
    }
    if (request && (await sendDecision(handle, request, view))) return;
  }
}

async function main(argv: readonly string[]): Promise<number> {
  let args: StartArgs;
  try {
    args = parseStartArgs(argv);
  } catch (err) {
    console.error(`error: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const me = process.env.BATON_APPROVER || os.userInfo().username;
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const temporal = temporalOptionsFromEnv();
    const activityOptions = activityOptionsFromEnv();
    const encryption = encryptionFromEnv();
    const dataConverter = dataConverterFor(encryption);
    // The terminal shows Baton's own progress lines; the SDK's logs only when something is wrong.
    const logger = createLogger({
      level: logLevelFromEnv('ERROR'),
      format: logFormatFromEnv('pretty'),
      secrets: secretsFromEnv(),
    });
    Runtime.install(runtimeLogging(logger));
    // Spans go to a file by default: on the console they would break the live view.
    const telemetry = setupTelemetry(telemetryOptionsFromEnv('file'), (message) => {
      logger.warn(message);
    });
    if (telemetry) {
      cleanups.unshift(() => telemetry.shutdown());
      console.log(`Traces: ${telemetry.where}`);
    }
    let server: DevServer | undefined;
    if (temporal.tls || (await temporalAnswers(temporal.address))) {
      console.log(`Temporal: using the server at ${temporal.address}`);
    } else if (process.env.TEMPORAL_ADDRESS) {
      console.error(`error: no Temporal server answers at TEMPORAL_ADDRESS=${temporal.address}`);
      return 1;
    } else {
      console.log(`Temporal: nothing answers at ${temporal.address}; starting the dev server`);
      server = await startDevServer({
        dbFile: path.join(PROJECT_ROOT, '.baton', 'dev-server.sqlite'),
        port: Number(temporal.address.split(':')[1]),
        uiPort: (await portIsFree(8233)) ? 8233 : await freePort(),
        namespace: temporal.namespace,
        // Registered at start: attributes added to a running server take a few seconds to apply.
        searchAttributes: [...SEARCH_ATTRIBUTES],
        log: (line) => console.log(line),
      });
      cleanups.unshift(() => server!.stop());
      temporal.address = server.address;
      console.log(`Temporal Web UI: ${server.uiUrl}`);
    }

    if (!activityOptions.apiKey) {
      const standIn: StandIn = await startStandIn();
      cleanups.unshift(() => standIn.close());
      activityOptions.apiKey = OFFLINE_STAND_IN_KEY;
      activityOptions.baseURL = standIn.url;
      console.log(
        `Model: no ANTHROPIC_API_KEY, so using the OFFLINE STAND-IN model at ${standIn.url}. Its text is placeholder, not research.`,
      );
    } else {
      console.log(`Model: Anthropic API${activityOptions.baseURL ? ` at ${activityOptions.baseURL}` : ''}`);
    }

    const nativeConnection = await NativeConnection.connect(connectionOptions(temporal));
    cleanups.unshift(() => nativeConnection.close());
    const worker = await createBatonWorker({
      connection: nativeConnection,
      activityOptions,
      dataConverter,
      telemetry,
      ...temporal,
    });
    if (encryption) console.log(`Payload encryption: on, ${encryption.describe()}`);
    const running = worker.run();
    cleanups.unshift(async () => {
      worker.shutdown();
      await running;
    });

    const connection = await Connection.connect(connectionOptions(temporal));
    cleanups.unshift(() => connection.close());
    const added = await ensureSearchAttributes(connection, temporal.namespace);
    if (added.length) {
      console.log(
        `Registered search attributes ${added.join(', ')}; the server may take a few seconds to apply them.`,
      );
    }
    const client = new Client({
      connection,
      namespace: temporal.namespace,
      dataConverter,
      // Starting the task opens its trace; the worker's spans join it.
      interceptors: telemetry?.clientInterceptors,
    });
    const workflowId = args.workflowId ?? workflowIdFor(args.question, new Date());
    let handle: WorkflowHandle<typeof researchTask>;
    try {
      handle = await client.workflow.start(researchTask, {
        taskQueue: temporal.taskQueue,
        workflowId,
        args: [{ question: args.question, playbook: args.playbook }],
        ...taskMetadata(args.question, args.playbook, me),
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      if (!args.attach) {
        console.error(
          `error: a task with id "${workflowId}" is already running; pass --attach to watch it, or --id <another id> to start another`,
        );
        return 1;
      }
      console.log(`A task with id "${workflowId}" is already running: attaching to it.`);
      handle = client.workflow.getHandle<typeof researchTask>(workflowId);
    }
    console.log(
      `Started task ${workflowId} (watch: temporal workflow query --workflow-id ${workflowId} --name status)`,
    );

    const interactive = Boolean(process.stdin.isTTY) && !args.autoApprove;
    // On a terminal, a frame redrawn in place; in logs and pipes, a line for each change.
    const view = createView({
      terminal: process.stdout,
      print: (line) => console.log(line),
      restoreOnExit: true,
    });
    cleanups.unshift(() => Promise.resolve(view.close()));
    const queryChild = (id: string) => client.workflow.getHandle(id).query(statusQuery);
    let children = new Map<string, TaskStatus>();
    const show = async (s: TaskStatus): Promise<void> => {
      children = await childStatuses(s, queryChild, children);
      view.update(s, children);
    };
    const result = handle.result();
    let done = false;
    void result.then(
      () => (done = true),
      () => (done = true),
    );
    let toldHowToApprove = false;
    while (!done) {
      const s = await queryStatus(handle, view);
      await show(s);
      if (s.pendingGate) {
        const gate = s.pendingGate.gate;
        if (args.autoApprove) {
          const accepted = await sendDecision(
            handle,
            {
              decision: 'approve',
              by: me,
              gate,
              comment: 'approved with --auto-approve',
            },
            view,
          );
          if (!accepted) {
            view.close();
            console.error(
              `error: --auto-approve cannot decide as "${me}" here (set BATON_APPROVER to an approver of this gate)`,
            );
            return 1;
          }
        } else if (interactive) {
          await decideInTerminal(handle, s, me, activityOptions.artifactDir, view);
        } else if (!toldHowToApprove) {
          toldHowToApprove = true;
          view.log(
            `Waiting at the ${gate} gate. Decide from another terminal:\n  temporal workflow signal --workflow-id ${workflowId} --name approve --input '{"by": "${me}", "gate": "${gate}"}'`,
          );
        }
        if (args.autoApprove || interactive) {
          // Wait until the gate closes or someone else's approval is still needed (quorum).
          let current = await queryStatus(handle, view);
          while (
            !done &&
            current.pendingGate?.gate === gate &&
            current.pendingGate.approvals.some((a) => a.by === me)
          ) {
            await new Promise((r) => setTimeout(r, 500));
            current = await queryStatus(handle, view);
          }
        }
      } else {
        await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
      }
    }
    await show(await queryStatus(handle, view));
    view.close();
    const outcome = await result;
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
  } catch (err) {
    if (err instanceof ConfigError) console.error(`error: ${err.message}`);
    else if (err instanceof WorkflowFailedError)
      console.error(`error: the task failed: ${err.cause?.message ?? err.message}`);
    else console.error(`error: ${describeError(err)}`);
    return 1;
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  }
}

if (require.main === module) runMain(main);
