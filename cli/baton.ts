/**
 * `npm run baton -- <command>`: the reviewer's side of Baton, against a Temporal server where tasks
 * already run (a worker is needed for `show` and the decisions; `pending` only asks visibility).
 *
 *   pending [--approver <id>]                  tasks waiting for a decision (search attributes)
 *   show [--full] [--diff] <workflow id>        question, plan, pending gate, draft, usage, audit trail
 *   approve | reject <workflow id>              decide at the pending gate (the `decide` Update)
 *   request-changes <workflow id> --comment <text> [--rerun s1,s2]
 *   sign <workflow id> --decision <d>           print a signed decision for the Temporal CLI
 *   watch <workflow id>                         follow a task live until it ends (cli/live.ts)
 *   mcp pin <server>                            print the pins of an MCP server's tools (cli/baton-mcp.ts)
 *
 * Talking to the tasks is the approvals client's (client/). The command logic lives in
 * {@link runCli}, which takes its client and output as arguments, so the tests run it in-process
 * against the test server and read exactly what a user would see.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import os from 'node:os';
import {
  connectClient,
  decideTask,
  formatDecideResult,
  listPending,
  queryStatus,
  who,
  WorkerTimeoutError,
} from '../client';
import {
  BATON_AWAITING,
  BATON_PENDING_GATE,
  BATON_PHASE,
  DECISIONS,
  GATES,
  type DecideRequest,
  type Decision,
  type Gate,
} from '../contract/messages';
import { readDraft } from '../activities/report';
import { safeText } from '../contract/text';
import { parseCommandLine, runMain, UsageError } from '../lib/cli';
import { show } from './baton-show';
import { mcpCommand, MCP_USAGE } from './baton-mcp';
import { signDecision, signedJson, signerFrom, type KeyOptions } from './baton-sign';
import { storesFromEnv } from '../workers/store';
import { messageOf } from './follow';
import { watch } from './baton-watch';
import type { TerminalLike } from './live';

/** The usage text printed by `--help` and after every usage error. */
export const USAGE = `usage: npm run baton -- <command> [options]

commands:
  pending [--approver <id>]          list tasks waiting for a decision (for <id>, or for anyone)
  show <workflow id> [--full] [--diff]
                                     a task's question, plan, pending gate, token usage and audit
                                     trail; at the report gate the draft's title, summary and size.
                                     --full prints the whole draft (or published report); --diff what
                                     changed in the plan and the draft since the version shown before
  approve <workflow id>              approve at the pending gate
  reject <workflow id>               reject at the pending gate (ends the task)
  request-changes <workflow id> --comment <text> [--rerun <step,step>]
                                     send the plan or report back with what to change; with --rerun
                                     (report gate only), those steps run again first
  watch <workflow id>                follow a task live until it ends: phase, progress, steps, tokens,
                                     pending gate; exits 0 if it completed, 1 otherwise
  sign <workflow id> --decision approve|reject|request-changes [--signal]
                                     print the signed decision as JSON for \`temporal workflow update
                                     execute --name decide --input\` (with --signal: for \`temporal
                                     workflow signal --name <decision> --input\`); needs a key
${MCP_USAGE}

decision options (approve, reject, request-changes, sign):
  --gate plan|report                 the gate you mean; refused if another gate is pending
  --comment <text>                   a comment kept in the audit trail
  --as <identity>                    who decides (default: $BATON_APPROVER, else your user name);
                                     names the signer only: the key decides whose decision it is
  --key <path>                       sign with this Ed25519 private key (default: $BATON_APPROVER_KEY;
                                     ssh-keygen -t ed25519 makes one); without a key, unsigned
  --agent                            sign through ssh-agent (SSH_AUTH_SOCK); --key <its .pub> picks
                                     the key when the agent holds several

Connects like the worker: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*.`;

/** What {@link runCli} needs from its surroundings; tests pass their own. */
export interface CliDeps {
  client: Client;
  /** One line of normal output. */
  out: (line: string) => void;
  /** One line of error output. */
  err: (line: string) => void;
  /** Where `BATON_APPROVER` is read; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** How long `show` and the decisions wait for the task's worker to answer; default 20 s (client/status.ts). */
  workerTimeoutMs?: number;
  /**
   * Where `watch` redraws its live view when it is a TTY (`process.stdout` from the command line);
   * without one, `watch` prints plain lines to `out` when something changes.
   */
  terminal?: TerminalLike & { isTTY?: boolean };
  /** How often `watch` asks the task for its status; default `WATCH_POLL_MS` (cli/baton-watch.ts). */
  pollMs?: number;
}

// ---------------------------------------------------------------------------------------------------------
// Command-line parsing

const DECISION_OPTIONS = {
  gate: { type: 'string' },
  comment: { type: 'string' },
  as: { type: 'string' },
  key: { type: 'string' },
  agent: { type: 'boolean' },
} as const;

/** Each command's options (all take a value) and whether it takes a workflow id. */
const COMMANDS = {
  pending: { options: { approver: { type: 'string' } }, workflowId: false },
  show: { options: { full: { type: 'boolean' }, diff: { type: 'boolean' } }, workflowId: true },
  approve: { options: DECISION_OPTIONS, workflowId: true },
  reject: { options: DECISION_OPTIONS, workflowId: true },
  'request-changes': { options: { ...DECISION_OPTIONS, rerun: { type: 'string' } }, workflowId: true },
  watch: { options: {}, workflowId: true },
  sign: {
    options: {
      ...DECISION_OPTIONS,
      rerun: { type: 'string' },
      decision: { type: 'string' },
      signal: { type: 'boolean' },
    },
    workflowId: true,
  },
} as const;

type Command = keyof typeof COMMANDS;

const DECISION_OF: Record<'approve' | 'reject' | 'request-changes', Decision> = {
  approve: 'approve',
  reject: 'reject',
  'request-changes': 'requestChanges',
};

interface Parsed {
  command: Command;
  help: boolean;
  workflowId: string;
  options: Partial<Record<'approver' | 'gate' | 'comment' | 'as' | 'rerun' | 'key' | 'decision', string>> &
    KeyOptions & { signal?: boolean; full?: boolean; diff?: boolean };
}

const isCommand = (word: string): word is Command => Object.hasOwn(COMMANDS, word);

/** Reads one command line: the command, then its own options (node:util parseArgs). @throws UsageError */
function parse(argv: readonly string[]): Parsed {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError('a command is required');
  if (!isCommand(command)) throw new UsageError(`unknown command "${command}"`);
  const spec = COMMANDS[command];
  const { help, values, positionals } = parseCommandLine(
    {
      name: `npm run baton -- ${command}`,
      usage: USAGE,
      options: spec.options,
      allowPositionals: true,
      unknownOption: (option) => `unknown option ${option} for ${command}`,
    },
    rest,
  );
  const expected = spec.workflowId ? 1 : 0;
  if (!help && positionals.length < expected) throw new UsageError(`${command} needs a workflow id`);
  if (positionals.length > expected) {
    throw new UsageError(`unexpected argument "${positionals[expected]}" for ${command}`);
  }
  return { command, help, workflowId: positionals[0] ?? '', options: values };
}

// ---------------------------------------------------------------------------------------------------------
// Commands

async function pending(client: Client, approver: string | undefined, out: CliDeps['out']): Promise<number> {
  const tasks = await listPending(client, approver);
  if (tasks.length === 0) {
    out(
      approver === undefined
        ? 'no task is waiting for a decision'
        : `no task is waiting for a decision by ${approver}`,
    );
    return 0;
  }
  const width = Math.max(...tasks.map((t) => t.workflowId.length));
  for (const t of tasks) {
    const attrs = t.typedSearchAttributes;
    const gate = attrs.get(BATON_PENDING_GATE) ?? '?';
    const phase = attrs.get(BATON_PHASE);
    out(
      `${t.workflowId.padEnd(width)}  ${gate} gate  waiting for ${who(attrs.get(BATON_AWAITING))}  started ${t.startTime.toISOString()}${phase ? `  (${phase})` : ''}`,
    );
  }
  return 0;
}

const isGate = (word: string): word is Gate => (GATES as readonly string[]).includes(word);

/** The decision a command line asks for, checked as far as the CLI can. @throws UsageError */
function requestOf(deps: CliDeps, parsed: Parsed, decision: Decision): DecideRequest {
  const { gate, rerun, comment, as } = parsed.options;
  if (gate !== undefined && !isGate(gate)) {
    throw new UsageError(
      `--gate must be ${GATES.slice(0, -1).join(', ')} or ${GATES.at(-1)} (got "${gate}")`,
    );
  }
  const rerunSteps = rerun
    ?.split(',')
    .map((id) => id.trim())
    .filter(Boolean);
  if (rerunSteps && rerunSteps.length === 0)
    throw new UsageError('--rerun needs step ids, e.g. --rerun s1,s2');
  const env = deps.env ?? process.env;
  return {
    decision,
    by: as || env.BATON_APPROVER || os.userInfo().username,
    ...(gate ? { gate } : {}),
    ...(comment !== undefined ? { comment } : {}),
    ...(rerunSteps ? { rerunSteps } : {}),
  };
}

/**
 * Why an approval is not sent: at the report gate, a draft that cannot be read through the store
 * (the same settings as the workers') is not approved. Undefined when it may be sent, and when the
 * task does not answer (sending then says why, as it would have).
 */
async function unreadDraft(deps: CliDeps, workflowId: string): Promise<string | undefined> {
  const status = await queryStatus(deps.client, workflowId, deps.workerTimeoutMs).catch(() => undefined);
  if (status?.pendingGate?.gate !== 'report' || !status.report) return undefined;
  return readDraft(storesFromEnv(deps.env ?? process.env), status.report).then(
    () => undefined,
    (err: Error) => err.message,
  );
}

async function decideCommand(deps: CliDeps, parsed: Parsed, decision: Decision): Promise<number> {
  let request = requestOf(deps, parsed, decision);
  if (decision === 'approve' && (request.gate ?? 'report') === 'report') {
    const unread = await unreadDraft(deps, parsed.workflowId);
    if (unread) {
      deps.err(`not sent: ${unread}`);
      return 1;
    }
  }
  const signer = signerFrom(parsed.options, deps.env ?? process.env);
  if (signer)
    request = await signDecision(deps.client, parsed.workflowId, request, await signer, deps.workerTimeoutMs);
  // Whether a comment is required, which steps exist, who may decide, whether the signature holds:
  // all of it is the workflow's call (workflows/gates.ts), so the CLI reports the workflow's words.
  const outcome = await decideTask(deps.client, parsed.workflowId, request, deps.workerTimeoutMs);
  if (!outcome.accepted) {
    deps.err(`refused: ${outcome.reason}`);
    return 1;
  }
  deps.out(formatDecideResult(outcome.result));
  return 0;
}

/** `sign`: prints the signed decision as JSON for the Temporal CLI; sends nothing. */
async function signCommand(deps: CliDeps, parsed: Parsed): Promise<number> {
  const word = parsed.options.decision;
  if (word === undefined) throw new UsageError('sign needs --decision approve|reject|request-changes');
  const decision = word === 'request-changes' ? 'requestChanges' : word;
  if (!(DECISIONS as readonly string[]).includes(decision))
    throw new UsageError(`--decision must be approve, reject or request-changes (got "${word}")`);
  const request = requestOf(deps, parsed, decision as Decision);
  const signer = signerFrom(parsed.options, deps.env ?? process.env);
  if (!signer)
    throw new UsageError('sign needs a key: --key <private key file>, $BATON_APPROVER_KEY or --agent');
  const signed = await signDecision(
    deps.client,
    parsed.workflowId,
    request,
    await signer,
    deps.workerTimeoutMs,
  );
  deps.out(signedJson(signed, parsed.options.signal === true));
  return 0;
}

// ---------------------------------------------------------------------------------------------------------
// Entry points

/**
 * Runs one command line (without the `node script` prefix) and returns the exit code: 0 done,
 * 1 refused or failed (unknown workflow id, a refused decision, a server error), 2 a usage error.
 * Every line it prints is sanitized (contract/text.ts): workflow ids, names, questions, plans,
 * reasons and errors may carry anything a model, a tool or a signal wrote.
 */
export async function runCli(argv: string[], given: CliDeps): Promise<number> {
  const safe =
    (print: (line: string) => void) =>
    (line: string): void =>
      print(safeText(line, { multiline: true }));
  const deps: CliDeps = { ...given, out: safe(given.out), err: safe(given.err) };
  const usage = (print: (line: string) => void): void => USAGE.split('\n').forEach((line) => print(line));
  if (argv.length === 0 || ['--help', '-h', 'help'].includes(argv[0]!)) {
    usage(deps.out);
    return 0;
  }
  let parsed: Parsed | undefined;
  try {
    if (argv[0] === 'mcp')
      return await mcpCommand(argv.slice(1), { out: deps.out, env: deps.env ?? process.env });
    parsed = parse(argv);
    if (parsed.help) {
      usage(deps.out);
      return 0;
    }
    switch (parsed.command) {
      case 'pending':
        return await pending(deps.client, parsed.options.approver, deps.out);
      case 'show':
        return await show(
          deps.client,
          parsed.workflowId,
          deps.workerTimeoutMs,
          deps.out,
          storesFromEnv(deps.env ?? process.env),
          { full: parsed.options.full, diff: parsed.options.diff, env: deps.env ?? process.env },
        );
      case 'watch':
        return await watch(deps, parsed.workflowId);
      case 'sign':
        return await signCommand(deps, parsed);
      default:
        return await decideCommand(deps, parsed, DECISION_OF[parsed.command]);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      deps.err(`error: ${err.message}`);
      deps.err('');
      usage(deps.err);
      return 2;
    }
    if (err instanceof WorkflowNotFoundError) {
      const id = parsed?.workflowId || err.workflowId;
      deps.err(
        `error: no task with workflow id "${id}" on this namespace (${deps.client.options.namespace})`,
      );
      return 1;
    }
    // The SDK's ServiceError says only which call failed; its cause says why (unreachable, denied…).
    const cause =
      err instanceof Error && !(err instanceof WorkerTimeoutError) && err.cause instanceof Error
        ? `: ${err.cause.message}`
        : '';
    deps.err(`error: ${messageOf(err)}${cause}`);
    return 1;
  }
}

/** Connects as the worker does, runs one command, and closes the connection. */
async function main(argv: string[]): Promise<number> {
  let connected: Awaited<ReturnType<typeof connectClient>>;
  try {
    // Lazy: `--help` and usage errors answer without a server; the first RPC connects.
    connected = await connectClient({ lazy: true });
  } catch (err) {
    console.error(`error: ${messageOf(err)}`);
    return 1;
  }
  try {
    return await runCli(argv, {
      client: connected.client,
      out: (line) => console.log(line),
      err: (line) => console.error(line),
      terminal: process.stdout,
    });
  } finally {
    await connected.close();
  }
}

if (require.main === module) runMain(main);
