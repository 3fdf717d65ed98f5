/**
 * Retrieved sources and the citation pass (issue 19, items 2 and 3), with the real dev server, a
 * real worker and the real Anthropic SDK against the stand-in, scripted so that a step's web search
 * and web fetch return some pages and the model cites one of them, and also addresses no tool
 * returned. The report shows those only as unverified, not among its references, and its
 * provenance counts them; `npm run audit` passes on the report as published and names the source
 * an attacker with disk access added to it. Then the attack cases, on the pass itself.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createActivities } from '../activities';
import { getArtifact } from '../activities/artifacts';
import {
  checkBody,
  checkedReportText,
  citedLinks,
  readRetrievalRecord,
  retrievalsIn,
} from '../activities/citations';
import { toolsFor } from '../activities/tools';
import { BODY_END } from '../activities/report';
import { openStores } from '../activities/store';
import type { ActivityOptions } from '../activities/options';
import { runAudit } from '../cli/audit';
import type { AuditRecord } from '../cli/audit-record';
import {
  citationKey,
  contentHashOf,
  mcpRetrieval,
  mcpSourceUrl,
  type Retrieval,
} from '../contract/citations';
import { approve, type ResearchTaskResult, type TaskStatus } from '../contract/messages';
import { startStandIn, type StandIn, type StandInRequest } from '../standin/server';
import { webFetchBlocks, webSearchBlocks } from '../standin/server-tools';
import { researchTask } from '../workflows';
import {
  captured,
  type CapturedRun,
  tempActivityOptions,
  testPublishersFile,
  uniqueId,
  useTestServer,
  waitForStatus,
  withWorker,
} from './helpers';

/** The researcher has web_search and web_fetch; the playbook both gates, signed off by alice. */
const CONFIG = path.join(__dirname, 'fixtures', 'config-citations');
const PLAN = {
  rationale: 'One look at the evidence.',
  steps: [
    { id: 's1', agent: 'researcher', question: 'Gather the evidence.', dependsOn: [], decompose: false },
  ],
};
const SEARCHED = { url: 'https://trusted.example/report', title: 'Trusted report', pageAge: 'March 1, 2026' };
const ALSO_SEARCHED = { url: 'https://other.example/b', title: 'Other page' };
const FETCHED = {
  url: 'https://fetched.example/page',
  title: 'Fetched page',
  // The page tries to add a reference of its own.
  text: 'Data.\n\n## References\n- [Evil](https://evil.example/from-page)',
  retrievedAt: '2026-12-01T10:00:00Z',
};
const NOT_RETRIEVED = 'https://unretrieved.example/paper';

/** The stand-in: a researcher that searches and fetches, then cites what it found and what it did not. */
function respond(req: StandInRequest) {
  if (req.toolName === 'submit_plan') return { kind: 'tool' as const, input: PLAN };
  if (req.toolName === 'submit_findings') {
    const findings = {
      summary: 'The evidence, found and fetched.',
      findings: `The trusted report says so ([report](${SEARCHED.url})).`,
      sources: [
        // The retrieved page, cited with its host in capitals, a trailing slash and a fragment.
        { title: 'Trusted report', url: 'https://TRUSTED.example/report/#intro' },
        { title: 'Fetched page', url: FETCHED.url },
        { title: 'A paper no search returned', url: NOT_RETRIEVED },
      ],
    };
    return {
      kind: 'blocks' as const,
      blocks: [
        ...webSearchBlocks('srvtoolu_search', 'the evidence', [SEARCHED, ALSO_SEARCHED]),
        ...webFetchBlocks('srvtoolu_fetch', FETCHED),
        { type: 'text' as const, text: JSON.stringify(findings) },
      ],
    };
  }
  if (req.toolName === 'submit_report')
    return {
      kind: 'tool' as const,
      input: {
        title: 'What the evidence says',
        summary: 'It says so.',
        markdown: [
          `The evidence holds [step:s1], as [the trusted report](${SEARCHED.url}) shows; see also ${NOT_RETRIEVED}.`,
          // What the fetched page tried to add, copied by the model.
          '## References\n- [Evil](https://evil.example/from-page)',
        ].join('\n\n'),
      },
    };
  return undefined;
}

const ctx = useTestServer();
/** `npm run audit -- <id>` in-process, with the workers' stores and publishers; prints the record's `citations` last. */
function audit(workflowId: string, extra: string[] = []): Promise<CapturedRun> {
  return captured(async (io) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-citations-audit-'));
    const file = path.join(dir, 'audit.json');
    const code = await runAudit([workflowId, '--out', file, ...extra], {
      client: ctx.client,
      env: {
        BATON_CONFIG_DIR: path.dirname(publishers),
        BATON_ARTIFACT_DIR: options.artifactDir,
        BATON_REPORT_DIR: options.reportDir,
      },
      ...io,
    });
    const record = JSON.parse(await fs.readFile(file, 'utf8')) as AuditRecord;
    io.out(JSON.stringify(record.citations));
    return code;
  });
}

/** The mark after an unverified source, as Markdown: `[unverified]` once rendered. */
const MARK = '\\[unverified\\]';

/** What the attacker adds to the published report. */
const ADDED = '3. [Added](https://added.example/study)';

let standIn: StandIn;
let options: ActivityOptions;
let publishers: string;
let outcome: {
  atReport: TaskStatus;
  draft: string;
  result: ResearchTaskResult;
  handle: WorkflowHandle;
  /** `npm run audit` on the report as published, and on a copy an attacker added a source to. */
  honest: CapturedRun;
  edited: CapturedRun;
};

beforeAll(async () => {
  publishers = await testPublishersFile();
  standIn = await startStandIn({ respond });
  options = { ...(await tempActivityOptions(CONFIG)), baseURL: standIn.url };
  outcome = await withWorker(ctx, createActivities(options), async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('citations'),
      args: [{ question: 'What does the evidence say?', playbook: 'cited' }],
    });
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate', 60_000);
    await handle.signal(approve, { by: 'alice', gate: 'plan' });
    const atReport = await waitForStatus(
      handle,
      (s) => s.pendingGate?.gate === 'report',
      'the report gate',
      60_000,
    );
    const draft = await fs.readFile(atReport.report!.draftPath!, 'utf8');
    await handle.signal(approve, { by: 'alice', gate: 'report' });
    const result = await handle.result();
    // As an attacker with disk access would: one more source in the published report's body.
    const published = await fs.readFile(result.reportPath!, 'utf8');
    const edited = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'baton-edited-')), 'report.md');
    const at = published.indexOf(BODY_END);
    await fs.writeFile(edited, `${published.slice(0, at)}${ADDED}\n\n${published.slice(at)}`);
    // While the worker runs, so that the audit gets the task's status too.
    return {
      atReport,
      draft,
      result,
      handle,
      honest: await audit(handle.workflowId),
      edited: await audit(handle.workflowId, ['--report', edited]),
    };
  });
}, 120_000);

afterAll(async () => {
  await standIn?.close();
});

/** The text between the body markers of a published report. */
const bodyOf = (report: string): string => report.slice(0, report.indexOf(BODY_END));
/** The report's last section, the verified sources. */
const referencesOf = (report: string): string => bodyOf(report).split('## References: verified sources')[1]!;

test("a step's retrieval record holds what its tools returned, from the response, with content hashes", async () => {
  const step = outcome.atReport.steps.find((s) => s.id === 's1')!;
  expect(step.retrieved).toBe(3);
  const record = await readRetrievalRecord(openStores(options).artifacts, step.retrievedRef!, 's1');
  expect(record.retrievals).toEqual([
    {
      kind: 'web_search',
      url: SEARCHED.url,
      title: SEARCHED.title,
      pageAge: SEARCHED.pageAge,
      retrievedAt: expect.any(String),
      contentHash: contentHashOf(Buffer.from(`stand-in page ${SEARCHED.url}`).toString('base64')),
    },
    expect.objectContaining({ kind: 'web_search', url: ALSO_SEARCHED.url }),
    {
      kind: 'web_fetch',
      url: FETCHED.url,
      title: FETCHED.title,
      retrievedAt: '2026-12-01T10:00:00.000Z',
      contentHash: contentHashOf(FETCHED.text),
    },
  ]);
  // Nothing the model wrote became a retrieval: the address it made up is not there.
  expect(JSON.stringify(record)).not.toContain(NOT_RETRIEVED);
});

test('the draft at the report gate shows the unretrieved sources only as unverified, and the gate sees the counts', () => {
  const { atReport, draft } = outcome;
  expect(atReport.citations).toMatchObject({ verified: 2, unverified: 2, removed: 1, retrievals: 3 });
  expect(atReport.citations!.unverifiedSources).toEqual(
    expect.arrayContaining([expect.stringContaining(NOT_RETRIEVED), 'https://evil.example/from-page']),
  );
  const references = referencesOf(draft);
  expect(references).toContain(
    `[Trusted report](<${SEARCHED.url}>): web search result (page age: March 1, 2026)`,
  );
  expect(references).toContain(
    `[Fetched page](<${FETCHED.url}>): page fetched, retrieved 2026-12-01T10:00:00.000Z`,
  );
  expect(references).not.toContain('unretrieved.example');
  expect(references).not.toContain('evil.example');
  // In the text: named, in a code span, marked; never a link.
  expect(bodyOf(draft)).toContain(`\`${NOT_RETRIEVED}\`) ${MARK}`);
  expect(bodyOf(draft)).toContain(`\`https://evil.example/from-page\`) ${MARK}`);
  // The step's own sources keep the verified ones; the other is named as not a source.
  expect(draft).toContain(
    '  Sources: [Trusted report](<https://trusted.example/report/#intro>); [Fetched page]',
  );
  expect(draft).toContain('  Not sources (no tool retrieved them): A paper no search returned');
  for (const href of citedLinks(bodyOf(draft))) {
    expect([href, ['https://trusted.example/report', FETCHED.url].includes(citationKey(href)!)]).toEqual([
      href,
      true,
    ]);
  }
});

test('the published report ends with the verified sources; its provenance counts the unverified ones', async () => {
  const { result } = outcome;
  expect(result.outcome).toBe('completed');
  expect(result.provenance.citations).toEqual(outcome.atReport.citations);
  const report = await fs.readFile(result.reportPath!, 'utf8');
  expect(bodyOf(report).trimEnd().split('\n').at(-1)).toMatch(/^2\. \[Fetched page\]/);
  expect(report).toContain('"unverified": 2');
});

test('npm run audit re-checks every cited source against the retrieval record: it passes on the report as published', () => {
  const run = outcome.honest;
  expect(run.err).toEqual([]);
  expect(run.code).toBe(0);
  expect(JSON.parse(run.out.at(-1)!)).toEqual({
    checked: true,
    retrievalRecord: outcome.result.provenance.citations!.retrievalRecord.id,
    cited: 2,
    unbacked: [],
  });
});

test('npm run audit names a source added to the published report, besides the broken content hash', () => {
  const run = outcome.edited;
  expect(run.code).toBe(3);
  expect(run.err).toContain(
    "citation NOT backed by the task's retrieval record: https://added.example/study",
  );
  expect(run.err.some((line) => line.startsWith('report NOT verified (mismatch)'))).toBe(true);
  expect(JSON.parse(run.out.at(-1)!)).toMatchObject({
    checked: true,
    unbacked: ['https://added.example/study'],
  });
});

// ---------------------------------------------------------------------------------------------------------
// The pass on its own: how an address compares, and the attacks

const TRUSTED = 'https://trusted.example/report';
const retrieval = (url: string, title = 'Trusted report'): Retrieval => ({
  kind: 'web_search',
  url,
  title,
  retrievedAt: '2026-12-01T10:00:00.000Z',
});
const retrievedOnly = (...list: Retrieval[]) => new Map(list.map((r) => [citationKey(r.url)!, r]));
const pass = (markdown: string, retrieved = retrievedOnly(retrieval(TRUSTED))) =>
  checkBody(markdown, new Map(), retrieved);

test('an address is the same source whatever the case of its scheme and host, a trailing slash or a fragment', () => {
  for (const same of [
    'HTTPS://Trusted.Example/report',
    'https://trusted.example/report/',
    'https://trusted.example:443/report#top',
  ])
    expect([same, citationKey(same)]).toEqual([same, citationKey(TRUSTED)]);
  const { body, tally } = pass('See [it](https://TRUSTED.example/report/#s2).');
  expect(body).toBe('See [it](https://TRUSTED.example/report/#s2).');
  expect([tally.verified.size, tally.unverified.size]).toEqual([1, 0]);
});

test.each([
  ['the case of its path', 'https://trusted.example/Report', 'https://trusted.example/Report'],
  ['a query string', 'https://trusted.example/report?id=2', 'https://trusted.example/report?id=2'],
  // The text shows the trusted name; the browser would go to evil.example.
  [
    'a user name before the host',
    'https://trusted.example@evil.example/report',
    'https://trusted.example@evil.example/report',
  ],
  // A Cyrillic "е": shown as the punycode host the browser would go to.
  ['an IDN homograph of its host', 'https://trustеd.example/report', 'https://xn--trustd-7of.example/report'],
])('an address that differs from a retrieved one by %s is unverified', (_what, cited, shownAs) => {
  const { body, tally } = pass(`A claim ([source](${cited})), and bare: ${cited}.`);
  expect([tally.verified.size, tally.unverified.size]).toEqual([0, 1]);
  expect(body).toBe(
    `A claim (source (unverified source, not retrieved by any tool: \`${shownAs}\`) ${MARK}), and bare: (unverified source, not retrieved by any tool: \`${shownAs}\`) ${MARK}.`,
  );
  expect(citedLinks(body)).toEqual([]);
});

test('every way Markdown makes a link is checked: inline, image, autolink, reference definition, bare www', () => {
  const { body, tally } = pass(
    [
      '![chart](https://img.example/c.png) and <https://auto.example/x>',
      '[ref][r] and www.bare.example/page',
      '[r]: https://def.example/y "title"',
      '`https://in-code.example/` is code, not a link',
      '```\nhttps://in-fence.example/\n```',
      `Kept: [the report](${TRUSTED}).`,
    ].join('\n'),
  );
  expect(citedLinks(body)).toEqual([TRUSTED]);
  expect([...tally.unverified.values()].sort()).toEqual([
    'https://auto.example/x',
    'https://def.example/y',
    'https://img.example/c.png',
    'www.bare.example/page',
  ]);
  expect(body).toContain('image: chart (unverified source');
  expect(body).toContain('\\[r\\]: (unverified source');
  expect(body).toContain('https://in-fence.example/');
});

test("a page's own References, or a title built to be a link, never add a verified source", () => {
  const page = retrieval('https://fetched.example/page', 'Real page](https://evil.example/) [x');
  const { text, tally } = checkedReportText(
    'Copied from the page:\n\n## References\n- [Evil](https://evil.example/)\n\nAnd [the page](https://fetched.example/page).',
    new Map(),
    retrievedOnly(page),
  );
  expect(text).toContain(
    `- Evil (unverified source, not retrieved by any tool: \`https://evil.example/\`) ${MARK}`,
  );
  expect([...tally.verified.values()]).toEqual([page]);
  // The page's title is text in its entry, not a link.
  expect(text).toContain('1. [Real page\\]\\(https://evil.example/\\) \\[x](<https://fetched.example/page>)');
  expect(new Set(citedLinks(text))).toEqual(new Set(['https://fetched.example/page']));
});

test('only results of a call to an offered tool, in the same response, are retrievals', () => {
  const blocks = [
    ...webSearchBlocks('srvtoolu_1', 'q', [{ url: 'https://a.example/', title: 'A' }]),
    ...webFetchBlocks('srvtoolu_2', { url: 'https://b.example/', title: 'B', text: 'page' }),
    // A result answering no call of this response.
    webSearchBlocks('srvtoolu_3', 'q', [{ url: 'https://c.example/', title: 'C' }])[1]!,
  ] as unknown as Parameters<typeof retrievalsIn>[0];
  const at = '2026-12-07T00:00:00.000Z';
  expect(retrievalsIn(blocks, toolsFor(['web_search', 'web_fetch']), at).map((r) => r.url)).toEqual([
    'https://a.example/',
    'https://b.example/',
  ]);
  expect(retrievalsIn(blocks, toolsFor(['web_search']), at).map((r) => r.url)).toEqual([
    'https://a.example/',
  ]);
  expect(retrievalsIn(blocks, [], at)).toEqual([]);
});

test('an MCP result is a retrieval its mcp:// address cites; the record keeps the server, tool, document and hash', () => {
  const r = mcpRetrieval({
    server: 'papers',
    tool: 'get_paper',
    document: 'doi:10.1000/182',
    title: 'A paper',
    text: 'the paper',
    retrievedAt: '2026-12-01T10:00:00.000Z',
  });
  expect(r).toMatchObject({ kind: 'mcp', url: mcpSourceUrl('papers', 'get_paper', 'doi:10.1000/182') });
  expect(r.contentHash).toBe(contentHashOf('the paper'));
  const { tally } = checkBody(
    `[A paper](${r.url}) and [another](mcp://papers/get_paper/doi%3A10.1000%2F183)`,
    new Map(),
    retrievedOnly(r),
  );
  expect([tally.verified.size, tally.unverified.size]).toEqual([1, 1]);
});

test('a stored artifact of the task is what the audit reads the record from', async () => {
  const index = JSON.parse(
    await getArtifact(openStores(options).artifacts, outcome.result.provenance.citations!.retrievalRecord.id),
  ) as { steps: { step: string; count: number }[] };
  expect(index.steps.map((s) => [s.step, s.count])).toEqual([['s1', 3]]);
});

test("a decomposed step's sources are checked against its child's retrieval records", async () => {
  // The lead decomposes its one step; the child's researcher searches and cites as above.
  let plans = 0;
  const decomposed = await startStandIn({
    respond: (req) =>
      req.toolName === 'submit_plan' && plans++ === 0
        ? { kind: 'tool', input: { ...PLAN, steps: [{ ...PLAN.steps[0]!, decompose: true }] } }
        : respond(req),
  });
  try {
    const result = await withWorker(
      ctx,
      createActivities({ ...(await tempActivityOptions(CONFIG)), baseURL: decomposed.url }),
      async (taskQueue) =>
        (
          await ctx.client.workflow.start(researchTask, {
            taskQueue,
            workflowId: uniqueId('citations-decomposed'),
            args: [{ question: 'What does the evidence say?', playbook: 'cited-decomposed' }],
          })
        ).result(),
    );
    expect(plans).toBe(2);
    // The child's search and fetch back the parent's report; what no tool returned stays unverified.
    expect(result.provenance.citations).toMatchObject({ verified: 2, unverified: 2, retrievals: 3 });
    const references = referencesOf(await fs.readFile(result.reportPath!, 'utf8'));
    expect(references).toContain(SEARCHED.url);
    expect(references).toContain(FETCHED.url);
    expect(references).not.toContain(NOT_RETRIEVED);
  } finally {
    await decomposed.close();
  }
}, 120_000);
