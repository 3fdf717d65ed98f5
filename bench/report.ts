/**
 * Turning the measurements into tables: aligned text for the terminal, Markdown for
 * bench/README.md (between its result markers) and a short summary of the headline figures.
 */
import { promises as fs } from 'node:fs';
import { format, resolveConfig } from 'prettier';
import type {
  BaselineResult,
  BookkeepingResult,
  ChainVariantResult,
  EagerStartResult,
  FanOutResult,
  FootprintResult,
  OverheadResult,
  Settings,
  SlotsResult,
  ThroughputResult,
} from './sections';
import { goalsTable, profileTables, type ProfileResult } from './profile';
import type { RecoveryResult } from './recovery';
import { median, mib, ms, num, ratio, renderMarkdown, secs, type Table } from './stats';

/** The machine a run came from. */
export interface Machine {
  date: string;
  cpuModel: string;
  /** `nproc` output. */
  nproc: string;
  /** `free -h` output. */
  memory: string;
  node: string;
  platform: string;
  temporalCli: string;
  /** 1, 5 and 15 minute load averages at the start and the end of the run (others share the machine). */
  loadStart: number[];
  loadEnd?: number[];
}

/** Everything a run measured: what bench/results.json holds. */
export interface Results {
  mode: 'quick' | 'full';
  /** The sections `--only` named; absent when every section ran. */
  only?: string[];
  machine: Machine;
  settings: Settings;
  capped: string[];
  /** Sections that failed (their figures are missing). */
  errors: string[];
  /** Wall time of each section, seconds. */
  sectionSeconds: Record<string, number>;
  overhead?: OverheadResult;
  chainVariants?: ChainVariantResult[];
  eagerStart?: EagerStartResult[];
  bookkeeping?: BookkeepingResult;
  fanOut?: FanOutResult[];
  /** One per worker runtime: the compiled worker, then the tsx worker. */
  footprints?: FootprintResult[];
  throughput?: ThroughputResult[];
  activitySlots?: SlotsResult[];
  baselines?: BaselineResult[];
  recovery?: RecoveryResult[];
  profile?: ProfileResult;
}

const kib = (bytes: number): string => (bytes / 1024).toFixed(1);

export function tables(r: Results): Table[] {
  const out: Table[] = [];
  const latency = r.settings.latencyMs;

  if (r.overhead) {
    const o = r.overhead;
    const row = (name: string, s: { n: number; median: number; p99: number }): string[] => [
      name,
      String(s.n),
      ms(s.median),
      ms(s.p99),
    ];
    out.push({
      title: '1. Engine overhead per specialist call (stand-in latency 0 ms, calls one after another)',
      columns: ['path', 'calls', 'median ms', 'p99 ms'],
      rows: [
        row('SDK call in process (no Temporal)', o.sdkInProcess),
        row('activity function in process (no Temporal)', o.activityInProcess),
        row('through Temporal: one call, schedule to next schedule', o.temporal.cycle),
        row('  of which dispatch (scheduled -> started)', o.temporal.dispatch),
        row('  of which the activity running', o.temporal.execution),
        row('  of which back to the workflow (completed -> next scheduled)', o.temporal.back),
      ],
      notes: [
        `engine overhead per call: ${ms(o.temporal.cycle.median - o.activityInProcess.median)} ms median over the in-process activity, ${ms(o.temporal.cycle.median - o.sdkInProcess.median)} ms over the bare SDK call`,
        `through Temporal = a Baton task whose fixed plan is a chain of ${o.calls} steps (each depends on the one before), timed from its event history (server timestamps)`,
      ],
    });
  }

  if (r.fanOut?.length) {
    out.push({
      title: `2. Fan-out: N parallel steps, model latency ${latency} ms`,
      columns: [
        'N',
        'maxParallel',
        'fan-out s',
        'ideal s',
        'ratio',
        'task s',
        'ideal task s',
        'ratio',
        'workflows',
        'events (own)',
      ],
      rows: r.fanOut.map((f) => [
        String(f.steps),
        String(f.maxParallel),
        secs(f.phaseMs),
        secs(latency),
        ratio(f.phaseMs / latency),
        secs(f.taskMs),
        secs(2 * latency),
        ratio(f.taskMs / (2 * latency)),
        String(f.workflows),
        `${f.events} (${f.topEvents})`,
      ]),
      notes: [
        'fan-out = first step scheduled to last step completed (histories, batch children included); ideal = one model latency',
        'plans over 100 steps run in `researchBatch` children (workflows > 1), at most 4 at once, each with maxParallel / 4',
        'task = start call to result; ideal = two latencies (the parallel steps, then the report)',
        `median of ${r.settings.repeats} run(s) per row, each task alone on a fresh in-process worker`,
      ],
    });
  }

  if (r.throughput?.length) {
    out.push({
      title: '3. Throughput: K concurrent tasks (8 parallel steps + report each)',
      columns: [
        'worker processes',
        'model ms',
        'K',
        'wall s',
        'vs ideal',
        'tasks/min',
        'step calls/s',
        'task p50 s',
        'task p99 s',
        'worker CPU ms/task',
        'server CPU ms/task',
      ],
      rows: r.throughput.map((t) => [
        String(t.workers),
        String(t.latencyMs ?? latency),
        String(t.tasks),
        secs(t.wallMs),
        ratio(t.wallMs / (2 * (t.latencyMs ?? latency))),
        num(t.tasksPerMinute),
        num(t.stepCallsPerSecond),
        secs(t.taskP50Ms),
        secs(t.taskP99Ms),
        num(t.workerCpuMsPerTask, 0),
        num(t.serverCpuMsPerTask, 0),
      ]),
      notes: [
        'workers are compiled worker processes (`npm run worker:prod`: node on dist/, the workflow bundle prebuilt); wall = first start call to last result',
        'ideal = two model latencies: the eight steps at once, then the report',
        'CPU = user + system time from /proc over the batch, divided by its tasks: what limits throughput on a busy two-core machine',
      ],
    });
  }

  if (r.recovery?.length) {
    const shipped = r.recovery.find((v) => v.variant === 'shipped');
    out.push({
      title:
        "7. Recovery: kill to the killed worker's steps running again on the other worker (8 s model latency)",
      columns: ['heartbeat timeout', 'runs', 'steps recovered', 'min s', 'median s', 'max s', 'vs shipped'],
      rows: r.recovery.map((v) => [
        `${v.heartbeat} (${v.variant === 'shipped' ? 'as shipped' : 'before'})`,
        String(v.recoveryMs.length),
        v.stepsKilled.join(', '),
        secs(Math.min(...v.recoveryMs)),
        secs(median(v.recoveryMs)),
        secs(Math.max(...v.recoveryMs)),
        shipped ? ratio(median(v.recoveryMs) / median(shipped.recoveryMs)) : 'n/a',
      ]),
      notes: [
        'two compiled worker processes share a task queue; the worker holding the most running steps of an 8-step task is frozen and SIGKILLed',
        "recovery = kill to the last of its steps started again (the server's lastStartedTime of the retried attempt): heartbeat timeout, then the retry policy's first interval (1 s here)",
      ],
    });
  }

  if (r.footprints?.length || r.throughput?.length || r.fanOut?.length) {
    const rows: string[][] = [];
    for (const f of r.footprints ?? []) {
      const how =
        f.runtime === 'compiled' ? 'compiled worker, prebuilt bundle' : 'tsx worker, bundling at start';
      rows.push(
        [`${how}: RSS idle (MiB; whole process tree)`, `${mib(f.idleRssKib)} (${mib(f.idleTreeRssKib)})`],
        [
          `${how}: RSS with ${f.gatedTasks} tasks waiting at the plan gate (MiB; tree)`,
          `${mib(f.waitingRssKib)} (${mib(f.waitingTreeRssKib)})`,
        ],
        [`${how}: time to start ${f.gatedTasks} gated tasks and see all waiting (s)`, num(f.startSeconds, 1)],
      );
      if (f.readySeconds !== undefined) {
        rows.push([`${how}: spawn to polling (s)`, num(f.readySeconds, 1)]);
      }
    }
    const f = r.footprints?.[0];
    if (f) {
      rows.push([
        'history of a task waiting at its gate (events; KiB)',
        `${f.waitingEvents}; ${kib(f.waitingHistoryBytes)}`,
      ]);
    }
    const done = r.throughput?.[0];
    if (done)
      rows.push([
        'history of a completed 8-step task (events; KiB)',
        `${done.events}; ${kib(done.historyBytes)}`,
      ]);
    // Per step within one history: the widest fan-out that ran without batch children.
    const inline = (r.fanOut ?? []).filter((x) => x.workflows === 1);
    const one = inline.find((x) => x.steps === 1);
    const widest = inline.length ? inline.reduce((a, b) => (b.steps > a.steps ? b : a)) : undefined;
    if (one && widest && widest.steps > 1) {
      rows.push([
        `history per parallel step (events; bytes), from N=1 vs N=${widest.steps}`,
        `${num((widest.events - one.events) / (widest.steps - 1), 2)}; ${num((widest.historyBytes - one.historyBytes) / (widest.steps - 1), 0)}`,
      ]);
    }
    if (one && r.overhead && r.overhead.calls > 1) {
      rows.push([
        `history per sequential step (events; bytes), from a ${r.overhead.calls}-step chain`,
        `${num((r.overhead.events - one.events) / (r.overhead.calls - 1), 2)}; ${num((r.overhead.historyBytes - one.historyBytes) / (r.overhead.calls - 1), 0)}`,
      ]);
    }
    out.push({
      title: '4. Footprint',
      columns: ['measure', 'value'],
      rows,
      notes: f
        ? [
            `RSS from /proc of the worker's node process, 3 s after the last task reached its gate; the sticky cache bounded to ${f.maxCachedWorkflows} workflow runs (BATON_MAX_CACHED_WORKFLOWS), so most waiting tasks are evicted and replay their history at their next workflow task`,
            'under tsx the tree adds the launcher (a second node process) and esbuild',
          ]
        : [],
    });
  }

  if (r.baselines?.length) {
    const baton = new Map(
      (r.throughput ?? [])
        .filter((t) => t.workers === 1 && (t.latencyMs ?? latency) === latency)
        .map((t) => [t.tasks, t.wallMs]),
    );
    const of = (system: BaselineResult['system'], k: number): BaselineResult | undefined =>
      r.baselines?.find((b) => b.system === system && b.tasks === k);
    const ks = [...new Set(r.baselines.map((b) => b.tasks))].sort((a, b) => a - b);
    const lg = r.baselines.find((b) => b.checkpointsPerTask !== undefined);
    out.push({
      title: `5. Side by side: same 8-step task, same stand-in, model latency ${latency} ms`,
      columns: [
        'K tasks',
        'Baton s (1 worker)',
        'Promise.all s',
        'LangGraph+SQLite s',
        'Baton / Promise.all',
        'Baton / LangGraph',
      ],
      rows: ks.map((k) => {
        const b = baton.get(k) ?? Number.NaN;
        const p = of('Promise.all', k)?.wallMs ?? Number.NaN;
        const l = of('LangGraph + SQLite checkpointer', k)?.wallMs ?? Number.NaN;
        return [String(k), secs(b), secs(p), secs(l), ratio(b / p), ratio(b / l)];
      }),
      notes: [
        'Promise.all: the steps in parallel then the report, state in memory (nothing survives a crash)',
        `LangGraph: Send fan-out to a step node, join in a report node, SqliteSaver on disk${lg ? ` (${num(lg.checkpointsPerTask ?? Number.NaN)} checkpoints per task)` : ''}; one process`,
        'Baton: the figures of table 3 (one worker process), durable on the Temporal server',
      ],
    });
  }

  const tuningRows: string[][] = [];
  const chainBase = r.chainVariants?.find((v) => v.options === 'shipped');
  for (const v of r.chainVariants ?? []) {
    tuningRows.push([
      `chain, ${v.calls} calls, 0 ms`,
      v.variant,
      `${ms(v.cycle.median)} / ${ms(v.cycle.p99)} ms per call`,
      `dispatch ${ms(v.dispatch.median)} ms`,
      chainBase ? ratio(v.cycle.median / chainBase.cycle.median) : 'n/a',
    ]);
  }
  const eagerBase = r.eagerStart?.find((e) => !e.requestEagerStart);
  for (const e of r.eagerStart ?? []) {
    tuningRows.push([
      `one-step task, ${e.tasks} runs, 0 ms`,
      `requestEagerStart: ${e.requestEagerStart} (eagerly started ${e.eagerlyStarted}/${e.tasks})`,
      `task ${ms(e.task.median)} / ${ms(e.task.p99)} ms`,
      `start -> first activity ${ms(e.startToFirstActivity.median)} ms`,
      eagerBase ? ratio(e.task.median / eagerBase.task.median) : 'n/a',
    ]);
  }
  const slotBase = r.activitySlots?.[0];
  for (const t of r.activitySlots ?? []) {
    tuningRows.push([
      `${t.tasks} tasks at once, in-process worker, ${t.latencyMs} ms`,
      t.variant,
      `wall ${secs(t.wallMs)} s`,
      `${num(t.tasksPerMinute)} tasks/min`,
      slotBase ? ratio(t.wallMs / slotBase.wallMs) : 'n/a',
    ]);
  }
  if (r.bookkeeping) {
    const b = r.bookkeeping;
    const how = `${b.localActivities} local activities, ${b.activities} activities`;
    tuningRows.push(
      [
        'bookkeeping, one-step task, 0 ms',
        `task start -> step scheduled (${how})`,
        `${ms(b.start)} ms`,
        'config snapshot',
        'n/a',
      ],
      [
        'bookkeeping, one-step task, 0 ms',
        `report -> task completed (${how})`,
        `${ms(b.end)} ms`,
        'citation pass, publishing',
        'n/a',
      ],
    );
  }
  if (tuningRows.length) {
    out.push({
      title: '6. Engine tuning (in-process workers; ratio < 1 is faster than the first row of its kind)',
      columns: ['workload', 'variant', 'figure', 'detail', 'vs baseline'],
      rows: tuningRows,
      notes: [
        'bookkeeping = the engine time at each end of a task (server timestamps): workflow started -> its step scheduled; the report call completed -> workflow completed',
      ],
    });
  }
  if (r.profile) out.push(...profileTables(r.profile));
  const goals = goalsTable(r);
  if (goals) out.push(goals);
  return out;
}

export function machineMarkdown(m: Machine): string {
  return [
    `Run of ${m.date} on ${m.cpuModel}, \`nproc\` ${m.nproc}, Node ${m.node} (${m.platform}), ${m.temporalCli}.`,
    `Load average at start ${m.loadStart.map((x) => x.toFixed(2)).join(' ')}${m.loadEnd ? `, at end ${m.loadEnd.map((x) => x.toFixed(2)).join(' ')}` : ''} (other work shared the machine).`,
    '',
    '```',
    `$ free -h`,
    m.memory.trimEnd(),
    '```',
  ].join('\n');
}

export function resultsMarkdown(r: Results): string {
  const parts = [machineMarkdown(r.machine), ...tables(r).map(renderMarkdown)];
  if (r.capped.length) parts.push(`Capped in this run:\n\n${r.capped.map((c) => `- ${c}`).join('\n')}`);
  return parts.join('\n\n');
}

/** The headline figures of a run, as a short table (docs/evaluation.md keeps one). */
export function summaryMarkdown(r: Results): string {
  const rows: string[][] = [];
  const o = r.overhead;
  if (o) {
    rows.push([
      'Engine overhead per specialist call (0 ms model)',
      `${ms(o.temporal.cycle.median)} ms median, ${ms(o.temporal.cycle.p99)} ms p99 (in process: ${ms(o.activityInProcess.median)} ms)`,
    ]);
  }
  const fanOut = r.fanOut ?? [];
  const widest = fanOut.length
    ? fanOut.reduce((a, b) =>
        b.steps > a.steps || (b.steps === a.steps && b.maxParallel > a.maxParallel) ? b : a,
      )
    : undefined;
  if (widest) {
    rows.push([
      `${widest.steps} parallel steps (maxParallel ${widest.maxParallel}), ${r.settings.latencyMs} ms model latency`,
      `${secs(widest.phaseMs)} s (${ratio(widest.phaseMs / r.settings.latencyMs)} the ideal)`,
    ]);
  }
  for (const t of (r.throughput ?? []).filter(
    (x) => x.tasks === Math.max(...(r.throughput ?? []).map((y) => y.tasks)),
  )) {
    const tLatency = t.latencyMs ?? r.settings.latencyMs;
    rows.push([
      `${t.tasks} tasks at once, ${t.workers} worker process${t.workers > 1 ? 'es' : ''}, ${tLatency / 1000} s model latency`,
      `${secs(t.wallMs)} s (${ratio(t.wallMs / (2 * tLatency))} the ideal), ${num(t.tasksPerMinute)} tasks/min`,
    ]);
  }
  for (const f of r.footprints ?? []) {
    rows.push([
      `Worker memory (${f.runtime}) with ${f.gatedTasks} tasks waiting at a gate`,
      `${mib(f.waitingRssKib)} MiB RSS (idle ${mib(f.idleRssKib)} MiB)`,
    ]);
  }
  const [shipped, before] = [
    r.recovery?.find((v) => v.variant === 'shipped'),
    r.recovery?.find((v) => v.variant === 'before'),
  ];
  if (shipped && before) {
    rows.push([
      "A killed worker's steps running again on another",
      `${secs(median(shipped.recoveryMs))} s with heartbeat ${shipped.heartbeat} (${secs(median(before.recoveryMs))} s with ${before.heartbeat} before)`,
    ]);
  }
  const done = r.throughput?.[0];
  if (done) rows.push(['History of one 8-step task', `${done.events} events, ${kib(done.historyBytes)} KiB`]);
  const [shippedSlots, sdkSlots] = r.activitySlots ?? [];
  if (shippedSlots && sdkSlots) {
    rows.push([
      `${shippedSlots.tasks} tasks at ${shippedSlots.latencyMs / 1000} s model latency, one worker`,
      `${secs(shippedSlots.wallMs)} s as shipped, ${secs(sdkSlots.wallMs)} s with the SDK's default worker options`,
    ]);
  }
  const baton1 = r.throughput?.find((t) => t.workers === 1 && t.tasks === 1);
  const p1 = r.baselines?.find((b) => b.system === 'Promise.all' && b.tasks === 1);
  const l1 = r.baselines?.find((b) => b.system !== 'Promise.all' && b.tasks === 1);
  if (baton1 && p1 && l1) {
    rows.push([
      'One task vs Promise.all / LangGraph+SQLite',
      `${ratio(baton1.wallMs / p1.wallMs)} / ${ratio(baton1.wallMs / l1.wallMs)}`,
    ]);
  }
  return [
    `| Measure (\`npm run bench\`, ${r.machine.nproc} cores, ${r.machine.date.slice(0, 10)}) | Figure |`,
    '| --- | --- |',
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');
}

const START = '<!-- bench:results:start -->';
const END = '<!-- bench:results:end -->';

/** Writes `text` to `file` formatted by Prettier with the project's settings (`npm run lint` checks it). */
export async function writeFormatted(file: string, text: string): Promise<void> {
  const options = (await resolveConfig(file)) ?? {};
  await fs.writeFile(file, await format(text, { ...options, filepath: file }), 'utf8');
}

/** Replaces the text between the result markers of `file` (a full run's figures). */
export async function updateReadme(file: string, r: Results): Promise<boolean> {
  const text = await fs.readFile(file, 'utf8');
  const from = text.indexOf(START);
  const to = text.indexOf(END);
  if (from < 0 || to < from) return false;
  await writeFormatted(
    file,
    `${text.slice(0, from + START.length)}\n\n${resultsMarkdown(r)}\n\n${text.slice(to)}`,
  );
  return true;
}
