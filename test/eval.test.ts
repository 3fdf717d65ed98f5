/**
 * Issue 7, the evaluation harness (`npm run eval`): question-file validation, the judge's rubric,
 * the table and chart, the command line, model-call retries against the stand-in, and the whole
 * harness offline, end to end: three modes on two questions, Baton's on the jest Temporal server
 * with a real worker, each answer judged by the stand-in, and the files written with the warning
 * that such scores are meaningless.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { PROJECT_ROOT } from '../activities/options';
import type { AgentConfig } from '../config/schema';
import { DEFAULT_QUESTIONS, parseEvalArgs } from '../eval/args';
import { UsageError } from '../lib/cli';
import { renderChartSvg } from '../eval/chart';
import { defaultOutDir, runEval } from '../eval/harness';
import { callWithRetries, totalTokens } from '../eval/model';
import { MODES } from '../eval/modes';
import { loadQuestionFile, parseQuestionFile, QuestionFileError } from '../eval/questions';
import {
  cell,
  OFFLINE_WARNING,
  renderMarkdown,
  summarize,
  type EvalResults,
  type ModeResult,
  type QuestionResult,
} from '../eval/report';
import {
  CRITERIA,
  JUDGE_ANSWER,
  JudgementSchema,
  meanScore,
  parseJudgement,
  type Judgement,
} from '../eval/rubric';
import { startStandIn } from '../standin/server';
import { useTestServer } from './helpers';

const tmp = (prefix: string): Promise<string> => fs.mkdtemp(path.join(os.tmpdir(), `baton-eval-${prefix}-`));

const judgementWith = (score: number, verdict = 'Fine.'): Judgement =>
  ({
    ...Object.fromEntries(CRITERIA.map((c) => [c, { score, justification: `${c} is ${score}` }])),
    verdict,
  }) as Judgement;

const TWO_QUESTIONS = `version: 1
questions:
  - id: ethanol
    kind: fact
    question: What is the boiling point of ethanol?
    reference:
      keyPoints: [About 78.4 °C at 1 atm.]
  - id: db-compare
    kind: broad
    question: Compare PostgreSQL, MySQL, SQLite and MongoDB for a web application.
    reference:
      keyPoints:
        - Relational versus document model.
        - SQLite is embedded, one writer at a time.
      notes: Licences are a bonus.
`;

// ---------------------------------------------------------------------------------------------------------

describe('question file', () => {
  test('the shipped question set is valid, 8 to 12 questions of every kind', async () => {
    const file = await loadQuestionFile(DEFAULT_QUESTIONS);
    expect(file.questions.length).toBeGreaterThanOrEqual(8);
    expect(file.questions.length).toBeLessThanOrEqual(12);
    expect(new Set(file.questions.map((q) => q.kind))).toEqual(new Set(['fact', 'focused', 'broad']));
    for (const q of file.questions) expect(q.reference.keyPoints.length).toBeGreaterThan(0);
  });

  test('a valid file parses, trimmed', () => {
    const file = parseQuestionFile(TWO_QUESTIONS, 'q.yaml');
    expect(file.questions.map((q) => q.id)).toEqual(['ethanol', 'db-compare']);
    expect(file.questions[1]?.reference.notes).toBe('Licences are a bonus.');
  });

  const problemsOf = (text: string): string[] => {
    try {
      parseQuestionFile(text, 'q.yaml');
    } catch (err) {
      expect(err).toBeInstanceOf(QuestionFileError);
      return (err as QuestionFileError).problems;
    }
    throw new Error('expected the file to be refused');
  };

  test.each<[string, string, RegExp[]]>([
    ['not YAML', 'version: 1\nquestions: [\n', [/^q\.yaml:\d+:\d+: YAML: /]],
    ['not a mapping', '- 1\n- 2\n', [/^q\.yaml: \(root\): must be a mapping with version and questions$/]],
    [
      'wrong version',
      'version: 2\nquestions: []\n',
      [/q\.yaml: version: must be 1/, /questions: must list at least one/],
    ],
    [
      'every problem at once, by path',
      `version: 1
questions:
  - id: Bad Id
    kind: trivia
    question: ""
    reference: { keyPoints: [] }
  - kind: fact
    question: ok?
    reference: { keyPoints: [x], extra: 1 }
`,
      [
        /^q\.yaml: questions\.0\.id: must be lower-case letters/,
        /^q\.yaml: questions\.0\.kind: must be one of fact, focused, broad$/,
        /^q\.yaml: questions\.0\.question: must not be empty$/,
        /^q\.yaml: questions\.0\.reference\.keyPoints: must list at least one key point$/,
        /^q\.yaml: questions\.1\.id: is required$/,
        /^q\.yaml: questions\.1\.reference: Unrecognized key: "extra"$/,
      ],
    ],
    [
      'duplicate ids',
      `version: 1
questions:
  - { id: a, kind: fact, question: one?, reference: { keyPoints: [x] } }
  - { id: a, kind: fact, question: two?, reference: { keyPoints: [y] } }
`,
      [/^q\.yaml: questions\.1\.id: "a" is already the id of questions\.0; ids must be unique$/],
    ],
    [
      'a key point that YAML read as a mapping',
      `version: 1
questions:
  - { id: a, kind: fact, question: one?, reference: { keyPoints: [Note: this is a mapping] } }
`,
      [/^q\.yaml: questions\.0\.reference\.keyPoints\.0: must be a string$/],
    ],
  ])('%s is refused with clear messages', (_, text, expected) => {
    const problems = problemsOf(text);
    for (const pattern of expected)
      expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(pattern)]));
  });

  test('a missing file says so', async () => {
    await expect(loadQuestionFile('/nonexistent/q.yaml')).rejects.toThrow(
      '/nonexistent/q.yaml: no such file',
    );
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('rubric', () => {
  test('a well-formed judgement parses, and its mean is the mean of the five scores', () => {
    const input = {
      ...judgementWith(4),
      efficiency: { score: 2, justification: 'Too many calls for a fact.' },
    };
    const parsed = parseJudgement(input);
    expect(parsed).toEqual({ ok: true, value: input });
    expect(meanScore(parsed.ok ? parsed.value : undefined)).toBeCloseTo((4 * 4 + 2) / 5);
    expect(meanScore(undefined)).toBeUndefined();
  });

  test.each<[string, (j: Record<string, unknown>) => void, RegExp]>([
    [
      'a score above 5',
      (j) => (j.factualAccuracy = { score: 6, justification: 'x' }),
      /^factualAccuracy\.score: /,
    ],
    ['a score below 1', (j) => (j.completeness = { score: 0, justification: 'x' }), /^completeness\.score: /],
    [
      'a fractional score',
      (j) => (j.sourceQuality = { score: 3.5, justification: 'x' }),
      /^sourceQuality\.score: .*expected int/,
    ],
    [
      'a score as a string',
      (j) => (j.efficiency = { score: '4', justification: 'x' }),
      /^efficiency\.score: /,
    ],
    [
      'an empty justification',
      (j) => (j.citationAccuracy = { score: 3, justification: ' ' }),
      /^citationAccuracy\.justification: /,
    ],
    ['a missing criterion', (j) => delete j.citationAccuracy, /^citationAccuracy: /],
    ['an extra key', (j) => (j.overall = 5), /^\(root\): Unrecognized key: "overall"/],
  ])('%s is a problem, not an exception', (_, spoil, expected) => {
    const input: Record<string, unknown> = { ...judgementWith(3) };
    spoil(input);
    const parsed = parseJudgement(input);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok)
      expect(parsed.problems).toEqual(expect.arrayContaining([expect.stringMatching(expected)]));
    expect(parseJudgement('not even an object').ok).toBe(false);
  });

  test('the tool schema the judge sees asks for integers from 1 to 5 and a justification per criterion', () => {
    const schema = z.toJSONSchema(JudgementSchema, { io: 'input' }) as {
      properties: Record<
        string,
        { properties?: Record<string, Record<string, unknown>>; description?: string }
      >;
      required: string[];
      additionalProperties: boolean;
    };
    expect(schema.required).toEqual(expect.arrayContaining([...CRITERIA, 'verdict']));
    expect(schema.additionalProperties).toBe(false);
    for (const c of CRITERIA) {
      expect(schema.properties[c]?.properties?.score).toMatchObject({
        type: 'integer',
        minimum: 1,
        maximum: 5,
      });
      expect(schema.properties[c]?.properties?.justification).toMatchObject({ type: 'string' });
      expect(schema.properties[c]?.description).toBeTruthy();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------

const row = (mode: ModeResult['mode'], extra: Partial<ModeResult> = {}): ModeResult => ({
  mode,
  ok: true,
  wallMs: 1500,
  usage: { inputTokens: 1000, outputTokens: 200 },
  totalTokens: 1200,
  models: ['m'],
  answer: { text: 'An answer.', sources: [] },
  ...extra,
});

function sampleResults(offline: boolean): EvalResults {
  const questions: QuestionResult[] = [
    {
      id: 'q-fact',
      kind: 'fact',
      question: 'What is a | pipe?',
      modes: [
        row('one-call', { judgement: judgementWith(5), meanScore: 5 }),
        row('single-agent', { judgement: judgementWith(4, 'Good | solid.'), meanScore: 4 }),
        row('baton', {
          ok: false,
          error: 'the task failed: boom',
          answer: undefined,
          totalTokens: 9000,
          wallMs: 65_000,
          usage: { inputTokens: 8000, outputTokens: 1000 },
        }),
      ],
    },
    {
      id: 'q-broad',
      kind: 'broad',
      question: 'Compare A, B, C and D.',
      modes: [
        row('one-call', { judgement: judgementWith(2), meanScore: 2 }),
        row('single-agent', {
          judge: { attempts: 3, usage: { inputTokens: 1, outputTokens: 1 }, error: 'judge: malformed' },
        }),
        row('baton', { judgement: judgementWith(5), meanScore: 5, totalTokens: 30_000 }),
      ],
    },
  ];
  return {
    kind: 'baton-eval',
    version: 1,
    startedAt: '2026-11-25T10:00:00.000Z',
    finishedAt: '2026-11-25T10:05:00.000Z',
    offline,
    ...(offline ? { warning: OFFLINE_WARNING } : {}),
    settings: {
      questionsFile: 'eval/questions.yaml',
      modes: [...MODES],
      playbook: 'research-brief',
      judgeModel: 'judge-model',
      oneCallModel: 'lead-model',
      singleAgent: { agent: 'researcher', model: 'researcher-model' },
      model: 'Anthropic API',
    },
    questions,
    summary: summarize(questions, MODES),
  };
}

describe('table and chart', () => {
  test('summaries average judged scores, and tokens and time over every run', () => {
    const [oneCall, single, baton] = sampleResults(false).summary;
    expect(oneCall).toMatchObject({ answered: 2, judged: 2, mean: 3.5, avgTokens: 1200, avgCostUsd: null });
    expect(oneCall?.scores.factualAccuracy).toBe(3.5);
    expect(oneCall?.byKind).toEqual({ fact: 5, focused: null, broad: 2 });
    expect(single).toMatchObject({ answered: 2, judged: 1, mean: 4 });
    expect(baton).toMatchObject({ answered: 1, judged: 1, mean: 5, avgTokens: 19_500, totalTokens: 39_000 });
    expect(baton?.avgWallMs).toBe((65_000 + 1500) / 2);
  });

  test('the Markdown table has the averages, the kinds, a row per question and mode, and the notes', () => {
    const md = renderMarkdown(sampleResults(false));
    expect(md).not.toContain('OFFLINE');
    expect(md).toContain(
      '| Mode | Answered | Judged | Facts | Citations | Complete | Sources | Effort | Mean | Tokens / question | Wall time / question |',
    );
    expect(md).toContain(
      '| One model call | 2/2 | 2/2 | 3.5 | 3.5 | 3.5 | 3.5 | 3.5 | **3.5** | 1,200 | 1.5 s |',
    );
    expect(md).toContain(
      '| Baton multi-agent | 1/2 | 1/2 | 5.0 | 5.0 | 5.0 | 5.0 | 5.0 | **5.0** | 19,500 | 33.3 s |',
    );
    expect(md).toContain('| One model call | 5.0 | — | 2.0 |');
    expect(md).toContain(
      '| `q-fact` | fact | Baton multi-agent (failed) | — | — | — | — | — | — | 9,000 | 1 min 5 s |',
    );
    expect(md).toContain(
      '| `q-broad` | broad | Baton multi-agent | 5.0 | 5.0 | 5.0 | 5.0 | 5.0 | 5.0 | 30,000 | 1.5 s |',
    );
    expect(md).toContain('  - Baton multi-agent: failed: the task failed: boom');
    expect(md).toContain('  - Single agent + tools: not judged: judge: malformed');
    // Text from questions and models cannot break the table.
    expect(md).toContain('What is a \\| pipe?');
    expect(md).toContain('Good \\| solid.');
    expect(cell('a|b\nc')).toBe('a\\|b c');
    // Every table row has as many cells as its header.
    for (const block of md.split('\n\n').filter((b) => b.startsWith('| '))) {
      const lines = block.split('\n');
      const count = (l: string): number => l.replace(/\\\|/g, '').split('|').length;
      for (const line of lines) expect(count(line)).toBe(count(lines[0]!));
    }
  });

  test('an offline run says, at the top and bottom of the table and on the chart, that its scores are meaningless', () => {
    const results = sampleResults(true);
    const md = renderMarkdown(results);
    expect(md.split('\n').slice(0, 4).join('\n')).toContain(OFFLINE_WARNING);
    expect(md.trimEnd().endsWith(`> **${OFFLINE_WARNING}**`)).toBe(true);
    const svg = renderChartSvg(results.summary, { offline: true });
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg).toContain('OFFLINE STAND-IN RUN: scores are meaningless');
    expect(renderChartSvg(results.summary, { offline: false })).not.toContain('OFFLINE');
    for (const label of [
      'One model call',
      'Single agent + tools',
      'Baton multi-agent',
      'Tokens per question',
    ]) {
      expect(svg).toContain(label);
    }
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('command line', () => {
  test('defaults, and every option', () => {
    expect(parseEvalArgs([])).toEqual({
      questionsFile: DEFAULT_QUESTIONS,
      modes: ['one-call', 'single-agent', 'baton'],
      playbook: 'research-brief',
      concurrency: 1,
      taskTimeoutMs: 30 * 60_000,
    });
    expect(
      parseEvalArgs(
        [
          '--questions',
          'q.yaml',
          '--limit=2',
          '--modes',
          'baton,one-call',
          '--out',
          'o',
          '--playbook',
          'fact-sheet',
        ],
        '/w',
      ),
    ).toMatchObject({
      questionsFile: '/w/q.yaml',
      limit: 2,
      modes: ['one-call', 'baton'],
      outDir: '/w/o',
      playbook: 'fact-sheet',
    });
    expect(parseEvalArgs(['--judge-model', 'm', '--concurrency', '3', '--task-timeout', '5'])).toMatchObject({
      judgeModel: 'm',
      concurrency: 3,
      taskTimeoutMs: 5 * 60_000,
    });
    expect(parseEvalArgs(['--limit', '1', '--help'])).toBe('help');
    expect(parseEvalArgs(['-h'])).toBe('help');
  });

  test.each<[string[], string]>([
    [['--frobnicate'], 'unknown option --frobnicate'],
    [['question?'], 'unexpected argument "question?"'],
    [['--limit'], '--limit needs a value'],
    [['--limit', '--modes', 'baton'], '--limit needs a value'],
    [['--limit', '0'], '--limit must be a whole number of at least 1 (got "0")'],
    [['--limit', 'two'], '--limit must be a whole number of at least 1 (got "two")'],
    [
      ['--modes', 'baton,many-agents'],
      '--modes: unknown mode "many-agents" (choose from one-call, single-agent, baton)',
    ],
    [['--modes', ','], '--modes needs at least one of'],
    [['--playbook', 'Bad Id'], '--playbook must be a playbook id'],
    [['--concurrency', '9'], '--concurrency must be at most 8 (got 9)'],
    [['--limit', '1', '--limit', '2'], '--limit is given more than once'],
  ])('%j is refused: %s', (argv, message) => {
    expect(() => parseEvalArgs(argv)).toThrow(UsageError);
    expect(() => parseEvalArgs(argv)).toThrow(message);
  });

  test('the default output folder is eval/results/<date>, suffixed when it already holds results', async () => {
    const root = await tmp('out');
    const day = new Date('2026-11-25T12:00:00Z');
    expect(await defaultOutDir(day, root)).toBe(path.join(root, '2026-11-25'));
    await fs.mkdir(path.join(root, '2026-11-25'));
    await fs.writeFile(path.join(root, '2026-11-25', 'results.json'), '{}');
    expect(await defaultOutDir(day, root)).toBe(path.join(root, '2026-11-25-2'));
    expect(await defaultOutDir(day)).toBe(path.join(PROJECT_ROOT, 'eval', 'results', '2026-11-25'));
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('model calls outside Temporal, against the stand-in', () => {
  const agent: AgentConfig = {
    id: 'judge',
    role: 'judge',
    model: 'claude-stand-in-test',
    systemPrompt: 'Grade.',
    maxTokens: 500,
    tools: [],
    timeouts: { startToClose: '1m', heartbeat: '30s', streamIdle: '1m' },
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '1m',
      maximumAttempts: 3,
      nonRetryableErrorTypes: [],
    },
  };
  const call = { agent, prompt: 'Grade this.', answer: JUDGE_ANSWER };

  test('a malformed judgement is retried, and recorded as an error once the attempts are spent', async () => {
    let requests = 0;
    const standIn = await startStandIn({
      respond: () => {
        requests += 1;
        return { kind: 'tool', input: { factualAccuracy: { score: 9, justification: 'too high' } } };
      },
    });
    try {
      const outcome = await callWithRetries(call, { apiKey: 'k', baseURL: standIn.url }, { attempts: 3 });
      expect(outcome.ok).toBe(false);
      if (!outcome.ok)
        expect(outcome.error).toMatch(
          /^malformed submit_judgement answer: factualAccuracy\.score: .*\(after 3 attempts\)$/,
        );
      expect(requests).toBe(3);
      expect(outcome.attempts).toBe(3);
      // Every answer was paid for.
      expect(outcome.usage.inputTokens).toBeGreaterThan(0);
      expect(totalTokens(outcome.usage)).toBeGreaterThan(3);
    } finally {
      await standIn.close();
    }
  });

  test('a retryable error is retried and the call then succeeds; an auth error fails at once', async () => {
    const standIn = await startStandIn();
    try {
      standIn.inject({ status: 529, count: 1 });
      const ok = await callWithRetries(
        call,
        { apiKey: 'k', baseURL: standIn.url },
        { attempts: 3, backoffMs: () => 0 },
      );
      expect(ok).toMatchObject({ ok: true, attempts: 2 });
      if (ok.ok) expect(ok.value.factualAccuracy.score).toBeGreaterThanOrEqual(1);

      standIn.inject({ status: 401, count: 5 });
      const auth = await callWithRetries(
        call,
        { apiKey: 'k', baseURL: standIn.url },
        { attempts: 3, backoffMs: () => 0 },
      );
      expect(auth).toMatchObject({ ok: false, attempts: 1 });
      if (!auth.ok) expect(auth.error).toContain('ANTHROPIC_API_KEY');
    } finally {
      await standIn.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('the harness, offline, end to end', () => {
  useTestServer();

  test('three modes on two questions: files written, every run answered, judged and counted, the warning everywhere', async () => {
    const dir = await tmp('run');
    const questionsFile = path.join(dir, 'questions.yaml');
    await fs.writeFile(questionsFile, TWO_QUESTIONS);
    const lines: string[] = [];
    const run = await runEval({
      questionsFile,
      modes: [...MODES],
      playbook: 'research-brief',
      concurrency: 1,
      taskTimeoutMs: 60_000,
      outDir: path.join(dir, 'out'),
      configDir: path.join(PROJECT_ROOT, 'config'),
      temporal: { address: process.env.BATON_TEST_TEMPORAL_ADDRESS!, namespace: 'default', tls: false },
      workflowBundle: { codePath: process.env.BATON_TEST_WORKFLOW_BUNDLE! },
      log: (line) => lines.push(line),
    });

    expect(run.files).toEqual({
      json: path.join(dir, 'out', 'results.json'),
      markdown: path.join(dir, 'out', 'results.md'),
      chart: path.join(dir, 'out', 'chart.svg'),
    });
    const json = JSON.parse(await fs.readFile(run.files.json, 'utf8')) as EvalResults;
    const md = await fs.readFile(run.files.markdown, 'utf8');
    const svg = await fs.readFile(run.files.chart, 'utf8');

    expect(json.offline).toBe(true);
    expect(json.warning).toBe(OFFLINE_WARNING);
    expect(md).toContain(OFFLINE_WARNING);
    expect(svg).toContain('OFFLINE STAND-IN RUN');
    expect(lines.join('\n')).toContain(OFFLINE_WARNING);

    expect(json.questions.map((q) => q.id)).toEqual(['ethanol', 'db-compare']);
    for (const q of json.questions) {
      expect(q.modes.map((m) => m.mode)).toEqual([...MODES]);
      for (const m of q.modes) {
        expect({ mode: m.mode, ok: m.ok, error: m.error }).toEqual({
          mode: m.mode,
          ok: true,
          error: undefined,
        });
        expect(m.usage.inputTokens).toBeGreaterThan(0);
        expect(m.usage.outputTokens).toBeGreaterThan(0);
        expect(m.totalTokens).toBeGreaterThan(0);
        expect(m.wallMs).toBeGreaterThan(0);
        expect(m.answer?.text).toMatch(/offline stand-in/i);
        // The stand-in judge fills the answer from its schema: valid, and meaningless.
        expect(parseJudgement(m.judgement).ok).toBe(true);
        expect(m.judge?.usage.inputTokens).toBeGreaterThan(0);
      }
      const baton = q.modes.find((m) => m.mode === 'baton')!;
      expect(baton.workflowId).toMatch(new RegExp(`^eval-.*-${q.id}$`));
      expect(baton.steps).toBeGreaterThan(0);
      expect(baton.answer?.sources.length).toBeGreaterThan(0);
      await expect(fs.stat(baton.reportPath!)).resolves.toBeTruthy();
    }
    // Effort scaling: the broad comparison takes Baton more work than the simple fact.
    const batonOf = (id: string): ModeResult =>
      json.questions.find((q) => q.id === id)!.modes.find((m) => m.mode === 'baton')!;
    expect(batonOf('db-compare').steps!).toBeGreaterThan(batonOf('ethanol').steps!);

    expect(json.summary.map((s) => s.mode)).toEqual([...MODES]);
    for (const s of json.summary) {
      expect(s).toMatchObject({ questions: 2, answered: 2, judged: 2 });
      expect(s.avgTokens).toBeGreaterThan(0);
    }
    for (const label of ['One model call', 'Single agent + tools', 'Baton multi-agent']) {
      expect(md).toContain(`| ${label} | 2/2 | 2/2 |`);
      expect(svg).toContain(label);
    }
    expect(md).toContain('| `db-compare` | broad | Baton multi-agent |');
  });
});
