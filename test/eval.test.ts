/**
 * Issue 7, the evaluation harness (`npm run eval`): question-file validation, the judge's rubric,
 * the table and chart, the command line, model-call retries against the stand-in, and the whole
 * harness offline, end to end: four modes on two questions, Baton's (with and without research
 * rounds) on the jest Temporal server with a real worker, each answer judged by the stand-in, and
 * the files written with the warning that such scores are meaningless. Issue 19, item 4: citation
 * validity counted without a judge (a scripted answer citing one retrieved and one invented page is
 * 50%), and the rounds mode's generated playbook, with a round the scripted lead asks for.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { PROJECT_ROOT } from '../activities/options';
import type { AgentConfig } from '../config/schema';
import { DEFAULT_QUESTIONS, parseEvalArgs } from '../eval/args';
import { citationShare, citationValidity, citationValidityOfPass } from '../eval/citations';
import type { Retrieval } from '../contract/citations';
import { loadConfig } from '../activities/config';
import { roundsPlaybookId, writeRoundsConfig } from '../eval/rounds-playbook';
import { UsageError } from '../lib/cli';
import { renderChartSvg } from '../eval/chart';
import { defaultOutDir, runEval } from '../eval/harness';
import { callWithRetries, totalTokens } from '../eval/model';
import { MODES } from '../eval/modes';
import { loadQuestionFile, parseQuestionFile, QuestionFileError } from '../eval/questions';
import {
  cell,
  OFFLINE_CITATIONS_NOTE,
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
import { startStandIn, type StandInReply, type StandInRequest } from '../standin/server';
import { webSearchBlocks } from '../standin/server-tools';
import { defaultReply, GAP_MARKER, STAND_IN_LABEL } from '../standin/replies';
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
        row('one-call', {
          judgement: judgementWith(5),
          meanScore: 5,
          citations: { cited: 1, backed: 0, basis: 'no-tools' },
        }),
        row('single-agent', {
          judgement: judgementWith(4, 'Good | solid.'),
          meanScore: 4,
          citations: { cited: 2, backed: 1, basis: 'tool-results' },
        }),
        row('baton', {
          ok: false,
          error: 'the task failed: boom',
          answer: undefined,
          totalTokens: 9000,
          wallMs: 65_000,
          usage: { inputTokens: 8000, outputTokens: 1000 },
        }),
        row('baton-rounds', {
          judgement: judgementWith(4),
          meanScore: 4,
          roundsUsed: 1,
          citations: { cited: 2, backed: 1, basis: 'citation-pass' },
        }),
      ],
    },
    {
      id: 'q-broad',
      kind: 'broad',
      question: 'Compare A, B, C and D.',
      modes: [
        row('one-call', {
          judgement: judgementWith(2),
          meanScore: 2,
          citations: { cited: 0, backed: 0, basis: 'no-tools' },
        }),
        row('single-agent', {
          judge: { attempts: 3, usage: { inputTokens: 1, outputTokens: 1 }, error: 'judge: malformed' },
        }),
        row('baton', {
          judgement: judgementWith(5),
          meanScore: 5,
          totalTokens: 30_000,
          roundsUsed: 0,
          citations: { cited: 3, backed: 2, basis: 'citation-pass' },
        }),
        row('baton-rounds', {
          judgement: judgementWith(3),
          meanScore: 3,
          roundsUsed: 0,
          citations: { cited: 4, backed: 4, basis: 'citation-pass' },
        }),
      ],
    },
  ];
  return {
    kind: 'baton-eval',
    version: 2,
    startedAt: '2026-11-25T10:00:00.000Z',
    finishedAt: '2026-11-25T10:05:00.000Z',
    offline,
    ...(offline ? { warning: OFFLINE_WARNING } : {}),
    settings: {
      questionsFile: 'eval/questions.yaml',
      modes: [...MODES],
      playbook: 'research-brief',
      rounds: {
        playbook: 'research-brief-rounds',
        max: 2,
        approval: 'none',
        configDir: 'baton/config',
        configDigest: `sha256:${'0'.repeat(64)}`,
      },
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
    const [oneCall, single, baton, rounds] = sampleResults(false).summary;
    expect(oneCall).toMatchObject({ answered: 2, judged: 2, mean: 3.5, avgTokens: 1200, avgCostUsd: null });
    expect(oneCall?.scores.factualAccuracy).toBe(3.5);
    expect(oneCall?.byKind).toEqual({ fact: 5, focused: null, broad: 2 });
    expect(single).toMatchObject({ answered: 2, judged: 1, mean: 4 });
    expect(baton).toMatchObject({ answered: 1, judged: 1, mean: 5, avgTokens: 19_500, totalTokens: 39_000 });
    expect(baton?.avgWallMs).toBe((65_000 + 1500) / 2);
    expect(rounds).toMatchObject({ answered: 2, judged: 2, mean: 3.5, avgRounds: 0.5 });
  });

  test('citation validity averages the answers that cite anything; rounds only for Baton', () => {
    const [oneCall, single, baton, rounds] = sampleResults(false).summary;
    // One call cited once (backed by nothing) and nothing at all: the second is not a 0%.
    expect(oneCall).toMatchObject({ citationValidity: 0, cited: 1, backed: 0, avgRounds: null });
    expect(single).toMatchObject({ citationValidity: 0.5, cited: 2, backed: 1, avgRounds: null });
    expect(baton).toMatchObject({ cited: 3, backed: 2, avgRounds: 0 });
    expect(baton?.citationValidity).toBeCloseTo(2 / 3);
    // Per answer, then averaged: (1/2 + 4/4) / 2, not 5/6.
    expect(rounds).toMatchObject({ citationValidity: 0.75, cited: 6, backed: 5 });
  });

  test('the Markdown table has the averages, the kinds, a row per question and mode, and the notes', () => {
    const md = renderMarkdown(sampleResults(false));
    expect(md).not.toContain('OFFLINE');
    expect(md).not.toContain(OFFLINE_CITATIONS_NOTE);
    expect(md).toContain(
      '| Mode | Answered | Judged | Facts | Citations | Complete | Sources | Effort | Mean | Cited & retrieved | Rounds / question | Tokens / question | Wall time / question |',
    );
    expect(md).toContain(
      '| One model call | 2/2 | 2/2 | 3.5 | 3.5 | 3.5 | 3.5 | 3.5 | **3.5** | 0% (0/1) | — | 1,200 | 1.5 s |',
    );
    expect(md).toContain(
      '| Baton multi-agent | 1/2 | 1/2 | 5.0 | 5.0 | 5.0 | 5.0 | 5.0 | **5.0** | 67% (2/3) | 0.0 | 19,500 | 33.3 s |',
    );
    expect(md).toContain(
      '| Baton + research rounds | 2/2 | 2/2 | 3.5 | 3.5 | 3.5 | 3.5 | 3.5 | **3.5** | 75% (5/6) | 0.5 | 1,200 | 1.5 s |',
    );
    expect(md).toContain('| One model call | 5.0 | — | 2.0 |');
    expect(md).toContain(
      '| `q-fact` | fact | Baton multi-agent (failed) | — | — | — | — | — | — | — | — | 9,000 | 1 min 5 s |',
    );
    expect(md).toContain(
      '| `q-fact` | fact | Baton + research rounds | 4.0 | 4.0 | 4.0 | 4.0 | 4.0 | 4.0 | 50% (1/2) | 1 | 1,200 | 1.5 s |',
    );
    expect(md).toContain(
      '| `q-broad` | broad | Baton multi-agent | 5.0 | 5.0 | 5.0 | 5.0 | 5.0 | 5.0 | 67% (2/3) | 0 | 30,000 | 1.5 s |',
    );
    expect(md).toContain(
      '| `q-broad` | broad | One model call | 2.0 | 2.0 | 2.0 | 2.0 | 2.0 | 2.0 | none cited | — | 1,200 | 1.5 s |',
    );
    expect(md).toContain('(with rounds: `research-brief-rounds`, at most 2, no approval, in `baton/config`)');
    expect(md).toContain('Cited & retrieved: the share of');
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
    // The citation figure is counted, not judged: offline it is exact, of the stand-in's output.
    expect(md).toContain(`> ${OFFLINE_CITATIONS_NOTE}`);
    const svg = renderChartSvg(results.summary, { offline: true });
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg).toContain('OFFLINE STAND-IN RUN: scores are meaningless');
    expect(renderChartSvg(results.summary, { offline: false })).not.toContain('OFFLINE');
    expect(svg).toContain('Baton + research rounds (0.5 rounds / question)');
    for (const label of [
      'One model call',
      'Single agent + tools',
      'Baton multi-agent',
      'Baton + research rounds',
      'Cited sources retrieved (%)',
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
      modes: ['one-call', 'single-agent', 'baton', 'baton-rounds'],
      playbook: 'research-brief',
      rounds: 2,
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
          '--rounds',
          '3',
        ],
        '/w',
      ),
    ).toMatchObject({
      questionsFile: '/w/q.yaml',
      limit: 2,
      rounds: 3,
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
      '--modes: unknown mode "many-agents" (choose from one-call, single-agent, baton, baton-rounds)',
    ],
    [['--rounds', '6'], '--rounds must be at most 5 (got 6)'],
    [['--rounds', '0'], '--rounds must be a whole number of at least 1 (got "0")'],
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

describe('citation validity, counted without a judge', () => {
  const retrieval = (url: string): Retrieval => ({
    kind: 'web_search',
    url,
    title: url,
    retrievedAt: '2026-12-07T08:00:00.000Z',
  });
  const RETRIEVED = 'https://retrieved.example/ethanol';
  const INVENTED = 'https://invented.example/ethanol';

  test('an answer citing one retrieved and one not-retrieved page is 50%', () => {
    const answer = {
      text: 'About 78.4 °C [1], or so says [2].',
      sources: [
        { title: 'Retrieved', url: RETRIEVED },
        { title: 'Invented', url: INVENTED },
      ],
    };
    const figure = citationValidity(
      answer,
      [retrieval(RETRIEVED), retrieval('https://other.example/')],
      'tool-results',
    );
    expect(figure).toEqual({ cited: 2, backed: 1, basis: 'tool-results' });
    expect(citationShare(figure)).toBe(0.5);
  });

  test('sources are counted once by the citation pass key; links in the text count; a source without an address is never backed', () => {
    const answer = {
      text: `See [the page](${RETRIEVED}#boiling) and <https://invented.example/other>, and \`https://in.code.example/\`.`,
      sources: [
        { title: 'Retrieved', url: `${RETRIEVED}/` },
        { title: 'Retrieved again', url: 'HTTPS://RETRIEVED.example/ethanol' },
        { title: 'A book, no address' },
        { title: 'Not a web address', url: 'ftp://retrieved.example/ethanol' },
        // Another path is another page: the key keeps the path as written.
        { title: 'Other case', url: 'https://retrieved.example/Ethanol' },
      ],
    };
    const figure = citationValidity(answer, [retrieval(RETRIEVED)], 'tool-results');
    // retrieved (one key for four spellings), invented/other, the book, the ftp one, /Ethanol.
    expect(figure).toEqual({ cited: 5, backed: 1, basis: 'tool-results' });
  });

  test('one call has no tools: whatever it cites is unbacked, and citing nothing is no figure', () => {
    const cites = citationValidity(
      { text: 'From memory [1].', sources: [{ title: 'R', url: RETRIEVED }] },
      [],
      'no-tools',
    );
    expect(cites).toEqual({ cited: 1, backed: 0, basis: 'no-tools' });
    expect(citationShare(cites)).toBe(0);
    expect(citationShare(citationValidity({ text: 'No sources.', sources: [] }, [], 'no-tools'))).toBeNull();
    expect(citationShare(undefined)).toBeNull();
  });

  test("Baton's figure is its citation pass's counts", () => {
    const figure = citationValidityOfPass({
      verified: 3,
      unverified: 1,
      removed: 1,
      retrievals: 7,
      retrievalRecord: { id: `sha256:${'a'.repeat(64)}`, bytes: 10 },
    });
    expect(figure).toEqual({ cited: 4, backed: 3, basis: 'citation-pass' });
    expect(citationShare(figure)).toBe(0.75);
  });
});

describe("the rounds mode's playbook", () => {
  const configDir = path.join(PROJECT_ROOT, 'config');

  test('a copy of the config folder with the chosen playbook plus rounds, no approval; the rest unchanged', async () => {
    const into = path.join(await tmp('rounds'), 'config');
    const config = await loadConfig(configDir);
    const { playbook, config: copy } = await writeRoundsConfig(configDir, config, 'research-brief', 3, into);
    expect(playbook).toMatchObject({
      id: 'research-brief-rounds',
      from: 'research-brief',
      max: 3,
      approval: 'none',
      configDir: into,
      digest: copy.digest,
    });
    const original = config.playbooks['research-brief']!;
    expect(original.rounds).toBeUndefined();
    expect(copy.playbooks['research-brief-rounds']).toEqual({
      ...original,
      id: 'research-brief-rounds',
      description: expect.stringContaining(original.description) as string,
      rounds: { max: 3, approval: 'none' },
    });
    // Every other playbook, the agents and the approvers as they were.
    expect({ ...copy.playbooks, 'research-brief-rounds': undefined }).toEqual({
      ...config.playbooks,
      'research-brief-rounds': undefined,
    });
    expect(copy.agents).toEqual(config.agents);
    expect(copy.approvers).toEqual(config.approvers);
    expect(await fs.readFile(path.join(into, 'playbooks', 'research-brief-rounds.yaml'), 'utf8')).toMatch(
      /^# Generated by npm run eval from playbooks\/research-brief\.yaml/,
    );
    expect(roundsPlaybookId('a'.repeat(40))).toBe(`${'a'.repeat(33)}-rounds`);
  });

  test('a playbook with a fixed plan has no rounds to add: refused, saying why', async () => {
    const config = await loadConfig(configDir);
    await expect(
      writeRoundsConfig(configDir, config, 'fact-sheet', 2, path.join(await tmp('rounds'), 'config')),
    ).rejects.toThrow('playbook "fact-sheet" has a fixed plan');
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

  test('four modes on two questions: files written, every run answered, judged and counted, the warning everywhere', async () => {
    const dir = await tmp('run');
    const questionsFile = path.join(dir, 'questions.yaml');
    await fs.writeFile(questionsFile, TWO_QUESTIONS);
    const lines: string[] = [];
    const run = await runEval({
      questionsFile,
      modes: [...MODES],
      playbook: 'research-brief',
      rounds: 2,
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
      // The stand-in lead finds no gap: the rounds mode reviews and stops after the plan.
      const rounds = q.modes.find((m) => m.mode === 'baton-rounds')!;
      expect(rounds.workflowId).toMatch(new RegExp(`^eval-.*-rounds-${q.id}$`));
      expect({ baton: baton.roundsUsed, rounds: rounds.roundsUsed }).toEqual({ baton: 0, rounds: 0 });
      // Citation validity, counted: the stand-in searches nothing and cites example.invalid pages.
      const basis = Object.fromEntries(q.modes.map((m) => [m.mode, m.citations?.basis]));
      expect(basis).toEqual({
        'one-call': 'no-tools',
        'single-agent': 'tool-results',
        baton: 'citation-pass',
        'baton-rounds': 'citation-pass',
      });
      for (const m of q.modes) expect(m.citations?.backed).toBe(0);
      for (const m of [baton, rounds]) expect(m.citations?.cited).toBeGreaterThan(0);
    }
    expect(json.version).toBe(2);
    expect(json.settings.rounds).toMatchObject({
      playbook: 'research-brief-rounds',
      max: 2,
      approval: 'none',
      configDir: path.join('baton', 'config'),
    });
    await expect(
      fs.stat(path.join(dir, 'out', 'baton', 'config', 'playbooks', 'research-brief-rounds.yaml')),
    ).resolves.toBeTruthy();
    expect(md).toContain(OFFLINE_CITATIONS_NOTE);
    // Effort scaling: the broad comparison takes Baton more work than the simple fact.
    const batonOf = (id: string): ModeResult =>
      json.questions.find((q) => q.id === id)!.modes.find((m) => m.mode === 'baton')!;
    expect(batonOf('db-compare').steps!).toBeGreaterThan(batonOf('ethanol').steps!);

    expect(json.summary.map((s) => s.mode)).toEqual([...MODES]);
    for (const s of json.summary) {
      expect(s).toMatchObject({ questions: 2, answered: 2, judged: 2 });
      expect(s.avgTokens).toBeGreaterThan(0);
    }
    for (const label of [
      'One model call',
      'Single agent + tools',
      'Baton multi-agent',
      'Baton + research rounds',
    ]) {
      expect(md).toContain(`| ${label} | 2/2 | 2/2 |`);
      expect(svg).toContain(label);
    }
    expect(md).toContain('| `db-compare` | broad | Baton multi-agent |');
  }, 240_000);

  test('scripted searches: the single agent citing one retrieved and one invented page is 50%; a round the lead asks for is counted, and the citation pass gives Baton its figure', async () => {
    const RETRIEVED = 'https://retrieved.example/ethanol';
    const INVENTED = 'https://invented.example/ethanol';
    let calls = 0;
    // Server tools are in what was sent (the stand-in's `tools` keeps the client ones).
    const searched = (req: StandInRequest): boolean =>
      (req.body.toolsAsSent ?? []).some(
        (t) => (JSON.parse(t.definition) as { name?: string }).name === 'web_search',
      );
    const scripted = await startStandIn({
      respond: (req): StandInReply | undefined => {
        if (req.toolName === 'submit_answer' && searched(req)) {
          const answer = {
            answer: `${STAND_IN_LABEL} About 78.4 °C at 1 atm [1], as [2] agrees.`,
            sources: [
              { title: 'Retrieved page', url: RETRIEVED },
              { title: 'Invented page', url: INVENTED },
            ],
          };
          return {
            kind: 'blocks',
            blocks: [
              ...webSearchBlocks(`srvtoolu_eval_${++calls}`, 'ethanol boiling point', [
                { url: RETRIEVED, title: 'Retrieved page' },
              ]),
              { type: 'text', text: JSON.stringify(answer) },
            ],
          };
        }
        if (req.toolName !== 'submit_findings') return undefined;
        // Step s1 of the plan leaves a gap, which the stand-in lead fills with a round.
        const reply = defaultReply(req) as {
          kind: 'tool';
          input: { findings: string; sources: { title: string; url: string }[] };
        };
        const input = req.userText.includes('<task step="s1"')
          ? { ...reply.input, findings: `${reply.input.findings}\n\n${GAP_MARKER} Nothing on pressure.` }
          : reply.input;
        if (!searched(req)) return { kind: 'tool', input };
        // A searching specialist retrieved its first source, not its second.
        const [first] = input.sources;
        return {
          kind: 'blocks',
          blocks: [
            ...webSearchBlocks(`srvtoolu_eval_${++calls}`, 'the step', [first!]),
            { type: 'text', text: JSON.stringify(input) },
          ],
        };
      },
    });
    try {
      const dir = await tmp('scripted');
      const questionsFile = path.join(dir, 'questions.yaml');
      await fs.writeFile(questionsFile, TWO_QUESTIONS);
      const run = await runEval({
        questionsFile,
        limit: 1,
        modes: ['single-agent', 'baton-rounds'],
        playbook: 'research-brief',
        rounds: 2,
        concurrency: 1,
        taskTimeoutMs: 60_000,
        outDir: path.join(dir, 'out'),
        apiKey: 'scripted-stand-in',
        baseURL: scripted.url,
        configDir: path.join(PROJECT_ROOT, 'config'),
        temporal: { address: process.env.BATON_TEST_TEMPORAL_ADDRESS!, namespace: 'default', tls: false },
        workflowBundle: { codePath: process.env.BATON_TEST_WORKFLOW_BUNDLE! },
      });
      const [single, rounds] = run.results.questions[0]!.modes;
      expect(run.results.offline).toBe(true);
      expect(single).toMatchObject({
        mode: 'single-agent',
        ok: true,
        citations: { cited: 2, backed: 1, basis: 'tool-results' },
      });
      expect(citationShare(single!.citations)).toBe(0.5);
      expect(rounds).toMatchObject({ mode: 'baton-rounds', ok: true, roundsUsed: 1 });
      // The pass verified the searching steps' first sources and nothing else.
      const c = rounds!.citations!;
      expect(c.basis).toBe('citation-pass');
      expect(c.backed).toBeGreaterThan(0);
      expect(c.backed).toBeLessThan(c.cited);
      const md = await fs.readFile(run.files.markdown, 'utf8');
      expect(md).toContain('| `ethanol` | fact | Single agent + tools |');
      expect(md).toMatch(
        /\| `ethanol` \| fact \| Single agent \+ tools \|(?: [^|]+ \|){6} 50% \(1\/2\) \| — \|/,
      );
      expect(md).toMatch(/\| `ethanol` \| fact \| Baton \+ research rounds \|(?: [^|]+ \|){7} 1 \|/);
    } finally {
      await scripted.close();
    }
  }, 180_000);
});
