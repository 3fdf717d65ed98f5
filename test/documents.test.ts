/**
 * Documents given with a task (docs/tools.md, "Documents"): `npm start -- --doc <file>` as a real
 * process against the test server, its worker calling a stand-in this test runs (the real SDK), so
 * the requests the lead and the specialists send can be read; bad files refused before anything
 * starts; and the stand-in refusing the document shapes the Messages API refuses.
 */
import Anthropic from '@anthropic-ai/sdk';
import { WorkflowNotFoundError } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DOCUMENT_CONTEXT, pdfPages } from '../activities/documents';
import { ResearchTaskInputSchema, type ResearchTaskResult } from '../contract/messages';
import { startStandIn, type MessagesRequestBody, type StandIn } from '../standin/server';
import { historyText, uniqueId, useTestServer } from './helpers';

const ROOT = path.join(__dirname, '..');
const FIXTURES = path.join(__dirname, 'fixtures', 'documents');
/** Sentences only the documents hold: they must reach the model, and never workflow history. */
const MD_MARKER = 'Heat pumps in the Orkney trial used 2.9 units of heat per unit of power';
const PDF_MARKER = 'Brief PDF marker: the district grid limit is 40 kW';

/** A one-page PDF with one line of text, its cross-reference table at the right offsets. */
function tinyPdf(text: string): Buffer {
  const stream = `BT /F1 12 Tf 72 720 Td (${text}) Tj ET`;
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  let pdf = '%PDF-1.4\n';
  const offsets = objects.map((body, i) => {
    const at = pdf.length;
    pdf += `${i + 1} 0 obj\n${body}\nendobj\n`;
    return at;
  });
  const xref = pdf.length;
  pdf += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  pdf += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(pdf, 'latin1');
}

const ctx = useTestServer();
let dir: string;
let standIn: StandIn;
const requests: MessagesRequestBody[] = [];

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-documents-'));
  standIn = await startStandIn({
    respond: (req) => {
      requests.push(structuredClone(req.body));
      return undefined;
    },
  });
});

afterAll(async () => {
  await standIn?.close();
});

function npmStart(args: string[], taskQueue: string): Promise<{ code: number; out: string }> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: process.env.BATON_TEST_TEMPORAL_ADDRESS,
    BATON_TASK_QUEUE: taskQueue,
    BATON_REPORT_DIR: dir,
    BATON_ARTIFACT_DIR: path.join(dir, 'artifacts'),
    BATON_APPROVER: 'tester',
    BATON_TRACES_FILE: path.join(dir, 'traces.jsonl'),
    // The worker's model is this test's stand-in, so its requests can be read.
    ANTHROPIC_API_KEY: 'test-key-documents',
    ANTHROPIC_BASE_URL: standIn.url,
  };
  delete env.PAGER;
  return new Promise((resolve) => {
    execFile(
      path.join(ROOT, 'node_modules', '.bin', 'tsx'),
      [path.join(ROOT, 'cli', 'start.ts'), ...args],
      { cwd: ROOT, env, timeout: 90_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

const documentsOf = (body: MessagesRequestBody): Anthropic.DocumentBlockParam[] =>
  body.messages.flatMap((m) =>
    typeof m.content === 'string'
      ? []
      : (m.content.filter((b) => b.type === 'document') as unknown as Anthropic.DocumentBlockParam[]),
  );
const answerOf = (body: MessagesRequestBody): unknown => body.output_config?.format?.schema.title;

test('the committed PDF fixture and the built one are PDFs of one page', async () => {
  const committed = await fs.readFile(path.join(FIXTURES, 'brief.pdf'));
  expect(committed.subarray(0, 5).toString('latin1')).toBe('%PDF-');
  expect(pdfPages(committed)).toBe(1);
  expect(pdfPages(tinyPdf('x'))).toBe(1);
});

test('a task started with a Markdown and a PDF document: the lead and the specialists get them as document blocks, the report cites them by name and page, history holds references only', async () => {
  const pdf = path.join(dir, 'grid-brief.pdf');
  await fs.writeFile(pdf, tinyPdf(PDF_MARKER));
  const md = path.join(FIXTURES, 'orkney-notes.md');
  const workflowId = uniqueId('documents');
  requests.length = 0;
  const run = await npmStart(
    [
      '--auto-approve',
      '--id',
      workflowId,
      '--doc',
      md,
      '--doc',
      pdf,
      'Is a heat pump worth it on a small island grid?',
    ],
    uniqueId('documents-q'),
  );
  expect([run.code, run.out]).toEqual([0, expect.stringContaining('Report: ')]);

  // The lead planned with them, and every specialist worked with them: the same blocks each time.
  const plans = requests.filter((r) => answerOf(r) === 'submit_plan');
  const steps = requests.filter((r) => answerOf(r) === 'submit_findings');
  expect(plans.length).toBeGreaterThan(0);
  expect(steps.length).toBeGreaterThan(0);
  for (const r of [...plans, ...steps]) {
    const docs = documentsOf(r);
    expect(docs.map((d) => [d.title, d.source.type])).toEqual([
      ['orkney-notes.md', 'text'],
      ['grid-brief.pdf', 'base64'],
    ]);
    const [text, base64] = docs as [
      Anthropic.DocumentBlockParam & { source: Anthropic.PlainTextSource },
      Anthropic.DocumentBlockParam & { source: Anthropic.Base64PDFSource },
    ];
    expect(text.source).toMatchObject({ media_type: 'text/plain', data: expect.stringContaining(MD_MARKER) });
    expect(base64.source.media_type).toBe('application/pdf');
    expect(Buffer.from(base64.source.data, 'base64').toString('latin1')).toContain(PDF_MARKER);
    // Data, not instructions: said so in each block; citations off (structured output); cached after the last.
    for (const d of docs) {
      expect(d.context).toBe(DOCUMENT_CONTEXT);
      expect(d.citations).toBeUndefined();
    }
    expect(base64.cache_control).toEqual({ type: 'ephemeral' });
    // Never in the system prompt, never in Baton's own text.
    const system = JSON.stringify(r.system);
    const prompt = r.messages
      .map((m) =>
        typeof m.content === 'string'
          ? m.content
          : m.content
              .filter((b) => b.type === 'text')
              .map((b) => b.text)
              .join('\n'),
      )
      .join('\n');
    for (const marker of [MD_MARKER, PDF_MARKER]) {
      expect(system).not.toContain(marker);
      expect(prompt).not.toContain(marker);
    }
    expect(prompt).toContain('<document name="orkney-notes.md" type="text/markdown" />');
    expect(prompt).toContain('<document name="grid-brief.pdf" type="application/pdf" pages="1" />');
  }

  // The report cites each document by name and page, through the step's sources; the citation pass
  // finds each in the step's retrieval record (the documents were in its request): verified.
  const reportPath = /Report: (.*\.md)/.exec(run.out)![1]!;
  const report = await fs.readFile(reportPath, 'utf8');
  for (const name of ['orkney-notes.md', 'grid-brief.pdf']) {
    expect(report).toMatch(
      new RegExp(
        `Sources: .*\\[${name.replace('.', '\\.')}, p\\. 1\\]\\(<document://[0-9a-f]{64}/${name.replace('.', '\\.')}>\\)`,
      ),
    );
    expect(report).toMatch(
      new RegExp(
        `\\]\\(<document://[0-9a-f]{64}/${name.replace('.', '\\.')}>\\): document \`${name.replace('.', '\\.')}\` given with the task, retrieved `,
      ),
    );
  }
  expect(report).not.toMatch(/(orkney-notes\.md|grid-brief\.pdf)[^\n]*\\\[unverified/);

  // History: the references (name, type, hash, pages), never the documents' text.
  const handle = ctx.client.workflow.getHandle(workflowId);
  const result = (await handle.result()) as ResearchTaskResult;
  expect(result.outcome).toBe('completed');
  expect(result.provenance.citations?.unverifiedSources ?? []).not.toContain('orkney-notes.md, p. 1');
  expect(result.provenance.citations?.verified).toBeGreaterThanOrEqual(2);
  const history = await historyText(handle);
  // (Payloads are JSON inside JSON: their quotes are escaped.)
  expect(history).toMatch(
    /name\W+grid-brief\.pdf\W+mediaType\W+application\/pdf\W+ref\W+id\W+sha256:[0-9a-f]{64}/,
  );
  expect(history).toMatch(/name\W+orkney-notes\.md\W+mediaType\W+text\/markdown/);
  expect(history).not.toContain(MD_MARKER);
  expect(history).not.toContain(PDF_MARKER);
  expect(history).not.toContain(Buffer.from(tinyPdf(PDF_MARKER)).toString('base64').slice(0, 40));
  // The bytes are in the artifact store, by their hash.
  const stored = await fs.readdir(path.join(dir, 'artifacts', 'documents'), { recursive: true });
  expect(stored.length).toBeGreaterThanOrEqual(2);
}, 120_000);

describe('bad documents are refused before anything starts (exit 2, naming the file)', () => {
  const refused = async (files: string[], expected: RegExp) => {
    const workflowId = uniqueId('documents-bad');
    const args = files.flatMap((f) => ['--doc', f]);
    const run = await npmStart(['--auto-approve', '--id', workflowId, ...args, 'A question?'], uniqueId('q'));
    expect([run.code, run.out]).toEqual([2, expect.stringMatching(expected)]);
    expect(run.out).not.toContain('Temporal:');
    await expect(ctx.client.workflow.getHandle(workflowId).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
  };

  test('a missing file', async () => {
    const missing = path.join(dir, 'nowhere.md');
    await refused([missing], new RegExp(`document ${missing}: no such file`));
  }, 60_000);

  test('a binary file that is not a PDF', async () => {
    const png = path.join(dir, 'chart.pdf');
    await fs.writeFile(png, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0xfe]));
    await refused([png], /document .*chart\.pdf: neither a PDF \(no %PDF- at its start\) nor UTF-8 text/);
  }, 60_000);

  test('an oversize text file', async () => {
    const big = path.join(dir, 'big.txt');
    await fs.writeFile(big, 'a'.repeat(512 * 1024 + 1));
    await refused(
      [big],
      /document .*big\.txt: 513 KiB is over the limit of 512 KiB for a text or Markdown document/,
    );
  }, 60_000);

  test('too many documents', async () => {
    const files = await Promise.all(
      [1, 2, 3, 4, 5, 6].map(async (n) => {
        const f = path.join(dir, `note-${n}.txt`);
        await fs.writeFile(f, `Note ${n}.`);
        return f;
      }),
    );
    await refused(
      files,
      /6 documents \(note-1\.txt, .*note-6\.txt\) is over the limit of 5 documents for a task/,
    );
  }, 60_000);
});

test("the workflow's input refuses documents it cannot take, naming the field", () => {
  const doc = (name: string) => ({
    name,
    mediaType: 'text/plain',
    ref: { id: `sha256:${'a'.repeat(64)}`, bytes: 1 },
  });
  const problems = (documents: unknown[]) => {
    const parsed = ResearchTaskInputSchema.safeParse({ question: 'Q?', documents });
    return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  expect(problems([doc('a.txt')])).toEqual([]);
  expect(problems([1, 2, 3, 4, 5, 6].map((n) => doc(`${n}.txt`)))).toEqual([
    'documents: must be at most 5 documents',
  ]);
  expect(problems([doc('a.txt'), doc('a.txt')])).toEqual(['documents: must have distinct names']);
  expect(problems([doc('../etc/passwd')])[0]).toMatch(/^documents\.0\.name: must be a file name/);
  expect(problems([{ ...doc('a.txt'), mediaType: 'image/png' }])[0]).toMatch(/^documents\.0\.mediaType: /);
});

describe('the stand-in refuses the document shapes the Messages API refuses', () => {
  const client = () => new Anthropic({ apiKey: 'k', baseURL: standIn.url, maxRetries: 0 });
  const text = (citations: boolean): Anthropic.DocumentBlockParam => ({
    type: 'document',
    source: { type: 'text', media_type: 'text/plain', data: 'Some text.' },
    title: 'a.txt',
    ...(citations ? { citations: { enabled: true } } : {}),
  });
  const ask = (content: Anthropic.ContentBlockParam[], structured: boolean) =>
    client().messages.create({
      model: 'claude-sonnet-5-5',
      max_tokens: 100,
      messages: [{ role: 'user', content: [...content, { type: 'text', text: 'Q?' }] }],
      ...(structured
        ? { output_config: { format: { type: 'json_schema', schema: { type: 'object', title: 'x' } } } }
        : {}),
    });
  const refusedWith = async (call: Promise<unknown>, message: RegExp) => {
    const err = await call.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    expect((err as Error).message).toMatch(message);
  };

  test('citations with structured output', async () => {
    await refusedWith(ask([text(true)], true), /Citations are not supported with structured outputs/);
    // Without structured output, or without citations, the same document is taken.
    await expect(ask([text(true)], false)).resolves.toMatchObject({ type: 'message' });
    await expect(ask([text(false)], true)).resolves.toMatchObject({ type: 'message' });
  });

  test('citations on some documents only', async () => {
    await refusedWith(ask([text(true), text(false)], false), /enabled on all or none of the documents/);
  });

  test('a base64 source that is not a PDF, or is encrypted, or of another media type', async () => {
    const pdf = (data: Buffer, mediaType = 'application/pdf') =>
      ({
        type: 'document',
        source: { type: 'base64', media_type: mediaType, data: data.toString('base64') },
      }) as Anthropic.DocumentBlockParam;
    await refusedWith(ask([pdf(Buffer.from('not a pdf'))], true), /The PDF specified was not valid/);
    await refusedWith(
      ask([pdf(Buffer.from('%PDF-1.4\ntrailer << /Encrypt 9 0 R >>'))], true),
      /password-protected or encrypted/,
    );
    await refusedWith(
      ask([pdf(tinyPdf('x'), 'image/png')], true),
      /messages\.0\.content\.0\.source\.media_type: Input should be 'application\/pdf'/,
    );
    await expect(ask([pdf(tinyPdf('x'))], true)).resolves.toMatchObject({ type: 'message' });
  });
});
