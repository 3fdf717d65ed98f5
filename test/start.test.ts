/**
 * `npm start`: its arguments, its business ids, and whole runs as a real process against the test
 * server (it uses a server that answers at TEMPORAL_ADDRESS, and the stand-in when no key is set).
 */
import { execFile, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseStartArgs } from '../cli/start';
import { workflowIdFor } from '../client';
import { approve } from '../contract/messages';
import { OFFLINE_STAND_IN_KEY, startLocalEnvironment } from '../local/environment';
import { freePort } from '../local/temporal';
import { researchTask } from '../workflows';
import { historyText, pollUntil, tempActivityOptions, uniqueId, useTestServer } from './helpers';

const ROOT = path.join(__dirname, '..');

describe('parseStartArgs', () => {
  test('reads the question and options', () => {
    expect(
      parseStartArgs([
        '--auto-approve',
        '--playbook',
        'fact-sheet',
        '--id',
        'x-1',
        '--attach',
        'Why',
        'is',
        'it?',
      ]),
    ).toEqual({
      question: 'Why is it?',
      autoApprove: true,
      full: false,
      attach: true,
      rerun: false,
      playbook: 'fact-sheet',
      workflowId: 'x-1',
    });
    expect(parseStartArgs(['A question'])).toEqual({
      question: 'A question',
      autoApprove: false,
      full: false,
      attach: false,
      rerun: false,
      playbook: 'research-brief',
    });
    expect(parseStartArgs(['--rerun', 'Q'])).toMatchObject({ rerun: true, attach: false });
    expect(parseStartArgs(['--full', 'Q'])).toMatchObject({ full: true, autoApprove: false });
  });

  test.each([
    ['unknown option --bogus', ['--bogus', 'Q']],
    ['--playbook needs a value', ['--playbook']],
    ['--id needs a value', ['--id', '--auto-approve', 'Q']],
    ['--attach and --rerun do not go together', ['--attach', '--rerun', 'Q']],
    ['a question is required', ['--auto-approve']],
    ['a question is required', ['  ']],
    ['question: must be at most 4000 characters', ['x'.repeat(4001)]],
    ['playbook: must be a playbook id such as "research-brief"', ['--playbook', 'Bad Id', 'Q']],
  ])('refuses with "%s"', (message, argv) => {
    expect(() => parseStartArgs(argv)).toThrow(message);
  });
});

test('workflowIdFor makes a readable business id from the question, the date and a hash of the question', () => {
  const date = new Date('2026-11-24T10:00:00Z');
  expect(workflowIdFor('How do solid-state batteries compare with lithium-ion for EVs?', date)).toMatch(
    /^research-how-do-solid-state-batteries-compare-2026-11-24-[0-9a-f]{8}$/,
  );
  expect(workflowIdFor('???', date)).toMatch(/^research-task-2026-11-24-[0-9a-f]{8}$/);
  // Questions the slug cannot tell apart: other scripts, punctuation, case.
  const apart = [
    '固态电池的能量密度是多少？',
    '锂离子电池的循环寿命是多少？',
    'a/b?',
    'a_b?',
    'A/B?',
    '???',
    '!!!',
  ].map((q) => workflowIdFor(q, date));
  expect(new Set(apart).size).toBe(apart.length);
  // The same question (up to surrounding space and Unicode normalisation) keeps its id that day.
  expect(workflowIdFor('  Caf\u00e9?  ', date)).toBe(workflowIdFor('Cafe\u0301?', date));
});

test('the same question about other documents gets another id; without documents the id is unchanged', () => {
  const date = new Date('2026-11-24T10:00:00Z');
  const doc = (id: string) => ({ ref: { id, bytes: 1 } });
  const question = 'What does the grid brief say about storage?';
  const ids = [
    [],
    [doc('a'.repeat(64))],
    [doc('b'.repeat(64))],
    [doc('a'.repeat(64)), doc('b'.repeat(64))],
  ].map((documents) => workflowIdFor(question, date, documents));
  expect(new Set(ids).size).toBe(ids.length);
  expect(ids[0]).toBe(workflowIdFor(question, date));
  expect(workflowIdFor(question, date, [doc('a'.repeat(64))])).toBe(ids[1]);
});

describe('npm start as a process', () => {
  const ctx = useTestServer();
  let reportDir: string;
  beforeAll(async () => {
    reportDir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-start-'));
  });

  function startEnv(taskQueue: string): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: process.env.BATON_TEST_TEMPORAL_ADDRESS,
      BATON_TASK_QUEUE: taskQueue,
      BATON_REPORT_DIR: reportDir,
      BATON_ARTIFACT_DIR: path.join(reportDir, 'artifacts'),
      BATON_APPROVER: 'tester',
      BATON_TRACES_FILE: path.join(reportDir, 'traces.jsonl'),
    };
    delete env.ANTHROPIC_API_KEY;
    delete env.ANTHROPIC_BASE_URL;
    delete env.PAGER;
    return env;
  }

  function npmStart(args: string[], taskQueue: string): Promise<{ code: number; out: string }> {
    const env = startEnv(taskQueue);
    return new Promise((resolve) => {
      execFile(
        path.join(ROOT, 'node_modules', '.bin', 'tsx'),
        [path.join(ROOT, 'cli', 'start.ts'), ...args],
        { cwd: ROOT, env, timeout: 90_000 },
        (err, stdout, stderr) =>
          resolve({ code: err ? Number(err.code ?? 1) : 0, out: `${stdout}${stderr}` }),
      );
    });
  }

  test('runs a task end to end with --auto-approve on the stand-in and prints the report path', async () => {
    const workflowId = uniqueId('start');
    const run = await npmStart(
      ['--auto-approve', '--playbook', 'fact-sheet', '--id', workflowId, 'What is a solid-state battery?'],
      uniqueId('start-q'),
    );
    expect([run.code, run.out]).toEqual([0, expect.stringContaining('using the OFFLINE STAND-IN model')]);
    expect(run.out).toContain('Temporal: using the server at');
    expect(run.out).toMatch(/step gather \[researcher\] done/);
    const reportPath = /Report: (.*\.md)/.exec(run.out)?.[1];
    expect(reportPath?.startsWith(reportDir)).toBe(true);
    expect(await fs.readFile(reportPath!, 'utf8')).toMatch(/^> \*\*AI-generated content\.\*\*/);
    // The key npm start gives the worker for the stand-in stays in the worker: not in history.
    const history = await historyText(ctx.client.workflow.getHandle(workflowId));
    expect(history).toContain('What is a solid-state battery?');
    expect(history).not.toContain(OFFLINE_STAND_IN_KEY);
    // The Web UI's summary of the task is its question.
    const described = await ctx.client.workflow.getHandle(workflowId).describe();
    expect(await described.staticSummary()).toBe('What is a solid-state battery?');
    expect(await described.staticDetails()).toContain('**Playbook:** fact-sheet');
  }, 120_000);

  test("at each gate, without a terminal to ask: the draft at a glance (not all of it) and how to decide; a running step's live words as they come", async () => {
    const workflowId = uniqueId('start-gates');
    // The stand-in streams each reply over 1.5 s: a step's call is seen in flight.
    const env = { ...startEnv(uniqueId('start-q')), BATON_STANDIN_LATENCY_MS: '1500' };
    const child = spawn(
      path.join(ROOT, 'node_modules', '.bin', 'tsx'),
      [path.join(ROOT, 'cli', 'start.ts'), '--id', workflowId, 'Is a heat pump worth it in a flat?'],
      { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
    const printed = (text: string) =>
      pollUntil(
        () => Promise.resolve(out),
        (o) => o.includes(text),
        `npm start to print "${text}"`,
        60_000,
      );
    try {
      const handle = ctx.client.workflow.getHandle(workflowId);
      await printed('Waiting at the plan gate. Decide from another terminal:');
      expect(out).toContain('Stand-in latency: 1500 ms a reply (BATON_STANDIN_LATENCY_MS)');
      expect(out).toContain(`npm run baton -- approve ${workflowId}`);
      await handle.signal(approve, { by: 'tester', gate: 'plan' });

      // Without a terminal, a running step's words as one plain line each time they change, between
      // the step starting and its summary.
      await printed('  words s');
      const words = /^ {2}words (s\d+) \[(\w+)\]: (.+)$/m.exec(out);
      expect(words).not.toBeNull();
      const [wordsLine, stepId, agent, text] = words!;
      expect(text).not.toMatch(/[{}"]/);
      expect(wordsLine.length).toBeLessThanOrEqual(120);
      expect(out.indexOf(`step ${stepId} [${agent}] running`)).toBeLessThan(out.indexOf(wordsLine));

      await printed('Waiting at the report gate. Decide from another terminal:');
      const atReport = out.slice(out.indexOf('waiting at the report gate'));
      expect(atReport).toMatch(/^ {2}Draft report: Stand-in report: Is a heat pump worth it in a flat\?$/m);
      expect(atReport).toMatch(/^ {2}[\d,]+ words, [\d,]+ lines, [\d.]+ kB$/m);
      expect(atReport).toMatch(
        /^ {2}Summary: \[offline stand-in model\] Placeholder synthesis of \d+ step result/m,
      );
      expect(atReport).toContain(
        `  Read it all: npm run baton -- show --full ${workflowId}  (set PAGER to page it)`,
      );
      // The summary view, not the draft: none of its body, and no wall of text between the rules
      // (the lead's live words, one clipped line, show the report's Markdown as it is written).
      const view = out.replace(/^ {2}words .*$/gm, '');
      expect(view).not.toContain('## Findings by step');
      expect(view).not.toContain('----- draft report -----');
      await handle.signal(approve, { by: 'tester', gate: 'report' });
      expect(await exited).toBe(0);
      expect(out).toMatch(/Report: .*\.md/);
    } finally {
      child.kill();
    }
  }, 120_000);

  test('refuses a workflow id that is running or completed; --attach watches it, --rerun starts a new run', async () => {
    const taskQueue = uniqueId('start-q');
    const workflowId = uniqueId('running');
    // Started with no worker on its queue: it stays running until npm start brings one.
    await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId,
      args: [{ question: 'Already running?', playbook: 'fact-sheet' }],
    });
    const refused = await npmStart(
      ['--id', workflowId, '--playbook', 'fact-sheet', 'Already running?'],
      taskQueue,
    );
    expect(refused.code).toBe(1);
    expect(refused.out).toContain(
      `a task with id "${workflowId}" is already running; pass --attach to watch it`,
    );

    const attached = await npmStart(
      ['--attach', '--auto-approve', '--id', workflowId, 'Already running?'],
      taskQueue,
    );
    expect([attached.code, attached.out]).toEqual([0, expect.stringContaining('attaching to it')]);
    expect(attached.out).toMatch(/Report: .*\.md/);
    const first = await ctx.client.workflow.getHandle(workflowId).describe();

    // Completed: its id is not taken again unless asked for, and then as a new run.
    const again = ['--auto-approve', '--id', workflowId, '--playbook', 'fact-sheet', 'Already running?'];
    const closed = await npmStart(again, taskQueue);
    expect(closed.code).toBe(1);
    expect(closed.out).toContain(
      `a task with id "${workflowId}" already ran and completed; its report and record stay as they are. Pass --rerun`,
    );
    const rerun = await npmStart(['--rerun', ...again], taskQueue);
    expect([rerun.code, rerun.out]).toEqual([0, expect.stringMatching(/Report: .*\.md/)]);
    const second = await ctx.client.workflow.getHandle(workflowId).describe();
    expect(second.runId).not.toBe(first.runId);
    expect(second.status.name).toBe('COMPLETED');
  }, 300_000);
});

test('the dev server npm start starts writes its output to a log file, named in one line, not to the terminal', async () => {
  const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-local-'));
  const lines: string[] = [];
  const local = await startLocalEnvironment({
    temporal: {
      address: `127.0.0.1:${await freePort()}`,
      namespace: 'default',
      taskQueue: 'baton',
      tls: false,
    },
    activityOptions: await tempActivityOptions(),
    addressGiven: false,
    log: (line) => lines.push(line),
    stateDir,
  });
  try {
    const logFile = path.join(stateDir, 'dev-server.log');
    expect(lines.filter((l) => l.includes('dev-server.log'))).toEqual([
      `Temporal dev server output: ${logFile}`,
    ]);
    // The server's own banner is in the file (the pinned CLI and the server it embeds).
    const log = await pollUntil(
      () => fs.readFile(logFile, 'utf8'),
      (text) => text.includes('Temporal Server:'),
      'the dev server banner in its log file',
    );
    expect(log).toMatch(/Temporal CLI \S+ \(Server \S+, UI \S+\)/);
    await expect(fs.stat(path.join(stateDir, 'dev-server.sqlite'))).resolves.toBeDefined();
  } finally {
    await local.close();
  }
}, 60_000);
