/**
 * The durable tool loop (issue 18, docs/tools.md "The tool loop"): a step whose agent has MCP tools
 * runs as activities the workflow drives, so a crash repeats no completed tool call:
 *
 *   prepareMcpTools (the declared tools, checked against their pins)
 *   loop: toolTurn (one model turn)
 *         → its tool calls, one callMcpTool activity each, in parallel
 *   until the model answers with its findings.
 *
 * Bounded by the agent's `maxToolTurns` and by the token budget: the turn that reaches either is
 * the last, on which the model must answer (`tool_choice: none`). The workflow carries only
 * references, ids and the calls' arguments (bounded); tool results stay in the artifact store.
 * A tool whose listing no longer matches its pin fails the step, audited. Deterministic.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  patched,
  proxyActivities,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { AgentConfig } from '../config/schema';
import type { StepInput, StepResult } from '../contract/activities';
import { FailureTypes } from '../contract/failures';
import { McpFailureTypes, type McpActivities, type McpToolRef } from '../contract/mcp';
import type { McpServers } from '../config/schema';
import { clip } from '../contract/bounds';
import { toolCallSubject } from '../contract/decision';
import type { AuditEntry, TokenUsage, ToolCallShown } from '../contract/messages';
import { safeJson, safeText } from '../contract/text';
import {
  DEFAULT_MAX_TOOL_TURNS,
  type AskedCall,
  type CallAnswer,
  type ToolLoopActivities,
  type ToolLoopTurn,
} from '../contract/tool-loop';
import { addUsageInto, tokensOf } from '../contract/usage';
import { summaryText } from './calls';
import type { GateOutcome } from './gates';

/** v14: a step whose agent has MCP tools runs as the tool loop. */
export const MCP_TOOL_LOOP = 'mcp-tool-loop';

/**
 * Listing a server's tools: a few requests of at most `MCP_REQUEST_TIMEOUT_MS` each, retried a few
 * times. The MCP activities heartbeat every second: a worker that dies is noticed within 10 s.
 */
const listing = proxyActivities<McpActivities>({
  startToCloseTimeout: '3 minutes',
  heartbeatTimeout: '10s',
  retry: { initialInterval: '1s', maximumAttempts: 5 },
});

/** A tool call: a call that failed is retried; one that completed is in history and never runs again. */
const calling = proxyActivities<McpActivities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '10s',
  retry: { initialInterval: '2s', maximumAttempts: 3 },
});

/** The refusals of a tool under review: audited, and the step fails. */
const REFUSALS: readonly string[] = [McpFailureTypes.ToolPinMismatch, McpFailureTypes.ToolNotDeclared];

/** A model turn takes the agent's own timeouts and retry policy, as every model call does. */
const modelTurns = (agent: AgentConfig) =>
  proxyActivities<ToolLoopActivities>({
    startToCloseTimeout: agent.timeouts.startToClose,
    heartbeatTimeout: agent.timeouts.heartbeat,
    retry: { ...agent.retry },
  });

const summary = (text: string, max = 200): ActivityOptions => ({ summary: summaryText(text, max) });

/** A call's arguments as a Web UI summary shows them: one sanitized line, clipped. */
export const clippedArguments = (args: Record<string, unknown>, max = 80): string =>
  summaryText(safeText(JSON.stringify(args)), max);

/** Why an MCP activity refused a tool (changed, or not declared), or undefined for any other failure. */
function mcpRefusal(err: unknown): string | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (!(cause instanceof ApplicationFailure) || !REFUSALS.includes(cause.type ?? '')) return undefined;
  return clip(safeText(cause.message), 500);
}

/** What the loop needs of the step's run (workflows/task-run.ts). */
export interface ToolLoopRun {
  /** Tokens the task has spent so far, and its budget (`maxTokensPerTask`), if it has one. */
  spent(): number;
  maxTokensPerTask?: number;
  /** The declared servers, from the task's config snapshot: their tools' pins and approval. */
  mcpServers: McpServers;
  /** The task's tool gate (workflows/gates.ts); a child or batch run has none. */
  approve?: (call: ToolCallShown, subject: string) => Promise<GateOutcome>;
  audit(entry: Omit<AuditEntry, 'at' | 'gate'>): void;
}

/** Most characters of a call's arguments the tool gate shows (its subject hashes them whole). */
const MAX_SHOWN_ARGUMENT_CHARS = 2000;

/** What the model is told of a call a person refused at the tool gate (Baton's words, never theirs). */
const REFUSED_BY_PERSON =
  'A person refused this tool call at the tool gate: it was not made. Do not ask for it again; answer with what you have.';

/**
 * Runs a step with MCP tools as the tool loop. Returns what a specialist step returns, its usage
 * the sum of its turns. A refused tool (pin changed, not declared) is audited and fails the step.
 */
export async function runToolLoop(
  agent: AgentConfig,
  input: StepInput,
  tools: McpToolRef[],
  run: ToolLoopRun,
): Promise<StepResult> {
  const step = input.step;
  // MCP tools came with the loop: a history without the marker cannot have them.
  if (!patched(MCP_TOOL_LOOP))
    throw ApplicationFailure.nonRetryable(
      `agent "${agent.id}" has MCP tools, which this task's workflow code (before ${MCP_TOOL_LOOP}) cannot run`,
      FailureTypes.PlanInvalid,
    );
  const refused = (what: string, err: unknown): never => {
    const reason = mcpRefusal(err);
    if (reason !== undefined)
      run.audit({ event: 'tool-call-refused', agent: agent.id, step: step.id, tool: what, reason });
    throw err;
  };
  const names = [...new Set(tools.map((t) => t.server))];
  const declared = Object.fromEntries(names.map((name) => [name, run.mcpServers[name]!]));
  const missing = names.filter((name) => !run.mcpServers[name]);
  if (missing.length)
    throw ApplicationFailure.nonRetryable(
      `agent "${agent.id}" names MCP server(s) ${missing.join(', ')}, which the task's config snapshot does not declare`,
      McpFailureTypes.ToolNotDeclared,
    );
  const prepared = await listing.prepareMcpTools
    .executeWithOptions(
      summary(`${step.id} · mcp ${names.join(', ')} · check ${tools.length} tool(s) against their pins`),
      [{ tools, servers: declared }],
    )
    .catch((err: unknown) => refused(names.join(', '), err));

  const turnsOf = modelTurns(agent);
  const maxTurns = agent.maxToolTurns ?? DEFAULT_MAX_TOOL_TURNS;
  const usage: TokenUsage = { inputTokens: 0, outputTokens: 0 };
  const turns: ToolLoopTurn[] = [];
  let toolsRef: ToolLoopTurn['assistant'] | undefined;
  const overBudget = (): boolean =>
    run.maxTokensPerTask !== undefined && run.spent() + tokensOf(usage) >= run.maxTokensPerTask;

  /** Whether a person lets the call be made, when its tool needs approval; a refusal is audited. */
  const approved = async (call: Exclude<AskedCall, { refused: string }>): Promise<boolean> => {
    if (run.mcpServers[call.server]?.tools[call.tool]?.approval !== 'required') return true;
    const what = `${call.server}/${call.tool}`;
    const audit = (reason: string): false => {
      run.audit({ event: 'tool-call-refused', agent: agent.id, step: step.id, tool: what, reason });
      return false;
    };
    if (!run.approve)
      return audit("needs a person's approval, which a step of a child workflow cannot ask for: not made");
    const { workflowId } = workflowInfo();
    const shown: ToolCallShown = {
      step: step.id,
      server: call.server,
      tool: call.tool,
      arguments: clip(safeJson(JSON.stringify(call.arguments)), MAX_SHOWN_ARGUMENT_CHARS),
    };
    const subject = toolCallSubject({ workflowId, step: step.id, ...call });
    const outcome = await run.approve(shown, subject);
    return outcome.kind === 'approve' || audit(`refused at the tool gate by ${outcome.by}`);
  };

  const answer = async (call: AskedCall): Promise<CallAnswer> => {
    if ('refused' in call)
      return { callId: call.callId, isError: true, note: `Refused by Baton: ${call.refused}.` };
    if (!(await approved(call))) return { callId: call.callId, isError: true, note: REFUSED_BY_PERSON };
    const text = `mcp ${call.server} · ${call.tool} · ${clippedArguments(call.arguments)}`;
    const result = await calling.callMcpTool
      .executeWithOptions(summary(text), [
        {
          server: call.server,
          tool: call.tool,
          callId: call.callId,
          stepId: step.id,
          arguments: call.arguments,
          declaration: declared[call.server]!,
        },
      ])
      .catch((err: unknown) => refused(`${call.server}/${call.tool}`, err));
    return { callId: call.callId, isError: result.isError, result: result.result };
  };

  for (let n = 1; ; n++) {
    const last = n >= maxTurns || overBudget();
    const turn = await turnsOf.toolTurn.executeWithOptions(
      summary(`${step.id} · ${agent.id} · turn ${n}${last ? ' (last)' : ''}: ${step.question}`),
      [{ ...input, ...(toolsRef ? { toolsRef } : { tools: prepared.tools }), turns, last }],
    );
    addUsageInto(usage, turn.usage);
    // Audited as they come, not with the step's result: a step that fails later keeps them.
    for (const r of turn.refusedToolCalls ?? [])
      run.audit({
        event: 'tool-call-refused',
        agent: agent.id,
        step: step.id,
        tool: r.tool,
        reason: r.reason,
      });
    toolsRef = turn.toolsRef;
    if (turn.kind === 'answer') {
      const { summary: said, sources, sourcesRef, retrievedRef, retrieved, result, model } = turn;
      // What its tools returned (since v16): for the citation pass.
      return {
        summary: said,
        sources,
        sourcesRef,
        ...(retrievedRef ? { retrievedRef, retrieved } : {}),
        result,
        usage,
        model,
      };
    }
    if (last)
      throw ApplicationFailure.nonRetryable(
        `step "${step.id}": the model asked for tools on the tool loop's last turn`,
        FailureTypes.ModelOutputInvalid,
      );
    turns.push({ assistant: turn.assistant, answers: await Promise.all(turn.calls.map(answer)) });
  }
}
