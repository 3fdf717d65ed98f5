/**
 * The evaluation harness: every question in every mode, each answer judged, the results written.
 *
 * Design notes:
 *   1. Runs are sequential by default (`concurrency` 1), so one run's wall time is not inflated by
 *      another's; the modes of one question always run one after the other.
 *   2. Nothing a run does can crash the harness: a failed mode or a malformed judgement is recorded
 *      as an error in its row, and the run goes on.
 *   3. Baton's tasks run on their own task queue (`baton-eval-<random>`) with a worker the harness
 *      starts, so workers of other Baton processes on the same server never pick them up.
 *   4. Without an API key the stand-in answers everything, the judge included; the results are then
 *      marked offline, and so are they whenever an answer carries the stand-in's label.
 *   5. The baton-rounds mode runs the chosen playbook with research rounds, generated into a copy
 *      of the config folder (rounds-playbook.ts); both Baton modes then run on that copy.
 *   6. Citation validity is counted, not judged (citations.ts): no model decides it.
 */
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, type WorkerOptions } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../activities/config';
import { configNotAllowed, PROJECT_ROOT, type ActivityOptions } from '../activities/options';
import { priceOf } from '../contract/usage';
import type { SnapshotAgent } from '../config/schema';
import { startDevServer, temporalAnswers, type DevServer } from '../local/temporal';
import { STAND_IN_LABEL, STAND_IN_NOTICE } from '../standin/replies';
import { startStandIn } from '../standin/server';
import { connectionOptions, type TemporalOptions } from '../workers/options';
import { ensureSearchAttributes } from '../workers/search-attributes';
import { createBatonWorker } from '../workers/worker';
import { SEARCH_ATTRIBUTES } from '../contract/messages';
import type { EvalArgs } from './args';
import { runBaton, type BatonRunContext } from './baton';
import { renderChartSvg } from './chart';
import { citationShare } from './citations';
import { describe, totalTokens, type ModelEndpoint, type RetryOptions } from './model';
import {
  isBatonMode,
  MODE_LABELS,
  runOneCall,
  runSingleAgent,
  singleAgentFrom,
  type Mode,
  type ModeOutcome,
} from './modes';
import { loadQuestionFile, type EvalQuestion } from './questions';
import {
  OFFLINE_WARNING,
  renderMarkdown,
  summarize,
  fmtDuration,
  fmtShare,
  fmtTokens,
  type EvalResults,
  type ModeResult,
  type QuestionResult,
} from './report';
import { writeRoundsConfig, type RoundsPlaybook } from './rounds-playbook';
import { CRITERIA } from './rubric';
import { judgeAgentFrom, judgeInto } from './judge';
import { mapLimit } from '../lib/map-limit';
import { openStores } from '../activities/store';

/** The key sent to the offline stand-in (which accepts any); the same one `npm start` uses. */
export const OFFLINE_STAND_IN_KEY = 'offline-stand-in';

export interface EvalOptions extends Omit<EvalArgs, 'outDir'> {
  /** Where to write; default `eval/results/<date>` (suffixed `-2`, `-3`… when it already holds results). */
  outDir?: string;
  /** Anthropic API key. Absent: the harness starts the offline stand-in and says the scores are meaningless. */
  apiKey?: string;
  /** Messages API base URL (gateways); ignored offline. */
  baseURL?: string;
  /** Baton's config folder. */
  configDir: string;
  /** Config digests the worker accepts (`BATON_CONFIG_ALLOWLIST`); default any. */
  configAllowlist?: string[];
  /** An existing Temporal server (`TEMPORAL_ADDRESS`…). Absent: the harness starts a dev server. */
  temporal?: Omit<TemporalOptions, 'taskQueue'>;
  /** A prebuilt workflow bundle (tests); default: bundle `workflows/` when the worker starts. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Payload codec for worker and client alike; default none (or the worker's default from the environment). */
  dataConverter?: DataConverter;
  /** Model-call retries; default 3 attempts with 2 s doubling backoff. */
  retry?: Pick<RetryOptions, 'attempts' | 'backoffMs'>;
  /** Progress lines; default silent. */
  log?: (line: string) => void;
  /** Aborting stops after the runs in flight (Baton tasks are cancelled) and still writes what was done. */
  signal?: AbortSignal;
  now?: () => Date;
}

export interface EvalRun {
  results: EvalResults;
  dir: string;
  files: { json: string; markdown: string; chart: string };
}

/** `eval/results/<date>`, or `<date>-2`, `-3`… when that folder already holds a results.json. */
export async function defaultOutDir(
  now: Date,
  root = path.join(PROJECT_ROOT, 'eval', 'results'),
): Promise<string> {
  const date = now.toISOString().slice(0, 10);
  for (let n = 1; ; n++) {
    const dir = path.join(root, n === 1 ? date : `${date}-${n}`);
    try {
      await fs.access(path.join(dir, 'results.json'));
    } catch {
      return dir;
    }
  }
}

const isStandInText = (text: string): boolean =>
  text.includes(STAND_IN_LABEL) || text.includes(STAND_IN_NOTICE);

/**
 * Runs the evaluation and writes `results.json`, `results.md` and `chart.svg`.
 * @throws only for bad setup (question file, config, playbook, Temporal unreachable); runs never throw.
 */
export async function runEval(options: EvalOptions): Promise<EvalRun> {
  const log = options.log ?? (() => undefined);
  const now = options.now ?? (() => new Date());
  const startedAt = now();
  const file = await loadQuestionFile(options.questionsFile);
  const questions = file.questions.slice(0, options.limit ?? file.questions.length);
  const config = await loadConfig(options.configDir);
  // With the price of their models, when config lists one, so the baselines' costs are estimated as Baton's are.
  const priced = (agent: SnapshotAgent): SnapshotAgent => {
    const price = priceOf(config.agents.prices, agent.model);
    const copy: SnapshotAgent = { ...agent };
    delete copy.price; // a judge built from the lead must not keep the lead's price
    return price ? { ...copy, price } : copy;
  };
  const lead = priced(config.agents.agents.find((a) => a.id === config.agents.lead)!);
  const specialist = singleAgentFrom(config.agents.agents, lead.id);
  if (!specialist) throw new Error('config has no specialist agent for the single-agent mode');
  const single = priced(specialist);
  const modes = options.modes;
  const batonModes = modes.some(isBatonMode);
  if (batonModes && !config.playbooks[options.playbook]) {
    throw new Error(
      `unknown playbook "${options.playbook}"; available: ${Object.keys(config.playbooks).join(', ')}`,
    );
  }
  const judgeModel = options.judgeModel ?? lead.model;
  const judge = priced(judgeAgentFrom(lead, judgeModel));
  const dir = options.outDir ?? (await defaultOutDir(startedAt));
  await fs.mkdir(dir, { recursive: true });
  // The baton-rounds mode's playbook, in a copy of the config folder that both Baton modes run on.
  let rounds: RoundsPlaybook | undefined;
  if (modes.includes('baton-rounds')) {
    const copy = await writeRoundsConfig(
      options.configDir,
      config,
      options.playbook,
      options.rounds,
      path.join(dir, 'baton', 'config'),
    );
    rounds = copy.playbook;
    const refused = configNotAllowed(rounds.digest, options.configAllowlist);
    if (refused)
      throw new Error(
        `the baton-rounds mode runs the generated config folder ${rounds.configDir}: ${refused}; or leave baton-rounds out of --modes`,
      );
    if ((config.playbooks[options.playbook]!.rounds?.max ?? 0) > 0)
      log(
        `Note: playbook ${options.playbook} has research rounds of its own, so the baton mode runs with rounds too.`,
      );
  }

  const stop = new AbortController();
  const onAbort = (): void => stop.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const retry: RetryOptions = { ...options.retry, signal: stop.signal };
  const cleanups: (() => Promise<void>)[] = [];
  let offline = false;
  let temporalAddress: string | undefined;
  try {
    // ---- The model: Anthropic, or the stand-in.
    let endpoint: ModelEndpoint;
    if (options.apiKey) {
      endpoint = { apiKey: options.apiKey, ...(options.baseURL ? { baseURL: options.baseURL } : {}) };
      log(`Model: Anthropic API${options.baseURL ? ` at ${options.baseURL}` : ''}`);
    } else {
      const standIn = await startStandIn();
      cleanups.unshift(() => standIn.close());
      endpoint = { apiKey: OFFLINE_STAND_IN_KEY, baseURL: standIn.url };
      offline = true;
      log(`Model: no ANTHROPIC_API_KEY, so the OFFLINE STAND-IN model at ${standIn.url} answers and judges.`);
      log(`WARNING: ${OFFLINE_WARNING}`);
    }

    // ---- Temporal and a worker, for the Baton modes only.
    let baton: BatonRunContext | undefined;
    if (batonModes) {
      let temporal = options.temporal;
      if (temporal) {
        if (!temporal.tls && !(await temporalAnswers(temporal.address))) {
          throw new Error(`no Temporal server answers at ${temporal.address} (TEMPORAL_ADDRESS)`);
        }
        log(`Temporal: using the server at ${temporal.address}`);
      } else {
        log('Temporal: starting a dev server for this run');
        const server: DevServer = await startDevServer({
          searchAttributes: [...SEARCH_ATTRIBUTES],
          log: (line) => log(`  ${line}`),
        });
        cleanups.unshift(() => server.stop());
        temporal = { address: server.address, namespace: server.namespace, tls: false };
      }
      temporalAddress = temporal.address;
      const taskQueue = `baton-eval-${randomUUID().slice(0, 8)}`;
      const activityOptions: ActivityOptions = {
        apiKey: endpoint.apiKey,
        baseURL: endpoint.baseURL,
        configDir: rounds?.configDir ?? options.configDir,
        artifactDir: path.join(dir, 'baton', 'artifacts'),
        reportDir: path.join(dir, 'baton', 'reports'),
        searchAttributes: true,
        ...(options.configAllowlist ? { configAllowlist: options.configAllowlist } : {}),
      };
      const connection = await Connection.connect(connectionOptions({ ...temporal, taskQueue }));
      cleanups.unshift(() => connection.close());
      await ensureSearchAttributes(connection, temporal.namespace);
      const nativeConnection = await NativeConnection.connect(connectionOptions({ ...temporal, taskQueue }));
      cleanups.unshift(() => nativeConnection.close());
      const worker = await createBatonWorker({
        connection: nativeConnection,
        namespace: temporal.namespace,
        taskQueue,
        activityOptions,
        ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : {}),
        ...(options.dataConverter ? { dataConverter: options.dataConverter } : {}),
      });
      const running = worker.run().catch((err: unknown) => {
        // A worker that dies takes the remaining Baton runs with it: they stop at once, saying why.
        stop.abort(new Error(`the worker stopped: ${describe(err)}`));
      });
      cleanups.unshift(async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running;
      });
      baton = {
        client: new Client({
          connection,
          namespace: temporal.namespace,
          ...(options.dataConverter ? { dataConverter: options.dataConverter } : {}),
        }),
        taskQueue,
        playbook: options.playbook,
        artifacts: openStores(activityOptions).artifacts,
        timeoutMs: options.taskTimeoutMs,
        signal: stop.signal,
      };
      log(
        `Baton: worker on task queue ${taskQueue}, playbook ${options.playbook}${rounds ? `; with rounds: ${rounds.id} (at most ${rounds.max}, no approval) in ${rounds.configDir}` : ''}`,
      );
    }

    // ---- The runs.
    const runId = `${startedAt.toISOString().slice(0, 19).replace(/\D/g, '')}-${randomUUID().slice(0, 4)}`;
    const runMode = async (q: EvalQuestion, mode: Mode): Promise<ModeOutcome> => {
      switch (mode) {
        case 'one-call':
          return runOneCall(q.question, lead, endpoint, retry);
        case 'single-agent':
          return runSingleAgent(q.question, single, endpoint, retry);
        case 'baton':
          return runBaton(baton!, q.question, `eval-${runId}-${q.id}`);
        case 'baton-rounds':
          return runBaton({ ...baton!, playbook: rounds!.id }, q.question, `eval-${runId}-rounds-${q.id}`);
      }
    };
    const results = await mapLimit(questions, options.concurrency, async (q, qi): Promise<QuestionResult> => {
      const tag = `[${qi + 1}/${questions.length} ${q.id}]`;
      log(`${tag} (${q.kind}) ${q.question}`);
      const rows: ModeResult[] = [];
      for (const mode of modes) {
        if (stop.signal.aborted) {
          rows.push({
            mode,
            ok: false,
            error: 'not run: interrupted',
            wallMs: 0,
            usage: { inputTokens: 0, outputTokens: 0 },
            totalTokens: 0,
            models: [],
          });
          continue;
        }
        const t0 = performance.now();
        let outcome: ModeOutcome;
        try {
          outcome = await runMode(q, mode);
        } catch (err) {
          // Modes return their errors; this is a last line of defence, so one bug never ends the run.
          outcome = {
            ok: false,
            error: describe(err),
            usage: { inputTokens: 0, outputTokens: 0 },
            models: [],
          };
        }
        const wallMs = Math.round(performance.now() - t0);
        const row: ModeResult = {
          mode,
          ok: outcome.ok,
          wallMs,
          usage: outcome.usage,
          totalTokens: totalTokens(outcome.usage),
          models: outcome.models,
          ...(outcome.modelCalls !== undefined ? { modelCalls: outcome.modelCalls } : {}),
          ...(outcome.workflowId ? { workflowId: outcome.workflowId } : {}),
          ...(outcome.reportPath ? { reportPath: outcome.reportPath } : {}),
          ...(outcome.steps !== undefined ? { steps: outcome.steps } : {}),
          ...(outcome.roundsUsed !== undefined ? { roundsUsed: outcome.roundsUsed } : {}),
          ...(outcome.ok
            ? { answer: outcome.answer, ...(outcome.citations ? { citations: outcome.citations } : {}) }
            : { error: outcome.error }),
        };
        if (outcome.ok) {
          if (isStandInText(outcome.answer.text)) offline = true;
          await judgeInto(row, q, outcome.answer, judge, endpoint, retry);
        }
        rows.push(row);
        const scores = row.judgement
          ? `score ${row.meanScore!.toFixed(1)} (${CRITERIA.map((c) => row.judgement![c].score).join('/')})`
          : row.ok
            ? `not judged: ${row.judge?.error ?? '?'}`
            : `FAILED: ${row.error}`;
        const cited = row.citations
          ? `; cited & retrieved ${fmtShare(citationShare(row.citations))} (${row.citations.backed}/${row.citations.cited})`
          : '';
        const used = row.roundsUsed ? `; ${row.roundsUsed} research round(s)` : '';
        log(
          `${tag} ${MODE_LABELS[mode]}: ${fmtTokens(row.totalTokens)} tokens, ${fmtDuration(wallMs)}; ${scores}${cited}${used}`,
        );
      }
      return { id: q.id, kind: q.kind, question: q.question, modes: rows };
    });

    // ---- The record.
    const finishedAt = now();
    const evalResults: EvalResults = {
      kind: 'baton-eval',
      version: 2,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      offline,
      ...(offline ? { warning: OFFLINE_WARNING } : {}),
      settings: {
        questionsFile: path.relative(PROJECT_ROOT, options.questionsFile).startsWith('..')
          ? options.questionsFile
          : path.relative(PROJECT_ROOT, options.questionsFile),
        modes: [...modes],
        playbook: options.playbook,
        ...(rounds
          ? {
              rounds: {
                playbook: rounds.id,
                max: rounds.max,
                approval: rounds.approval,
                configDir: path.relative(dir, rounds.configDir),
                configDigest: rounds.digest,
              },
            }
          : {}),
        judgeModel,
        oneCallModel: lead.model,
        singleAgent: { agent: single.id, model: single.model },
        model: offline
          ? 'offline stand-in'
          : `Anthropic API${options.baseURL ? ` at ${options.baseURL}` : ''}`,
        ...(temporalAddress ? { temporal: temporalAddress } : {}),
      },
      questions: results,
      summary: summarize(results, modes),
    };
    const files = {
      json: path.join(dir, 'results.json'),
      markdown: path.join(dir, 'results.md'),
      chart: path.join(dir, 'chart.svg'),
    };
    await fs.writeFile(files.json, `${JSON.stringify(evalResults, null, 2)}\n`, 'utf8');
    await fs.writeFile(files.markdown, renderMarkdown(evalResults), 'utf8');
    await fs.writeFile(files.chart, renderChartSvg(evalResults.summary, { offline }), 'utf8');
    return { results: evalResults, dir, files };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  }
}
