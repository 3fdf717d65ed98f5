/**
 * `npm run audit -- <workflow id>`: the full record of a research task as JSON (format
 * `baton-audit/1`, see cli/audit-record.ts): identity, question, config digest, plan, every gate
 * decision and event, steps, models, token usage, the report with its labels and provenance, and a
 * check of the report (structure, content hash, publisher signature) and of every approver's
 * signature (cli/audit-approvals.ts). `npm run audit -- --verify
 * <report>` checks one report file offline (cli/audit-offline.ts).
 *
 * This file is the command: its arguments, where the JSON goes, what it prints and its exit code.
 * cli/audit-collect.ts asks Temporal (the task's own `status` query and result first, the event
 * history as the fallback) and builds the record.
 *
 * The command logic lives in {@link runAudit}, which takes its client and output as arguments, so
 * the tests run it in-process against the test server.
 */
import {
  Client,
  Connection,
  isGrpcDeadlineError,
  isGrpcServiceError,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../activities/options';
import { safeJson, safeText } from '../contract/text';
import { command, parseCommandLine, runMain, UsageError, type CommandOutput } from '../lib/cli';
import { dataConverterFromEnv } from '../workers/codec';
import { connectionOptions, temporalOptionsFromEnv, type TemporalOptions } from '../workers/options';
import { failureMessage } from '../contract/failures';
import { collectAudit, DEFAULT_SERVER_TIMEOUT_MS } from './audit-collect';
import { readPublishers, verifyOffline, type VerifyArgs } from './audit-offline';
import { approvalReport } from './audit-approvals';
import type { AuditRecord } from './audit-record';
import { safeName } from '../activities/report';
import { reportReader, storesFromEnv } from '../workers/store';

export const USAGE = `usage: npm run audit -- <workflow id> [--out <file>] [--report <file>] [--publishers <file>]
       npm run audit -- --verify <report.md> [--publishers <file>]

Writes the full record of a task as JSON (format "baton-audit/1"): identity and status, question
and playbook, config digest, plan, every gate decision and gate event, steps, models per agent,
token usage, the report with its labels and provenance, and whether the report verifies: the text
outside its body is exactly what Baton writes for its provenance, its body still has the content
hash recorded when it was published, and a publisher listed in config signed its provenance. Each
approver's signature in the provenance (an Ed25519 key, or a passkey) is verified again with the
public key recorded beside it; unsigned approvals are said to be unsigned. Every source the report
cites (each link or address in it) is checked again against the task's retrieval record (what its
tools returned, in the artifact store: BATON_STORE or BATON_ARTIFACT_DIR), and each one not in it
is named.

With --verify, checks one report file offline (no Temporal server): the same checks, against the
content hash in the file's own (signed) provenance, and the .provenance.json beside it if present.

options:
  --out <file>         where to write it; "-" writes to standard output
                       (default: reports/<workflow id>.audit.json, in $BATON_REPORT_DIR if set)
  --report <file>      verify this copy of the report instead of the file the task published
  --verify <file>      check this report file offline, and write nothing
  --publishers <file>  the publisher keys to accept (default: publishers.yaml in $BATON_CONFIG_DIR,
                       else config/publishers.yaml)
  -h, --help           this text

The status query needs a Baton worker polling the task's queue. Without one, the export is built
from the event history and the workflow result, and lists what is missing and why.

exit codes: 0 written (the report verified, or there is none yet) or, with --verify, verified; 3
written, but the report or an approver's signature did not verify (with --verify: it did not, and
the check or approval that failed is printed), or the report cites a source its task's retrieval
record does not hold (each one is printed); 1 nothing written or checked (unknown task, server unreachable, unreadable publishers
file…); 2 usage error.

Connects like the worker: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*.`;

const AUDIT_COMMAND = {
  // Usage errors read "error: …", like every other error this command prints.
  name: 'error',
  usage: USAGE,
  // `multiple`, so that an option given twice is refused rather than the last one silently kept.
  options: {
    out: { type: 'string', multiple: true },
    report: { type: 'string', multiple: true },
    verify: { type: 'string', multiple: true },
    publishers: { type: 'string', multiple: true },
  },
  allowPositionals: true,
} as const;

/** What {@link runAudit} needs from its surroundings; tests pass their own. */
export interface AuditDeps extends CommandOutput {
  client: Client;
  /** Where `BATON_REPORT_DIR` is read; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** How long the `status` query may wait for a worker; default `DEFAULT_WORKER_TIMEOUT_MS` (client/status.ts). */
  workerTimeoutMs?: number;
  /** How long the server may take to answer `describe`; default {@link DEFAULT_SERVER_TIMEOUT_MS}. */
  serverTimeoutMs?: number;
  /** The server's address, for error messages. */
  address?: string;
  /** The export's timestamp; default now. */
  now?: () => Date;
}

export interface AuditArgs {
  workflowId: string;
  out?: string;
  report?: string;
  publishers?: string;
}

/** The audit's arguments from a parsed command line. @throws UsageError */
function auditArgs({
  values,
  positionals,
}: ReturnType<typeof parseCommandLine<typeof AUDIT_COMMAND.options>>): AuditArgs | VerifyArgs {
  const single = (flag: keyof typeof AUDIT_COMMAND.options): string | undefined => {
    const given = values[flag];
    if (given && given.length > 1) throw new UsageError(`--${flag} given twice`);
    if (given?.[0] === '') throw new UsageError(`--${flag} needs a value`);
    return given?.[0];
  };
  const [workflowId, extra] = positionals;
  const verify = single('verify');
  if (verify !== undefined) {
    const clash = positionals.length
      ? `a workflow id ("${positionals[0]}")`
      : values.out
        ? '--out'
        : values.report
          ? '--report'
          : '';
    if (clash) throw new UsageError(`--verify checks one report file offline: it takes no ${clash}`);
    return { verify, publishers: single('publishers') };
  }
  const args = { out: single('out'), report: single('report'), publishers: single('publishers') };
  if (workflowId === undefined) throw new UsageError('a workflow id is required');
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
  if (!workflowId.trim()) throw new UsageError('the workflow id is empty');
  return { workflowId, ...args };
}

/** Parses a command line (without `node script`), help aside. @throws UsageError */
export function parseAuditArgs(argv: readonly string[]): AuditArgs | VerifyArgs {
  return auditArgs(parseCommandLine(AUDIT_COMMAND, argv));
}

/** The default place of the export: beside the reports. */
export function defaultOutPath(workflowId: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = path.resolve(env.BATON_REPORT_DIR || path.join(PROJECT_ROOT, 'reports'));
  return path.join(dir, `${safeName(workflowId)}.audit.json`);
}

/**
 * Runs one command line (without the `node script` prefix) and returns the exit code: 0 written,
 * 3 written but the report did not verify, 1 nothing written, 2 a usage error.
 */
export function runAudit(argv: string[], deps: AuditDeps): Promise<number> {
  return command(
    AUDIT_COMMAND,
    (parsed) => {
      const args = auditArgs(parsed);
      return 'verify' in args ? verifyOffline(args, deps) : exportAudit(args, deps);
    },
    deps,
  )(argv);
}

/**
 * Collects the record, writes it, and says what it holds; the exit code as {@link runAudit}'s. The
 * JSON keeps every value as recorded, with invisible and control characters as `\uXXXX` escapes
 * (contract/text.ts, `safeJson`); every other line printed is sanitized.
 */
async function exportAudit(args: AuditArgs, given: AuditDeps): Promise<number> {
  const safe =
    (print: (line: string) => void) =>
    (line: string): void =>
      print(safeText(line, { multiline: true }));
  const deps: AuditDeps = { ...given, err: safe(given.err) };
  let record: AuditRecord;
  try {
    record = await collectAudit(deps.client, args.workflowId, {
      reportFile: args.report,
      publishers: await readPublishers(args.publishers, deps.env ?? process.env),
      workerTimeoutMs: deps.workerTimeoutMs,
      serverTimeoutMs: deps.serverTimeoutMs,
      now: deps.now?.(),
      readReport: reportReader(deps.env ?? process.env),
      artifacts: () => storesFromEnv(deps.env ?? process.env).artifacts,
    });
  } catch (err) {
    deps.err(`error: ${collectError(err, args.workflowId, deps)}`);
    return 1;
  }

  const json = `${safeJson(JSON.stringify(record, null, 2))}\n`;
  // With the JSON on standard output, everything else goes to standard error.
  const toStdout = args.out === '-';
  const say = toStdout ? deps.err : safe(deps.out);
  if (toStdout) {
    deps.out(json.slice(0, -1));
  } else {
    const file = path.resolve(args.out ?? defaultOutPath(args.workflowId, deps.env ?? process.env));
    try {
      if (args.out === undefined) await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, json, 'utf8');
    } catch (err) {
      deps.err(`error: cannot write the export to ${file}: ${failureMessage(err)}`);
      return 1;
    }
    say(`wrote ${file}`);
  }
  for (const line of summaryLines(record)) say(line);
  for (const m of record.missing) deps.err(`warning: incomplete export: ${m.part}: ${m.reason}`);
  const v = record.verification;
  const failed = approvalChecks(record).failed;
  if (!v.verified && v.check !== 'no-report') deps.err(`report NOT verified (${v.check}): ${v.reason}`);
  for (const line of failed) deps.err(`approval NOT verified: ${line}`);
  const unbacked = record.citations?.checked ? record.citations.unbacked : [];
  for (const address of unbacked) deps.err(`citation NOT backed by the task's retrieval record: ${address}`);
  return (!v.verified && v.check !== 'no-report') || failed.length || unbacked.length ? 3 : 0;
}

/** The export's approvals as the audit judged them (cli/audit-approvals.ts): lines, and those that failed. */
const approvalChecks = (record: AuditRecord) =>
  approvalReport((record.approvals ?? []).map((a) => ({ gate: a.gate, by: a.by, ...a.check })));

const GRPC_UNAVAILABLE = 14;

/** Why nothing could be collected: an unknown task, a server that did not answer, or another error. */
function collectError(err: unknown, workflowId: string, deps: AuditDeps): string {
  const server = `the Temporal server${deps.address ? ` at ${deps.address}` : ''}`;
  if (err instanceof WorkflowNotFoundError) {
    return `no task with workflow id "${workflowId}" on this namespace (${deps.client.options.namespace})`;
  }
  if (isGrpcDeadlineError(err)) {
    const ms = deps.serverTimeoutMs ?? DEFAULT_SERVER_TIMEOUT_MS;
    return `${server} did not answer within ${ms / 1000} s: is it running, and is TEMPORAL_ADDRESS right?`;
  }
  for (let cur: unknown = err; cur instanceof Error; cur = cur.cause) {
    if (isGrpcServiceError(cur) && Number(cur.code) === GRPC_UNAVAILABLE) {
      return `cannot reach ${server}: ${failureMessage(err)}`;
    }
  }
  return failureMessage(err);
}

/** A few lines saying what the export holds, for the terminal. */
export function summaryLines(record: AuditRecord): string[] {
  const w = record.workflow;
  const decisions = record.audit?.filter((e) => e.event === 'decision').length;
  const lines = [
    `task ${w.workflowId} (run ${w.runId}): ${w.status}${record.task.outcome ? `, outcome ${record.task.outcome}` : ''}${record.task.phase ? `, phase ${record.task.phase}` : ''}`,
    `plan: ${record.plan ? `${record.plan.steps.length} step(s)` : 'none'}; steps recorded: ${record.steps ? record.steps.length : 'unknown'}; decisions: ${decisions ?? 'unknown'}`,
  ];
  const v = record.verification;
  if (v.check === 'no-report') lines.push(`report: none (${v.reason})`);
  else
    lines.push(
      `report ${v.file} (${v.kind ?? 'unknown kind'}): ${v.verified ? 'verified' : 'NOT VERIFIED'}: ${v.reason}`,
    );
  const c = record.citations;
  if (c)
    lines.push(
      c.checked
        ? `citations: ${c.cited} cited, ${c.unbacked.length ? `${c.unbacked.length} NOT backed` : 'every one backed'} by the retrieval record ${c.retrievalRecord}`
        : `citations: not checked (${c.reason})`,
    );
  return [...lines, ...approvalChecks(record).lines];
}

/**
 * The script: once the command line is good, connects as the worker does (with the worker's payload
 * codec, so history and results read as written), runs the export, and closes the connection.
 */
const main = command(AUDIT_COMMAND, async (parsed) => {
  const args = auditArgs(parsed);
  const io = { out: (line: string) => console.log(line), err: (line: string) => console.error(line) };
  if ('verify' in args) return verifyOffline(args, io);
  let temporalOptions: TemporalOptions;
  let dataConverter: ReturnType<typeof dataConverterFromEnv>;
  try {
    temporalOptions = temporalOptionsFromEnv();
    dataConverter = dataConverterFromEnv();
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return 1;
  }
  let connection: Connection;
  try {
    // Connect first, so an unreachable server is reported as such, within a bound.
    connection = await Connection.connect({
      ...connectionOptions(temporalOptions),
      connectTimeout: DEFAULT_SERVER_TIMEOUT_MS,
    });
  } catch (err) {
    console.error(
      `error: cannot reach the Temporal server at ${temporalOptions.address} within ${DEFAULT_SERVER_TIMEOUT_MS / 1000} s (${failureMessage(err)}): is it running, and are TEMPORAL_ADDRESS and TEMPORAL_TLS* right?`,
    );
    return 1;
  }
  try {
    const client = new Client({ connection, namespace: temporalOptions.namespace, dataConverter });
    return await exportAudit(args, { client, address: temporalOptions.address, ...io });
  } finally {
    await connection.close().catch(() => undefined);
    // The export may be long and stdout a pipe: let it drain before runMain exits the process.
    await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  }
});

if (require.main === module) runMain(main);
