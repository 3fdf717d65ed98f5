/**
 * 8. Where the CPU goes, and what it allows: the CPU time of a compiled worker process and of the
 * Temporal dev server for tasks of 1, 8 and 32 parallel steps at 0 ms model latency (the idle CPU of
 * both subtracted), fitted as a fixed part per task plus a part per step (one specialist activity and
 * its share of the workflow tasks), and per history event. From those costs and the other sections'
 * figures, {@link goalsTable} sets each goal of the benchmark beside what was measured, the CPU it
 * leaves the engine on this machine (two cores, the server on the same machine), and where the CPU
 * went.
 */
import os from 'node:os';
import path from 'node:path';
import { runBatch, traceHistory } from './baton';
import type { Results } from './report';
import { cpuMs } from './rig';
import { TASK_TIMEOUT_MS, type Ctx } from './sections';
import { median, mib, ms, num, ratio, secs, type Table } from './stats';
import { fanOutPlan, playbookFor, writeConfigDir } from './workload';

/** Parallel steps of the profiled plans: the standard task's eight, and one either side. */
export const PROFILE_STEPS = [1, 8, 32] as const;

/** K tasks of one plan, started at once. */
export interface ProfileShape {
  steps: number;
  tasks: number;
  wallMs: number;
  /** CPU per task (user + system, from /proc), the idle CPU over the batch's wall time subtracted. */
  workerCpuMsPerTask: number;
  serverCpuMsPerTask: number;
  /** One task's history: its events, workflow tasks, activities and local activities. */
  events: number;
  workflowTasks: number;
  activities: number;
  localActivities: number;
}

export interface ProfileResult {
  /** CPU per second of the worker and of the server with nothing to do (polling, timers). */
  workerIdleMsPerSecond: number;
  serverIdleMsPerSecond: number;
  shapes: ProfileShape[];
}

const settle = (msToWait: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, msToWait));

/** Measures {@link ProfileResult} on a compiled worker process of its own, against the 0 ms stand-in. */
export async function measureProfile(ctx: Ctx): Promise<ProfileResult> {
  const playbook = (steps: number): string => `profile-${steps}`;
  const configDir = await writeConfigDir(
    ctx.rig.root,
    'profile',
    PROFILE_STEPS.map((n) => playbookFor(playbook(n), fanOutPlan(n))),
  );
  const taskQueue = ctx.rig.unique('bench-profile');
  const worker = await ctx.rig.spawnWorker('worker-profile', ctx.server, {
    taskQueue,
    configDir,
    standInUrl: ctx.fast.url,
    dataDir: path.join(ctx.rig.root, taskQueue),
    runtime: 'compiled',
    bundle: ctx.compiledBundle,
  });
  try {
    const client = ctx.server.env.client;
    const batch = (steps: number, count: number) =>
      runBatch(client, {
        taskQueue,
        playbook: playbook(steps),
        count,
        prefix: ctx.rig.unique(`profile-${steps}`),
        timeoutMs: TASK_TIMEOUT_MS,
      });
    await batch(8, 5);
    const [workerPids, serverPids] = [await ctx.rig.workerPids(), await ctx.rig.serverPids()];
    const cpu = async (): Promise<[number, number]> => [await cpuMs(workerPids), await cpuMs(serverPids)];
    const idleMs = ctx.settings.quick ? 2000 : 5000;
    const before = await cpu();
    await settle(idleMs);
    const after = await cpu();
    const idle = [
      (after[0] - before[0]) / (idleMs / 1000),
      (after[1] - before[1]) / (idleMs / 1000),
    ] as const;
    const shapes: ProfileShape[] = [];
    for (const steps of PROFILE_STEPS) {
      const k = ctx.settings.profileTasks;
      ctx.log(`  profile: ${k} tasks of ${steps} parallel step(s) at once, model latency 0 ms`);
      const c0 = await cpu();
      const run = await batch(steps, k);
      const c1 = await cpu();
      const trace = await traceHistory(run.handles[0]!);
      const perTask = (i: 0 | 1): number => (c1[i] - c0[i] - (idle[i] * run.wallMs) / 1000) / k;
      shapes.push({
        steps,
        tasks: k,
        wallMs: run.wallMs,
        workerCpuMsPerTask: perTask(0),
        serverCpuMsPerTask: perTask(1),
        events: trace.events,
        workflowTasks: trace.workflowTasks,
        activities: trace.activities.length,
        localActivities: trace.localActivities,
      });
    }
    return { workerIdleMsPerSecond: idle[0], serverIdleMsPerSecond: idle[1], shapes };
  } finally {
    await worker.kill();
  }
}

/** Least-squares line through the points: value = fixed + perStep × steps. */
function fit(points: Array<[number, number]>): { fixed: number; perStep: number } {
  const n = points.length;
  const [mx, my] = [points.reduce((a, [x]) => a + x, 0) / n, points.reduce((a, [, y]) => a + y, 0) / n];
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  const perStep = sxx === 0 ? Number.NaN : points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / sxx;
  return { fixed: my - perStep * mx, perStep };
}

/** The profile's costs: per task (fixed), per step, per event; and the standard task's whole. */
export interface CpuCosts {
  worker: { fixed: number; perStep: number };
  server: { fixed: number; perStep: number };
  events: { fixed: number; perStep: number };
  /** The standard (8-step) task: CPU per task, worker and server, and its events. */
  standard: ProfileShape;
}

export function cpuCosts(p: ProfileResult): CpuCosts | undefined {
  const standard = p.shapes.find((s) => s.steps === 8);
  if (!standard || p.shapes.length < 2) return undefined;
  const line = (f: (s: ProfileShape) => number) => fit(p.shapes.map((s) => [s.steps, f(s)]));
  return {
    worker: line((s) => s.workerCpuMsPerTask),
    server: line((s) => s.serverCpuMsPerTask),
    events: line((s) => s.events),
    standard,
  };
}

export function profileTables(p: ProfileResult): Table[] {
  const costs = cpuCosts(p);
  const tables: Table[] = [
    {
      title: '8. Where the CPU goes: K tasks at once, model latency 0 ms, one compiled worker process',
      columns: [
        'steps',
        'K',
        'wall s',
        'events',
        'workflow tasks',
        'activities (local)',
        'worker CPU ms/task',
        'server CPU ms/task',
        'server ms/event',
      ],
      rows: p.shapes.map((s) => [
        String(s.steps),
        String(s.tasks),
        secs(s.wallMs),
        String(s.events),
        String(s.workflowTasks),
        `${s.activities} (${s.localActivities})`,
        ms(s.workerCpuMsPerTask),
        ms(s.serverCpuMsPerTask),
        ms(s.serverCpuMsPerTask / s.events),
      ]),
      notes: [
        `idle CPU subtracted: worker ${ms(p.workerIdleMsPerSecond)} ms/s, server ${ms(p.serverIdleMsPerSecond)} ms/s (polling, timers)`,
        'events, workflow tasks and activities: one task of the row, from its history',
      ],
    },
  ];
  if (costs) {
    const { worker, server, events } = costs;
    tables.push({
      title: '8b. The same, fitted: a fixed part per task and a part per parallel step',
      columns: ['part', 'worker CPU ms', 'server CPU ms', 'events', 'server ms/event'],
      rows: [
        [
          'per task (start, config, report, citations, publishing)',
          ms(worker.fixed),
          ms(server.fixed),
          num(events.fixed),
          ms(server.fixed / events.fixed),
        ],
        [
          'per step (a specialist activity, its share of workflow tasks)',
          ms(worker.perStep),
          ms(server.perStep),
          num(events.perStep),
          ms(server.perStep / events.perStep),
        ],
      ],
      notes: [
        `least squares over N = ${p.shapes.map((s) => s.steps).join(', ')}; the standard task (N = 8): worker ${ms(costs.standard.workerCpuMsPerTask)} + server ${ms(costs.standard.serverCpuMsPerTask)} ms`,
      ],
    });
  }
  return tables;
}

/** The benchmark's goals (bench/README.md, "Goals"). */
export const GOALS = {
  hundredVsLangGraph: 1.5,
  tenVsLangGraph: 1.15,
  cpuPerTaskMs: 120,
  slowVsIdeal: 1.1,
  idleRssMib: 150,
  waitingRssMib: 300,
  waitingTasks: 5000,
  overheadMs: 15,
  fanOutVsLatency: 1.3,
  recoverySeconds: 20,
} as const;

const cores = (r: Results): number => Number(r.machine.nproc) || os.cpus().length;

/** `server S + worker W ms`: where a row's CPU per task went. */
const split = (server: number, worker: number, unit = 'ms'): string =>
  `server ${ms(server)} + worker ${ms(worker)} ${unit}`;

/**
 * Each goal beside its measured figure, the CPU per task (or per call, per step) it leaves the
 * engine on this machine, and where that CPU went. K tasks started together run in phase: their
 * engine work comes before and after the model calls and cannot hide behind them, so they take
 * about `model time + K × CPU per task / cores` (the in-phase budget solves that for the CPU), and
 * never less than `K × CPU per task / cores` (the strict budget: a goal whose strict budget is below
 * the server's own CPU cannot be met here whatever the worker does).
 */
export function goalsTable(r: Results): Table | undefined {
  const n = cores(r);
  const latency = r.settings.latencyMs;
  const costs = r.profile && cpuCosts(r.profile);
  const rows: string[][] = [];
  const met = (ok: boolean): string => (ok ? 'yes' : 'no');
  /** CPU per task the goal leaves K tasks: in phase, and strict (ms). */
  const budget = (goalMs: number, modelMs: number, k: number): string =>
    `<= ${ms(Math.max(0, ((goalMs - modelMs) * n) / k))} ms in phase, <= ${ms((goalMs * n) / k)} ms strict`;
  const throughputAt = (k: number, model: number) =>
    r.throughput?.find((t) => t.workers === 1 && t.tasks === k && (t.latencyMs ?? latency) === model);
  for (const [k, goal] of [
    [100, GOALS.hundredVsLangGraph],
    [10, GOALS.tenVsLangGraph],
  ] as const) {
    const baton = throughputAt(k, latency);
    const lg = r.baselines?.find((b) => b.system !== 'Promise.all' && b.tasks === k);
    if (!baton || !lg) continue;
    rows.push([
      `${k} tasks at once vs LangGraph.js + SQLite`,
      `<= ${ratio(goal)}`,
      ratio(baton.wallMs / lg.wallMs),
      budget(goal * lg.wallMs, 2 * latency, k),
      split(baton.serverCpuMsPerTask, baton.workerCpuMsPerTask),
      met(baton.wallMs / lg.wallMs <= goal),
    ]);
  }
  const busiest = throughputAt(100, latency);
  if (busiest) {
    const used = busiest.workerCpuMsPerTask + busiest.serverCpuMsPerTask;
    rows.push([
      'CPU per task, worker + server (K = 100)',
      `<= ${GOALS.cpuPerTaskMs} ms`,
      `${ms(used)} ms`,
      `<= ${GOALS.cpuPerTaskMs} ms`,
      split(busiest.serverCpuMsPerTask, busiest.workerCpuMsPerTask),
      met(used <= GOALS.cpuPerTaskMs),
    ]);
  }
  const slow = r.throughput?.find((t) => (t.latencyMs ?? latency) > latency);
  if (slow) {
    const ideal = 2 * (slow.latencyMs ?? latency);
    rows.push([
      `${slow.tasks} tasks at ${(slow.latencyMs ?? latency) / 1000} s model latency vs two latencies`,
      `<= ${ratio(GOALS.slowVsIdeal)}`,
      ratio(slow.wallMs / ideal),
      budget(GOALS.slowVsIdeal * ideal, ideal, slow.tasks),
      split(slow.serverCpuMsPerTask, slow.workerCpuMsPerTask),
      met(slow.wallMs / ideal <= GOALS.slowVsIdeal),
    ]);
  }
  const [compiled] = r.footprints ?? [];
  if (compiled) {
    const cached = Math.min(compiled.maxCachedWorkflows, compiled.gatedTasks);
    const perRun = (compiled.waitingRssKib - compiled.idleRssKib) / cached;
    rows.push(
      [
        'worker RSS idle (compiled worker)',
        `<= ${GOALS.idleRssMib} MiB`,
        `${mib(compiled.idleRssKib)} MiB`,
        'n/a',
        'the runtime (see "Where the time goes")',
        met(compiled.idleRssKib / 1024 <= GOALS.idleRssMib),
      ],
      [
        `worker RSS with ${compiled.gatedTasks} tasks waiting at a gate`,
        `<= ${GOALS.waitingRssMib} MiB at ${GOALS.waitingTasks}`,
        `${mib(compiled.waitingRssKib)} MiB`,
        'n/a',
        `idle + ${cached} cached runs x ${mib(perRun)} MiB`,
        met(
          compiled.waitingRssKib / 1024 <= GOALS.waitingRssMib && compiled.gatedTasks >= GOALS.waitingTasks,
        ),
      ],
    );
  }
  const o = r.overhead;
  if (o) {
    const overhead = o.temporal.cycle.median - o.activityInProcess.median;
    rows.push([
      'engine overhead per sequential call',
      `<= ${GOALS.overheadMs} ms`,
      `${ms(overhead)} ms`,
      `<= ${GOALS.overheadMs} ms of CPU per call, less the activity's own`,
      o.serverCpuMsPerCall === undefined || o.workerCpuMsPerCall === undefined
        ? 'n/a'
        : split(o.serverCpuMsPerCall, o.workerCpuMsPerCall, 'ms per call'),
      met(overhead <= GOALS.overheadMs),
    ]);
  }
  const widest = (r.fanOut ?? []).filter(
    (f) => f.steps === Math.max(...(r.fanOut ?? []).map((x) => x.steps)),
  );
  const fastest = widest.length ? widest.reduce((a, b) => (b.phaseMs < a.phaseMs ? b : a)) : undefined;
  if (fastest) {
    rows.push([
      `${fastest.steps} parallel steps vs one latency (maxParallel ${fastest.maxParallel})`,
      `<= ${ratio(GOALS.fanOutVsLatency)}`,
      ratio(fastest.phaseMs / latency),
      `${budget(GOALS.fanOutVsLatency * latency, latency, fastest.steps)} per step`,
      costs ? split(costs.server.perStep, costs.worker.perStep, 'ms per step (table 8b)') : 'n/a',
      met(fastest.phaseMs / latency <= GOALS.fanOutVsLatency),
    ]);
  }
  const shipped = r.recovery?.find((v) => v.variant === 'shipped');
  if (shipped) {
    const seconds = median(shipped.recoveryMs) / 1000;
    rows.push([
      "a killed worker's steps running again",
      `<= ${GOALS.recoverySeconds} s`,
      `${num(seconds, 2)} s`,
      'n/a',
      'heartbeat timeout (10 s) and the first retry interval',
      met(seconds <= GOALS.recoverySeconds),
    ]);
  }
  if (rows.length === 0) return undefined;
  return {
    title: `9. Goals: measured, the CPU each leaves the engine on ${n} cores, and where the CPU went`,
    columns: ['measure', 'goal', 'measured', 'CPU the goal leaves per task', 'CPU used per task', 'met'],
    rows,
    notes: [
      'in phase: tasks started together do their engine work before and after the model calls, so K tasks take about model time + K x CPU per task / cores; strict: never less than K x CPU per task / cores',
      "CPU used: the row's own batch (tables 1, 3 and 8b), user + system time from /proc",
    ],
  };
}
