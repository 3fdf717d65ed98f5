/**
 * The measurements, one function per section of bench/README.md. Each returns plain data (kept in
 * bench/results.json); report.ts turns it into tables.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createActivities } from '../activities';
import { type StepInput, type StepResult } from '../contract/activities';
import { mapLimit } from '../lib/map-limit';
import type { DevServer } from '../local/temporal';
import type { StandIn } from '../standin/server';
import type { WorkerProcess, WorkerRuntime } from './processes';
import { DEFAULT_MAX_CACHED_WORKFLOWS } from '../workers/options';
import { researchTask } from '../workflows';
import {
  activitiesOf,
  traceTree,
  chainCycles,
  runBatch,
  traceHistory,
  withTimeout,
  type Batch,
  type HistoryTrace,
} from './baton';
import { langGraphTasks, promiseAllTask } from './baselines';
import { cpuMs, type Rig, type WorkerVariant } from './rig';
import { median, percentile, summarize, type Summary } from './stats';
import {
  BENCH_CONFIG,
  callStep,
  chainPlan,
  fanOutPlan,
  GATED_PLAYBOOK,
  playbookFor,
  QUESTION,
  sdkClient,
  STANDARD_PLAYBOOK,
  writeConfigDir,
  type StepOutput,
  type Workload,
} from './workload';

/** One fan-out: N independent steps under a playbook's maxParallel. */
export interface FanOutShape {
  steps: number;
  maxParallel: number;
}

/** How much work each section does; `--quick` shrinks everything. */
export interface Settings {
  quick: boolean;
  /** Simulated model latency for fan-out, throughput and the side-by-side runs. */
  latencyMs: number;
  /** Sequential calls measured for the per-call overhead (in process and through Temporal). */
  chainSteps: number;
  /** Chain length of each tuning variant (a shorter one without the sticky cache: it replays every step). */
  variantChainSteps: number;
  noCacheChainSteps: number;
  /** Tasks started one after another, with and without eager workflow start. */
  eagerTasks: number;
  /** Fan-out widths, each with the playbook's maxParallel. */
  fanOut: FanOutShape[];
  /** Runs per fan-out width and for single-task throughput; the median is reported. */
  repeats: number;
  throughputTasks: number[];
  /** Tasks started at once on the compiled worker's throughput run at {@link slowLatencyMs}. */
  slowTasks: number;
  slowLatencyMs: number;
  /** Tasks started at once for each plan of the CPU profile (bench/profile.ts). */
  profileTasks: number;
  /** Tasks left waiting at a plan gate on the compiled worker, and on the tsx worker. */
  gatedTasks: number;
  gatedTasksTsx: number;
  /** Model latency of the activity-slot comparison (a real call takes seconds to minutes). */
  slotsLatencyMs: number;
  /** Try the tuning variants that only matter at scale (wide fan-out, many tasks); off with --quick. */
  scaleVariants: boolean;
  /** Past this, the remaining runs are skipped (and listed as capped). */
  budgetMs: number;
}

export function settingsFor(quick: boolean, latencyMs: number): Settings {
  return quick
    ? {
        quick,
        latencyMs,
        chainSteps: 30,
        variantChainSteps: 20,
        noCacheChainSteps: 10,
        eagerTasks: 5,
        fanOut: [1, 8, 32].map((n) => ({ steps: n, maxParallel: n })),
        repeats: 1,
        throughputTasks: [1, 10],
        slowTasks: 10,
        slowLatencyMs: 10_000,
        profileTasks: 10,
        gatedTasks: 200,
        gatedTasksTsx: 50,
        slotsLatencyMs: 10_000,
        scaleVariants: false,
        budgetMs: 5 * 60_000,
      }
    : {
        quick,
        latencyMs,
        // Plans over 100 steps run in batch children: the chain stays within one history.
        chainSteps: 100,
        variantChainSteps: 60,
        noCacheChainSteps: 40,
        eagerTasks: 20,
        // 128 steps run as researchBatch children (plans over 100 steps); 256 is the schema's maximum.
        fanOut: [
          ...[1, 8, 32, 128].map((n) => ({ steps: n, maxParallel: n })),
          { steps: 128, maxParallel: 256 },
        ],
        repeats: 3,
        throughputTasks: [1, 10, 100],
        slowTasks: 100,
        slowLatencyMs: 10_000,
        profileTasks: 50,
        gatedTasks: 5000,
        gatedTasksTsx: 500,
        slotsLatencyMs: 10_000,
        scaleVariants: true,
        budgetMs: 30 * 60_000,
      };
}

export interface Ctx {
  rig: Rig;
  server: DevServer;
  /** The workflow bundle of in-process workers. */
  bundle: WorkflowBundleWithSourceMap;
  /** The workflow bundle `npm run build` wrote, which compiled worker processes load. */
  compiledBundle: string;
  /** Stand-in with no latency (overhead, tuning). */
  fast: StandIn;
  /** Stand-in with `settings.latencyMs` (fan-out, throughput, side by side). */
  slow: StandIn;
  workload: Workload;
  settings: Settings;
  /** What was left out or shrunk, said in the output. */
  capped: string[];
  log: (line: string) => void;
}

/** True (and recorded) when the time budget is spent: the caller skips `what`. */
function overBudget(ctx: Ctx, what: string): boolean {
  if (ctx.rig.elapsed() < ctx.settings.budgetMs) return false;
  ctx.capped.push(
    `skipped ${what}: the run passed its time budget (${Math.round(ctx.settings.budgetMs / 60_000)} min)`,
  );
  ctx.log(`  over the time budget: skipping ${what}`);
  return true;
}

export const TASK_TIMEOUT_MS = 10 * 60_000;

/** A batch run alone, with the CPU time it took (its warm-up left out). */
interface AloneBatch extends Batch {
  /** CPU time of the Temporal dev server, and of this process (the in-process worker and the client), ms. */
  serverCpuMs: number;
  processCpuMs: number;
}

/** One task of `playbook` alone on a fresh in-process worker of `variant`; returns its batch. */
async function runAlone(
  ctx: Ctx,
  setup: { configDir: string; playbook: string; variant: WorkerVariant; standIn: StandIn; warmup?: string },
  count = 1,
): Promise<AloneBatch> {
  return ctx.rig.withWorker(
    ctx.server,
    ctx.bundle,
    { configDir: setup.configDir, standInUrl: setup.standIn.url, variant: setup.variant },
    async (taskQueue, client) => {
      if (setup.warmup) {
        await runBatch(client, {
          taskQueue,
          playbook: setup.warmup,
          count: 1,
          prefix: ctx.rig.unique('warmup'),
          timeoutMs: TASK_TIMEOUT_MS,
        });
      }
      const batches: Batch[] = [];
      const serverPids = await ctx.rig.serverPids();
      const [server0, process0] = [await cpuMs(serverPids), process.cpuUsage()];
      // One after another: each task has the worker to itself.
      for (let i = 0; i < count; i++) {
        batches.push(
          await runBatch(client, {
            taskQueue,
            playbook: setup.playbook,
            count: 1,
            prefix: ctx.rig.unique('task'),
            timeoutMs: TASK_TIMEOUT_MS,
          }),
        );
      }
      const used = process.cpuUsage(process0);
      return {
        wallMs: median(batches.map((b) => b.wallMs)),
        tasks: batches.flatMap((b) => b.tasks),
        handles: batches.flatMap((b) => b.handles),
        serverCpuMs: (await cpuMs(serverPids)) - server0,
        processCpuMs: (used.user + used.system) / 1000,
      };
    },
  );
}

// ---------------------------------------------------------------------------------------------------------
// 1. Engine overhead per specialist call

export interface OverheadResult {
  calls: number;
  /** History of the chain task (its calls, the config snapshot, the report and publishing). */
  events: number;
  historyBytes: number;
  sdkInProcess: Summary;
  activityInProcess: Summary;
  temporal: { cycle: Summary; dispatch: Summary; execution: Summary; back: Summary };
  /**
   * CPU per call of the chain task, ms: the Temporal dev server's, and this process's (the in-process
   * worker with its activity, and the client). On a chain both are on the critical path.
   */
  serverCpuMsPerCall?: number;
  workerCpuMsPerCall?: number;
}

export async function measureOverhead(ctx: Ctx): Promise<OverheadResult> {
  const n = ctx.settings.chainSteps;
  const plan = chainPlan(n);
  const warm = 5;

  // The SDK straight at the stand-in, and Baton's activity function itself (artifact store, prompt,
  // zod) outside Temporal, alternating call by call so both see the same machine. Each call carries
  // the previous call's findings as context, as a chain step does.
  const client = sdkClient(ctx.fast.url);
  const activities = createActivities(await ctx.rig.activityOptions(BENCH_CONFIG, ctx.fast.url));
  const env = new MockActivityEnvironment();
  const sdk: number[] = [];
  const activity: number[] = [];
  let previous: StepOutput | undefined;
  let last: StepResult | undefined;
  for (let i = 0; i < n + warm; i++) {
    const step = plan.steps[i % n]!;
    const first = i % n === 0;
    let t = performance.now();
    previous = await callStep(
      client,
      ctx.workload,
      step,
      previous && !first ? [{ id: previous.id, agent: 'specialist', text: previous.text }] : [],
    );
    if (i >= warm) sdk.push(performance.now() - t);
    t = performance.now();
    last = await env.run((input: StepInput) => activities.runSpecialist(input), {
      overallQuestion: QUESTION,
      step: { id: step.id, agent: step.agent, question: step.question },
      agent: ctx.workload.specialist,
      context:
        last && !first ? [{ id: plan.steps[(i % n) - 1]!.id, agent: 'specialist', result: last.result }] : [],
    });
    if (i >= warm) activity.push(performance.now() - t);
  }

  // The same chain as one Baton task: every call waits for the one before.
  const configDir = await writeConfigDir(ctx.rig.root, 'overhead', [
    playbookFor('chain', plan),
    playbookFor('warmup', chainPlan(5)),
  ]);
  const batch = await runAlone(ctx, {
    configDir,
    playbook: 'chain',
    variant: 'shipped',
    standIn: ctx.fast,
    warmup: 'warmup',
  });
  const trace = await traceHistory(batch.handles[0]!);
  const cycles = chainCycles(trace);
  return {
    calls: n,
    events: trace.events,
    historyBytes: trace.bytes,
    sdkInProcess: summarize(sdk),
    activityInProcess: summarize(activity),
    temporal: {
      cycle: summarize(cycles.cycle),
      dispatch: summarize(cycles.dispatch),
      execution: summarize(cycles.execution),
      back: summarize(cycles.back),
    },
    serverCpuMsPerCall: batch.serverCpuMs / n,
    workerCpuMsPerCall: batch.processCpuMs / n,
  };
}

// ---------------------------------------------------------------------------------------------------------
// 6. Tuning: worker options on the chain, eager workflow start, bookkeeping round trips

export interface ChainVariantResult {
  variant: string;
  options: WorkerVariant;
  calls: number;
  cycle: Summary;
  dispatch: Summary;
}

/** Worker variants tried on the sequential chain (stand-in latency 0). */
export const CHAIN_VARIANTS: Array<{ name: string; options: WorkerVariant; shortChain?: boolean }> = [
  { name: 'as shipped (createBatonWorker)', options: 'shipped' },
  { name: 'SDK defaults (Worker.create)', options: {} },
  {
    name: 'eager activities off (maxEagerActivityReservationsPerWorkflowTask: 0)',
    options: { maxEagerActivityReservationsPerWorkflowTask: 0 },
  },
  { name: 'reuseV8Context: false', options: { reuseV8Context: false } },
  { name: 'no sticky cache (maxCachedWorkflows: 0)', options: { maxCachedWorkflows: 0 }, shortChain: true },
];

export async function measureChainVariants(ctx: Ctx): Promise<ChainVariantResult[]> {
  const { variantChainSteps, noCacheChainSteps } = ctx.settings;
  const configDir = await writeConfigDir(ctx.rig.root, 'variants', [
    playbookFor('chain', chainPlan(variantChainSteps)),
    playbookFor('chain-short', chainPlan(noCacheChainSteps)),
    playbookFor('warmup', chainPlan(3)),
  ]);
  // Rounds over all variants, the order rotated each round, so that a burst of load from elsewhere
  // on the machine does not land on one variant only; samples are pooled per variant.
  const samples = new Map<string, { cycle: number[]; dispatch: number[] }>(
    CHAIN_VARIANTS.map((v) => [v.name, { cycle: [], dispatch: [] }]),
  );
  for (let round = 0; round < ctx.settings.repeats; round++) {
    const order = CHAIN_VARIANTS.map((_, i) => CHAIN_VARIANTS[(i + round) % CHAIN_VARIANTS.length]!);
    for (const variant of order) {
      if (overBudget(ctx, `chain variant "${variant.name}", round ${round + 1}`)) continue;
      ctx.log(`  round ${round + 1}, chain variant: ${variant.name}`);
      const batch = await runAlone(ctx, {
        configDir,
        playbook: variant.shortChain ? 'chain-short' : 'chain',
        variant: variant.options,
        standIn: ctx.fast,
        warmup: 'warmup',
      });
      const cycles = chainCycles(await traceHistory(batch.handles[0]!));
      samples.get(variant.name)!.cycle.push(...cycles.cycle);
      samples.get(variant.name)!.dispatch.push(...cycles.dispatch);
    }
  }
  return CHAIN_VARIANTS.filter((v) => samples.get(v.name)!.cycle.length > 0).map((v) => ({
    variant: v.name,
    options: v.options,
    calls: samples.get(v.name)!.cycle.length,
    cycle: summarize(samples.get(v.name)!.cycle),
    dispatch: summarize(samples.get(v.name)!.dispatch),
  }));
}

export interface EagerStartResult {
  requestEagerStart: boolean;
  tasks: number;
  eagerlyStarted: number;
  /** Client's start call → the task's first activity scheduled (server time; same machine). */
  startToFirstActivity: Summary;
  /** Client's start call → result, for a one-step task at 0 ms model latency. */
  task: Summary;
}

export interface BookkeepingResult {
  /**
   * Median engine time around the bookkeeping at each end of a one-step task, ms: from the workflow's
   * start to its step being scheduled (the config snapshot), and from the step's result to the
   * workflow's completion less the report's own call (citation pass and publishing).
   */
  start: number;
  end: number;
  /** Bookkeeping calls per task run as local activities (0 when they are activities). */
  localActivities: number;
  /** Bookkeeping calls per task run as activities (each with its engine round trip). */
  activities: number;
}

/** One-step tasks started one by one, alternating with and without eager workflow start. */
export async function measureEagerStart(
  ctx: Ctx,
): Promise<{ eager: EagerStartResult[]; bookkeeping: BookkeepingResult }> {
  const configDir = await writeConfigDir(ctx.rig.root, 'eager', [playbookFor('one-step', fanOutPlan(1))]);
  const runs = await ctx.rig.withWorker(
    ctx.server,
    ctx.bundle,
    { configDir, standInUrl: ctx.fast.url, variant: 'shipped' },
    async (taskQueue, client) => {
      await runBatch(client, {
        taskQueue,
        playbook: 'one-step',
        count: 2,
        prefix: ctx.rig.unique('warmup'),
        timeoutMs: TASK_TIMEOUT_MS,
      });
      const out: Array<{ eager: boolean; batch: Batch }> = [];
      for (let i = 0; i < ctx.settings.eagerTasks * 2; i++) {
        const eager = i % 2 === 1;
        const batch = await runBatch(client, {
          taskQueue,
          playbook: 'one-step',
          count: 1,
          prefix: ctx.rig.unique(eager ? 'eager' : 'normal'),
          requestEagerStart: eager,
          timeoutMs: TASK_TIMEOUT_MS,
        });
        out.push({ eager, batch });
      }
      return out;
    },
  );
  const traces = await Promise.all(
    runs.map(async (r) => ({ ...r, trace: await traceHistory(r.batch.handles[0]!) })),
  );
  const eager = [false, true].map((flag): EagerStartResult => {
    const mine = traces.filter((t) => t.eager === flag);
    return {
      requestEagerStart: flag,
      tasks: mine.length,
      eagerlyStarted: mine.filter((t) => t.batch.tasks[0]!.eagerlyStarted).length,
      startToFirstActivity: summarize(
        mine.map((t) => t.trace.activities[0]!.scheduled - t.batch.tasks[0]!.startedAt),
      ),
      task: summarize(mine.map((t) => t.batch.wallMs)),
    };
  });
  const step = (t: HistoryTrace) => activitiesOf(t, 'runSpecialist')[0];
  const report = (t: HistoryTrace) => activitiesOf(t, 'synthesizeReport')[0];
  const bookkeeping = (t: HistoryTrace) =>
    t.activities.filter((a) => a.type !== 'runSpecialist' && a.type !== 'synthesizeReport').length;
  return {
    eager,
    bookkeeping: {
      start: median(traces.map(({ trace }) => (step(trace)?.scheduled ?? Number.NaN) - trace.startedAt)),
      end: median(traces.map(({ trace }) => trace.closedAt - (report(trace)?.completed ?? Number.NaN))),
      localActivities: median(traces.map(({ trace }) => trace.localActivities)),
      activities: median(traces.map(({ trace }) => bookkeeping(trace))),
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// 2. Fan-out

export interface FanOutResult {
  steps: number;
  /** The playbook's maxParallel. */
  maxParallel: number;
  /** First step scheduled → last step completed (median of the repeats), ms; batch children included. */
  phaseMs: number;
  /** Start call → result, ms. */
  taskMs: number;
  /** Workflows of one such task: 1, or the task and its `researchBatch` children (plans over 100 steps). */
  workflows: number;
  /** History events and bytes of one such task, children included; `topEvents`: the task's own. */
  events: number;
  topEvents: number;
  historyBytes: number;
}

async function fanOutOnce(ctx: Ctx, shape: FanOutShape): Promise<FanOutResult> {
  const { steps: n, maxParallel } = shape;
  const id = `fanout-${n}-${maxParallel}`;
  const configDir = await writeConfigDir(ctx.rig.root, ctx.rig.unique(id), [
    playbookFor(id, fanOutPlan(n), { maxParallel }),
    playbookFor('warmup', fanOutPlan(2)),
  ]);
  const batch = await runAlone(
    ctx,
    { configDir, playbook: id, variant: 'shipped', standIn: ctx.slow, warmup: 'warmup' },
    ctx.settings.repeats,
  );
  const traces = await Promise.all(batch.handles.map(traceTree));
  const phases = traces.map((t) => {
    const calls = activitiesOf(t, 'runSpecialist');
    return (
      Math.max(...calls.map((s) => s.completed ?? Number.NaN)) - Math.min(...calls.map((s) => s.scheduled))
    );
  });
  return {
    steps: n,
    maxParallel,
    phaseMs: median(phases),
    taskMs: batch.wallMs,
    workflows: traces[0]!.workflows,
    events: traces[0]!.events,
    topEvents: traces[0]!.topEvents,
    historyBytes: traces[0]!.bytes,
  };
}

export async function measureFanOut(ctx: Ctx): Promise<FanOutResult[]> {
  const out: FanOutResult[] = [];
  for (const shape of ctx.settings.fanOut) {
    const what = `fan-out N=${shape.steps}, maxParallel ${shape.maxParallel}`;
    if (overBudget(ctx, what)) continue;
    ctx.log(`  ${what}`);
    out.push(await fanOutOnce(ctx, shape));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// 4. Footprint, then 3. throughput, on worker processes

export interface FootprintResult {
  /** `compiled` (`npm run worker:prod`: node on dist/, prebuilt bundle) or `tsx` (`npm run worker`, bundling at start). */
  runtime: WorkerRuntime;
  /** The worker's sticky cache bound (workers/options.ts, as shipped). */
  maxCachedWorkflows: number;
  gatedTasks: number;
  /** Seconds from spawning the worker to its polling. */
  readySeconds?: number;
  /** Resident set of the worker's node process (the largest of its tree), KiB. */
  idleRssKib: number;
  waitingRssKib: number;
  /** Whole process tree (under tsx: the launcher, the worker, esbuild), KiB. */
  idleTreeRssKib: number;
  waitingTreeRssKib: number;
  /** Seconds to start the tasks and see every one waiting at its gate. */
  startSeconds: number;
  /** History of one waiting task. */
  waitingEvents: number;
  waitingHistoryBytes: number;
}

export interface ThroughputResult {
  workers: number;
  tasks: number;
  /** The stand-in's model latency; absent in results from before it was recorded (then the run's latencyMs). */
  latencyMs?: number;
  wallMs: number;
  tasksPerMinute: number;
  stepCallsPerSecond: number;
  taskP50Ms: number;
  taskP99Ms: number;
  /** CPU time per task of the worker processes (all of them) and of the Temporal dev server. */
  workerCpuMsPerTask: number;
  serverCpuMsPerTask: number;
  /** History of one task of this batch (eight steps and a report, no gates). */
  events: number;
  historyBytes: number;
}

const workerRss = async (ctx: Ctx, worker: WorkerProcess): Promise<{ main: number; tree: number }> => {
  const procs = await ctx.rig.rss(worker);
  return { main: Math.max(...procs.map((p) => p.rssKib)), tree: procs.reduce((a, p) => a + p.rssKib, 0) };
};

const settle = (msToWait: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, msToWait));

export async function measureFootprint(
  ctx: Ctx,
  worker: WorkerProcess,
  taskQueue: string,
  runtime: WorkerRuntime,
  g: number,
): Promise<FootprintResult> {
  const client = ctx.server.env.client;
  await settle(3000);
  const idle = await workerRss(ctx, worker);
  const t0 = Date.now();
  const prefix = ctx.rig.unique('gated');
  const handles = await mapLimit(Array.from({ length: g }), 25, (_, i) =>
    client.workflow.start(researchTask, {
      taskQueue,
      workflowId: `${prefix}-${i + 1}`,
      args: [{ question: QUESTION, playbook: GATED_PLAYBOOK }],
    }),
  );
  ctx.log(`  ${g} tasks started in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  // Visibility knows each task's phase (the BatonPhase search attribute): wait until all wait.
  const query = `TaskQueue = "${taskQueue}" AND ExecutionStatus = "Running" AND BatonPhase = "awaiting-plan-approval"`;
  await withTimeout(
    (async () => {
      let lastLog = Date.now();
      for (;;) {
        const { count } = await client.workflow.count(query);
        if (count >= g) return;
        if (Date.now() - lastLog > 5000) {
          ctx.log(`  ${count}/${g} waiting at the gate after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
          lastLog = Date.now();
        }
        await settle(250);
      }
    })(),
    20 * 60_000,
    `${g} gated tasks reaching their plan gate`,
  );
  const startSeconds = (Date.now() - t0) / 1000;
  await settle(3000);
  const waiting = await workerRss(ctx, worker);
  const trace = await traceHistory(handles[0]!);
  // The tasks are left waiting at their gate until the server stops (so this section runs last).
  return {
    runtime,
    maxCachedWorkflows: DEFAULT_MAX_CACHED_WORKFLOWS,
    gatedTasks: g,
    readySeconds: worker.readySeconds,
    idleRssKib: idle.main,
    waitingRssKib: waiting.main,
    idleTreeRssKib: idle.tree,
    waitingTreeRssKib: waiting.tree,
    startSeconds,
    waitingEvents: trace.events,
    waitingHistoryBytes: trace.bytes,
  };
}

/** K tasks at once, for each K of `ks`, on the worker processes polling `taskQueue`. */
export async function measureThroughput(
  ctx: Ctx,
  workers: number,
  taskQueue: string,
  ks: readonly number[],
  latencyMs: number,
): Promise<ThroughputResult[]> {
  const client = ctx.server.env.client;
  const out: ThroughputResult[] = [];
  await runBatch(client, {
    taskQueue,
    playbook: STANDARD_PLAYBOOK,
    count: 2,
    prefix: ctx.rig.unique('warmup'),
    timeoutMs: TASK_TIMEOUT_MS,
  });
  for (const k of ks) {
    if (overBudget(ctx, `throughput K=${k} on ${workers} worker(s) at ${latencyMs} ms`)) continue;
    ctx.log(`  throughput: ${k} task(s) on ${workers} worker process(es), model latency ${latencyMs} ms`);
    const repeats = k === 1 ? ctx.settings.repeats : 1;
    const batches: Batch[] = [];
    const [workerPids, serverPids] = [await ctx.rig.workerPids(), await ctx.rig.serverPids()];
    const cpu0 = [await cpuMs(workerPids), await cpuMs(serverPids)];
    for (let r = 0; r < repeats; r++) {
      batches.push(
        await runBatch(client, {
          taskQueue,
          playbook: STANDARD_PLAYBOOK,
          count: k,
          prefix: ctx.rig.unique(`tp${workers}`),
          timeoutMs: TASK_TIMEOUT_MS,
        }),
      );
    }
    const cpu1 = [await cpuMs(workerPids), await cpuMs(serverPids)];
    const wallMs = median(batches.map((b) => b.wallMs));
    const perTask = batches.flatMap((b) => b.tasks.map((t) => t.finishedAt - t.startedAt));
    const trace = await traceHistory(batches[0]!.handles[0]!);
    out.push({
      workers,
      tasks: k,
      latencyMs,
      wallMs,
      tasksPerMinute: (k / wallMs) * 60_000,
      stepCallsPerSecond: (k * ctx.workload.standardPlan.steps.length) / (wallMs / 1000),
      taskP50Ms: median(perTask),
      taskP99Ms: percentile(perTask, 99),
      workerCpuMsPerTask: (cpu1[0]! - cpu0[0]!) / (k * repeats),
      serverCpuMsPerTask: (cpu1[1]! - cpu0[1]!) / (k * repeats),
      events: trace.events,
      historyBytes: trace.bytes,
    });
  }
  return out;
}

export interface SlotsResult {
  variant: string;
  tasks: number;
  latencyMs: number;
  wallMs: number;
  tasksPerMinute: number;
}

/** Baton's worker against the SDK's defaults (100 activity slots) in {@link measureActivitySlots}. */
export const SLOT_VARIANTS: Array<{ name: string; options: WorkerVariant }> = [
  { name: 'as shipped (createBatonWorker)', options: 'shipped' },
  { name: 'SDK defaults (100 activity slots)', options: {} },
];

/**
 * The largest batch of tasks on one in-process worker, at a model latency closer to real calls
 * ({@link Settings.slotsLatencyMs}): a model call holds an activity slot while it waits on the
 * network, so with many calls in flight the worker's slot count, not CPU, sets the pace.
 */
export async function measureActivitySlots(ctx: Ctx): Promise<SlotsResult[]> {
  const k = Math.max(...ctx.settings.throughputTasks);
  const latencyMs = ctx.settings.slotsLatencyMs;
  const standIn = await ctx.rig.startStandIn(latencyMs);
  const out: SlotsResult[] = [];
  for (const variant of SLOT_VARIANTS) {
    if (overBudget(ctx, `${k} tasks at ${latencyMs} ms with ${variant.name}`)) continue;
    ctx.log(`  ${k} tasks at ${latencyMs} ms model latency, ${variant.name}`);
    const wallMs = await ctx.rig.withWorker(
      ctx.server,
      ctx.bundle,
      { configDir: BENCH_CONFIG, standInUrl: standIn.url, variant: variant.options },
      async (taskQueue, client) => {
        const batch = await runBatch(client, {
          taskQueue,
          playbook: STANDARD_PLAYBOOK,
          count: k,
          prefix: ctx.rig.unique('slots'),
          timeoutMs: TASK_TIMEOUT_MS,
        });
        return batch.wallMs;
      },
    );
    out.push({ variant: variant.name, tasks: k, latencyMs, wallMs, tasksPerMinute: (k / wallMs) * 60_000 });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// 5. Side by side: Promise.all and LangGraph with its SQLite checkpointer

export interface BaselineResult {
  system: 'Promise.all' | 'LangGraph + SQLite checkpointer';
  tasks: number;
  wallMs: number;
  taskP50Ms: number;
  /** LangGraph only: checkpoints written per task. */
  checkpointsPerTask?: number;
}

export async function measureBaselines(ctx: Ctx): Promise<BaselineResult[]> {
  const client = sdkClient(ctx.slow.url);
  const out: BaselineResult[] = [];
  const timed = async (
    k: number,
    task: (i: number) => Promise<unknown>,
  ): Promise<{ wallMs: number; p50: number }> => {
    const t0 = performance.now();
    const per = await withTimeout(
      Promise.all(
        Array.from({ length: k }, async (_, i) => {
          const t = performance.now();
          await task(i);
          return performance.now() - t;
        }),
      ),
      TASK_TIMEOUT_MS,
      `${k} baseline task(s)`,
    );
    return { wallMs: performance.now() - t0, p50: median(per) };
  };
  await promiseAllTask(client, ctx.workload); // warm-up
  for (const k of ctx.settings.throughputTasks) {
    if (overBudget(ctx, `Promise.all K=${k}`)) continue;
    ctx.log(`  Promise.all: ${k} task(s)`);
    const runs = [];
    for (let r = 0; r < (k === 1 ? ctx.settings.repeats : 1); r++)
      runs.push(await timed(k, () => promiseAllTask(client, ctx.workload)));
    out.push({
      system: 'Promise.all',
      tasks: k,
      wallMs: median(runs.map((r) => r.wallMs)),
      taskP50Ms: median(runs.map((r) => r.p50)),
    });
  }
  const dir = path.join(ctx.rig.root, 'langgraph');
  await fs.mkdir(dir, { recursive: true });
  // The checkpoint file goes with the temporary folder; better-sqlite3 closes it at exit.
  const graph = langGraphTasks(client, ctx.workload, path.join(dir, 'checkpoints.sqlite'));
  await graph.run('warmup');
  for (const k of ctx.settings.throughputTasks) {
    if (overBudget(ctx, `LangGraph K=${k}`)) continue;
    ctx.log(`  LangGraph + SQLite: ${k} task(s)`);
    const before = await graph.checkpoints();
    const runs = [];
    for (let r = 0; r < (k === 1 ? ctx.settings.repeats : 1); r++) {
      const prefix = ctx.rig.unique(`lg${k}`);
      runs.push(await timed(k, (i) => graph.run(`${prefix}-${i}`)));
    }
    out.push({
      system: 'LangGraph + SQLite checkpointer',
      tasks: k,
      wallMs: median(runs.map((r) => r.wallMs)),
      taskP50Ms: median(runs.map((r) => r.p50)),
      checkpointsPerTask: ((await graph.checkpoints()) - before) / (k * runs.length),
    });
  }
  return out;
}
