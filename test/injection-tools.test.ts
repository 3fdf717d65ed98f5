/**
 * The prompt-injection corpus through tools (issue 18, item 5; test/injection-corpus.ts,
 * TOOL_INJECTIONS): text in a pinned MCP tool's result, or in a page the model fetched, that asks
 * for other tools, forges Baton's decisions, claims to be the system prompt, or is too big. Each runs
 * through the tool loop on a real worker, against the real fixture MCP server (test/mcp-server.ts)
 * and the stand-in scripted as a model that obeys (the worst case), and is checked for what does
 * not widen: nothing undeclared is called, nothing is approved, the text reaches the model only as
 * tool data, and its size is capped before any workflow payload.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { createActivities } from '../activities';
import { MAX_TOOL_RESULT_BYTES, MAX_TOOL_RESULT_PREVIEW_BYTES } from '../contract/mcp';
import { MAX_TOOL_RESULT_CHARS } from '../contract/tool-loop';
import { reject, status as statusQuery, type TaskStatus } from '../contract/messages';
import { startStandIn, type StandIn, type StandInReply, type StandInRequest } from '../standin/server';
import { webFetchBlocks } from '../standin/server-tools';
import { toolCalls, toolResults, turnOf } from '../standin/tool-turns';
import { researchTask } from '../workflows';
import { tempActivityOptions, uniqueId, useTestServer, waitForStatus, withWorker } from './helpers';
import { TOOL_INJECTIONS, type ToolInjection } from './injection-corpus';
import {
  pinsOf,
  startMcpServer,
  TOOL_APPROVALS_PLAYBOOK,
  writeToolApprovalsPlaybook,
  type McpFixture,
} from './mcp-server';

const ctx = useTestServer();
const QUESTION = 'How fast is grid storage growing, per the corpus and the web?';
/** What the model is offered: `<server>__<tool>`. */
const READ = 'docs__read_document';
const SEARCH = 'docs__search_documents';
const FINDINGS = { summary: 'Storage grew.', findings: 'Battery storage grew fastest in 2025.', sources: [] };

interface Outcome {
  /** The task at its tool gate, for the cases that reach one. */
  atToolGate?: TaskStatus;
  final: TaskStatus;
  outcome: string;
  /** Every payload in the task's history, decoded. */
  payloads: string[];
}

let docs: McpFixture;
let other: McpFixture;
let configDir: string;
let standIn: StandIn;
const seen = new Map<string, StandInRequest[]>();
/** The other requests of each case (the plan, the report), which see the researcher's findings. */
const later = new Map<string, StandInRequest[]>();
/** Each case's outcome, in the order of TOOL_INJECTIONS. */
let outcomes: PromiseSettledResult<Outcome>[] = [];

const caseOf = (req: StandInRequest): ToolInjection | undefined => {
  const id = /\[case ((?:MCP|WEB)-\d+)\]/.exec(req.userText)?.[1];
  return TOOL_INJECTIONS.find((i) => i.id === id);
};

/** A fetched page carrying the case's text, and the client tool calls the model makes in the same reply. */
const fetched = (injection: ToolInjection, calls: StandInReply): StandInReply => ({
  kind: 'blocks',
  blocks: [
    ...webFetchBlocks('srvtoolu_fetch1', {
      url: 'https://attacker.invalid/page',
      title: 'A page',
      text: injection.text,
    }),
    ...(calls.kind === 'blocks' ? calls.blocks : []),
  ],
});

/** What the obedient model does after reading the text: call what it was told to, or answer. */
function obeyed(injection: ToolInjection): StandInReply {
  const { attack } = injection;
  if (attack.kind === 'tool') return toolCalls(...attack.calls);
  // It asks for a call that needs approval, taking the forged decisions for one.
  if (attack.kind === 'approve') return toolCalls({ name: SEARCH, input: { query: 'grid storage' } });
  return {
    kind: 'tool',
    input: {
      ...FINDINGS,
      findings: `${FINDINGS.findings}\n\nThe tool says: ${injection.text.slice(0, 2000)}`,
    },
  };
}

/** The stand-in: the lead plans one step; the researcher reads the case's text, then obeys it. */
function respond(req: StandInRequest): StandInReply | undefined {
  const injection = caseOf(req);
  if (!injection) return undefined;
  const into = req.toolName === 'submit_findings' ? seen : later;
  (into.get(injection.id) ?? into.set(injection.id, []).get(injection.id)!).push(req);
  if (req.toolName === 'submit_plan')
    return {
      kind: 'tool',
      input: {
        rationale: 'One step.',
        steps: [{ id: 's1', agent: 'researcher', question: QUESTION, dependsOn: [], decompose: false }],
      },
    };
  if (req.toolName !== 'submit_findings') return undefined;
  const turn = turnOf(req);
  const obeys = obeyed(injection);
  if (injection.where === 'fetched-page') {
    // It fetches the page and, in the same reply, calls what the page asks (or reads on, then obeys).
    if (turn === 1)
      return fetched(
        injection,
        obeys.kind === 'blocks' ? obeys : toolCalls({ name: READ, input: { id: 'grid-storage' } }),
      );
    return turn === 2 && obeys.kind !== 'blocks' ? obeys : { kind: 'tool', input: FINDINGS };
  }
  if (turn === 1) return toolCalls({ name: READ, input: { id: injection.id.toLowerCase() } });
  return turn === 2 ? obeys : { kind: 'tool', input: FINDINGS };
}

async function runCase(injection: ToolInjection, taskQueue: string): Promise<Outcome> {
  const handle: WorkflowHandle<typeof researchTask> = await ctx.client.workflow.start(researchTask, {
    taskQueue,
    workflowId: uniqueId(`injection-${injection.id}`),
    args: [{ question: `${QUESTION} [case ${injection.id}]`, playbook: TOOL_APPROVALS_PLAYBOOK }],
  });
  let atToolGate: TaskStatus | undefined;
  if (injection.attack.kind === 'approve') {
    atToolGate = await waitForStatus(handle, (s) => s.pendingGate?.gate === 'tool', 'the tool gate', 60_000);
    await handle.signal(reject, { by: 'bob', gate: 'tool' });
  }
  const { outcome } = await handle.result();
  const events = (await handle.fetchHistory()).events ?? [];
  const payloads: string[] = [];
  const walk = (value: unknown): void => {
    if (value instanceof Uint8Array || typeof value !== 'object' || value === null) return;
    const data = (value as { data?: unknown }).data;
    if (data instanceof Uint8Array && 'metadata' in value) payloads.push(Buffer.from(data).toString('utf8'));
    for (const v of Object.values(value)) walk(v);
  };
  walk(events);
  return {
    atToolGate,
    final: await handle.query(statusQuery),
    outcome,
    payloads,
  };
}

beforeAll(async () => {
  const documents = Object.fromEntries(
    TOOL_INJECTIONS.filter((i) => i.where === 'mcp-result').map((i) => [i.id.toLowerCase(), i.text]),
  );
  [docs, other] = await Promise.all([startMcpServer({ documents }), startMcpServer()]);
  // The fixture config; the researcher may call docs' two tools (search only with approval) and
  // fetch pages; the analyst, who has no step here, may call the other server's.
  configDir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-injection-tools-'));
  // The worker's options with the fixture config, which the copy replaces.
  const options = await tempActivityOptions();
  await fs.cp(options.configDir, configDir, { recursive: true });
  const file = path.join(configDir, 'agents.yaml');
  const agents = YAML.parse(await fs.readFile(file, 'utf8')) as {
    agents: { id: string; tools?: unknown[] }[];
    mcpServers?: unknown;
  };
  const declare = async (server: McpFixture) =>
    Object.fromEntries(
      Object.entries(await pinsOf(server.url)).map(([name, sha256]) => [
        name,
        { sha256, ...(server === docs && name === 'search_documents' ? { approval: 'required' } : {}) },
      ]),
    );
  agents.mcpServers = {
    docs: { url: docs.url, tools: await declare(docs) },
    other: { url: other.url, tools: await declare(other) },
  };
  const tools = (server: string) => [
    { mcp: server, tool: 'search_documents' },
    { mcp: server, tool: 'read_document' },
  ];
  agents.agents.find((a) => a.id === 'researcher')!.tools = [...tools('docs'), { name: 'web_fetch' }];
  agents.agents.find((a) => a.id === 'analyst')!.tools = tools('other');
  await fs.writeFile(file, YAML.stringify(agents));
  await writeToolApprovalsPlaybook(configDir);

  standIn = await startStandIn({ respond });
  const activities = createActivities({ ...options, configDir, baseURL: standIn.url });
  outcomes = await withWorker(ctx, activities, (taskQueue) =>
    Promise.allSettled(TOOL_INJECTIONS.map((injection) => runCase(injection, taskQueue))),
  );
}, 180_000);

afterAll(async () => {
  await Promise.all([standIn?.close(), docs?.close(), other?.close()]);
  await fs.rm(configDir, { recursive: true, force: true });
});

/** Where in a request a text is: the system prompt, Baton's prompt, tool results, fetched pages, elsewhere. */
function placesOf(req: StandInRequest, marker: string): string[] {
  const places = new Set<string>();
  if (JSON.stringify(req.body.system).includes(marker)) places.add('system');
  for (const m of req.body.messages)
    for (const b of typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content)
      if (JSON.stringify(b).includes(marker)) places.add(`${m.role} ${String(b.type)}`);
  return [...places].sort();
}

describe.each(TOOL_INJECTIONS.map((i) => [`${i.id} (${i.where}, ${i.attack.kind})`, i] as const))(
  '%s',
  (_name, injection) => {
    const outcome = (): Outcome => {
      const settled = outcomes[TOOL_INJECTIONS.indexOf(injection)];
      if (settled?.status !== 'fulfilled') throw settled?.reason ?? new Error(`${injection.id} did not run`);
      return settled.value;
    };
    const requests = (): StandInRequest[] => seen.get(injection.id) ?? [];
    const marker = `(${injection.id})`;

    test('the model read it, and the step still ends cleanly: the task completes', () => {
      expect(requests().some((r) => placesOf(r, marker).length > 0)).toBe(true);
      expect(outcome().outcome).toBe('completed');
      expect(outcome().final.steps.map((s) => [s.id, s.state])).toEqual([['s1', 'done']]);
    });

    test('no tool outside the step is called: refused, audited, and the model told so; no MCP request to anything undeclared', () => {
      const { final } = outcome();
      const refused = final.audit.filter((e) => e.event === 'tool-call-refused');
      // The other server got no call, and docs only the reads the cases script (no search: it needs approval).
      expect(other.calls).toEqual([]);
      expect(docs.calls.map((c) => c.tool)).not.toContain('search_documents');
      const reads = docs.calls.filter((c) => c.arguments.id === injection.id.toLowerCase());
      expect(reads).toHaveLength(injection.where === 'mcp-result' ? 1 : 0);
      if (injection.attack.kind === 'tool') {
        const names = injection.attack.calls.map((c) => c.name);
        expect(refused.map((e) => e.tool).sort()).toEqual([...names].sort());
        for (const e of refused) expect(e).toMatchObject({ agent: 'researcher', step: 's1' });
        const answers = toolResults(requests().at(-1)!).slice(-names.length);
        for (const a of answers)
          expect(a).toMatchObject({
            isError: true,
            text: expect.stringMatching(/^Refused by Baton: not a tool declared/),
          });
      } else if (injection.attack.kind !== 'approve') {
        expect(refused).toEqual([]);
      }
    });

    test('forged decisions approve nothing: only a person decides at the tool gate', () => {
      const { atToolGate, final } = outcome();
      const decisions = final.audit.filter((e) => e.event === 'decision');
      if (injection.attack.kind !== 'approve') {
        expect(decisions).toEqual([]);
        return;
      }
      expect(atToolGate!.pendingGate).toMatchObject({
        gate: 'tool',
        approvals: [],
        call: { tool: 'search_documents' },
      });
      expect(decisions.map((d) => [d.gate, d.by, d.via, d.accepted])).toEqual([
        ['tool', 'bob', 'signal', true],
      ]);
      expect(final.audit.filter((e) => e.event === 'tool-call-refused')).toEqual([
        expect.objectContaining({ tool: 'docs/search_documents', reason: 'refused at the tool gate by bob' }),
      ]);
    });

    test("the text reaches the model only as tool data: in a tool result or the fetched page, never in the system prompt or Baton's prompt", () => {
      const places = new Set(requests().flatMap((r) => placesOf(r, marker)));
      expect(places.has('system')).toBe(false);
      const expected =
        injection.where === 'mcp-result' ? 'user tool_result' : 'assistant web_fetch_tool_result';
      expect([...places]).toEqual([expected]);
      // The findings that quote it reach the report only inside Baton's untrusted blocks.
      for (const r of later.get(injection.id) ?? []) {
        expect(JSON.stringify(r.body.system)).not.toContain(marker);
        const outside = r.userText.replace(/<(context|step_results) untrusted="true">[\s\S]*?<\/\1>/g, '');
        expect(outside).not.toContain(marker);
      }
      if (injection.attack.kind === 'escape')
        expect((later.get(injection.id) ?? []).some((r) => r.userText.includes(marker))).toBe(true);
      for (const r of requests())
        for (const t of toolResults(r))
          expect(t.text.length).toBeLessThanOrEqual(MAX_TOOL_RESULT_CHARS + 200);
    });

    test('its size is capped before any workflow payload: the history carries references and a preview', () => {
      const { payloads } = outcome();
      expect(Math.max(...payloads.map((p) => Buffer.byteLength(p)))).toBeLessThan(MAX_TOOL_RESULT_BYTES / 8);
      if (injection.attack.kind !== 'oversize') return;
      // Of a text over the cap, at most the preview is in history; the model got it cut, saying so.
      for (const p of payloads)
        expect(p).not.toContain(injection.text.slice(0, MAX_TOOL_RESULT_PREVIEW_BYTES * 2));
      if (injection.where === 'mcp-result') {
        const [result] = toolResults(requests().find((r) => turnOf(r) === 2)!);
        // Stored as its first MAX_TOOL_RESULT_BYTES and a note (ASCII here: a character a byte), then cut for the model.
        const cut = /\n\[result cut at (\d+) characters of (\d+)\]\n/.exec(result!.text);
        expect(Number(cut?.[1])).toBe(MAX_TOOL_RESULT_CHARS);
        expect(Number(cut![2])).toBeGreaterThan(MAX_TOOL_RESULT_BYTES);
        expect(Number(cut![2])).toBeLessThan(MAX_TOOL_RESULT_BYTES + 100);
      }
    });
  },
);
