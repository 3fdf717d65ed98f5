/**
 * `npm run bench [-- --quick] [--latency-ms N] [--only <sections>]`: Baton's benchmarks (bench/README.md).
 *
 * Starts its own Temporal dev server (fresh SQLite database in a temporary folder) and stand-in
 * models, runs real workers (in this process for the tuning variants; worker processes for
 * throughput, footprint and recovery: the compiled worker `npm run build` makes, and for the
 * footprint also `tsx workers/main.ts`), prints the figures as tables and writes them to
 * bench/results.json; a full run also records them in bench/README.md and draws
 * bench/side-by-side.svg. Nothing here is asserted: the figures depend on the machine. Everything
 * started is stopped on exit, Ctrl-C included.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { command, intOption, runMain, UsageError } from '../lib/cli';
import { resolveTemporalCli } from '../local/temporal';
import { causes } from './baton';
import { measureProfile } from './profile';
import { measureRecovery } from './recovery';
import { sideBySideSvg } from './chart';
import type { WorkerRuntime } from './processes';
import { Rig } from './rig';
import { summaryMarkdown, tables, updateReadme, writeFormatted, type Machine, type Results } from './report';
import {
  measureActivitySlots,
  measureBaselines,
  measureChainVariants,
  measureEagerStart,
  measureFanOut,
  measureFootprint,
  measureOverhead,
  measureThroughput,
  settingsFor,
  type Ctx,
  type FootprintResult,
} from './sections';
import { renderText } from './stats';
import { BENCH_CONFIG, loadWorkload } from './workload';

/** The sections `--only` can name, in the order a run takes them. */
export const SECTIONS = [
  'overhead',
  'fan-out',
  'side-by-side',
  'throughput',
  'profile',
  'recovery',
  'tuning',
  'footprint',
] as const;
type Section = (typeof SECTIONS)[number];

const USAGE = `usage: npm run bench [-- --quick] [--latency-ms N] [--only <section>[,<section>...]] | [-- --report]

  --quick          small sizes (about three minutes): a smoke run
  --latency-ms N   simulated model latency for fan-out, throughput and side by side (default 1000)
  --only <names>   run only these sections (repeat it, or separate names by commas):
                   ${SECTIONS.join(', ')}
                   (side-by-side without throughput has no Baton column)
  --report         measure nothing: print the tables of bench/results.json again (and, for a full
                   run's results, record them in bench/README.md and draw bench/side-by-side.svg)

A full run writes bench/results.json; a --quick or --only run writes bench/results-partial.json.`;

/** The sections `--only` names (all of them without it). @throws UsageError on an unknown name */
function sectionsFrom(only: string[] | undefined): Set<Section> {
  if (!only?.length) return new Set(SECTIONS);
  const names = only
    .flatMap((o) => o.split(','))
    .map((n) => n.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !(SECTIONS as readonly string[]).includes(n));
  if (unknown.length || names.length === 0) {
    throw new UsageError(`--only takes ${SECTIONS.join(', ')} (got "${only.join(',')}")`);
  }
  return new Set(names as Section[]);
}

/** Output of a command, or a note that it could not be run. */
function commandOutput(file: string, args: string[]): string {
  try {
    // trimEnd: `free -h` aligns its header with leading spaces.
    return execFileSync(file, args, { encoding: 'utf8', timeout: 5000 }).trimEnd();
  } catch (err) {
    return `(${file} failed: ${err instanceof Error ? err.message : String(err)})`;
  }
}

async function machine(): Promise<Machine> {
  const cli = await resolveTemporalCli().catch(() => undefined);
  const version = cli?.path ? commandOutput(cli.path, ['--version']) : 'Temporal CLI from the SDK download';
  return {
    date: new Date().toISOString(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown CPU',
    nproc: commandOutput('nproc', []),
    memory: commandOutput('free', ['-h']),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    temporalCli: version,
    loadStart: os.loadavg(),
  };
}

const BENCH_COMMAND = {
  name: 'bench',
  usage: USAGE,
  options: {
    quick: { type: 'boolean' },
    report: { type: 'boolean' },
    'latency-ms': { type: 'string' },
    only: { type: 'string', multiple: true },
  },
} as const;

const main = command(BENCH_COMMAND, async ({ values }) => {
  const args = {
    quick: values.quick === true,
    report: values.report === true,
    latencyMs: intOption('latency-ms', values['latency-ms'], 1, 60_000) ?? 1000,
    only: values.only?.length ? sectionsFrom(values.only) : undefined,
  };
  if (args.report) return report();
  const run = (name: Section): boolean => !args.only || args.only.has(name);
  const settings = settingsFor(args.quick, args.latencyMs);
  const log = (line: string): void => console.error(line);
  const rig = await Rig.create(log);
  const results: Results = {
    mode: args.quick ? 'quick' : 'full',
    ...(args.only ? { only: [...args.only] } : {}),
    machine: await machine(),
    settings,
    capped: [],
    errors: [],
    sectionSeconds: {},
  };
  if (args.quick) {
    results.capped.push(
      `--quick: chain ${settings.chainSteps} calls, fan-out N ≤ ${Math.max(...settings.fanOut.map((f) => f.steps))}, K ≤ ${Math.max(...settings.throughputTasks)} tasks, ${settings.gatedTasks} gated tasks (${settings.gatedTasksTsx} on tsx), ${settings.slowTasks} tasks at ${settings.slowLatencyMs / 1000} s, 1 run per figure (full run: 100 calls, N ≤ 128, K ≤ 100, 5,000 gated tasks (500 on tsx), 100 tasks at 10 s, medians of 3, scale variants)`,
    );
  }
  try {
    log(
      `bench (${results.mode}${args.only ? `, only ${[...args.only].join(', ')}` : ''}): temporary folder ${rig.root}`,
    );
    const server = await rig.startServer();
    const [fast, slow] = [await rig.startStandIn(0), await rig.startStandIn(settings.latencyMs)];
    const processes = run('footprint') || run('throughput') || run('profile') || run('recovery');
    if (processes) log('npm run build (the compiled worker and its workflow bundle) ...');
    const compiledBundle = processes ? rig.build() : '';
    log('bundling the workflow code for in-process workers ...');
    const ctx: Ctx = {
      rig,
      server,
      bundle: await rig.bundle(),
      compiledBundle,
      fast,
      slow,
      workload: await loadWorkload(),
      settings,
      capped: results.capped,
      log,
    };
    /** Runs one section; a failure is reported and the run goes on with the next section. */
    const section = async <T>(name: string, fn: () => Promise<T>): Promise<T | undefined> => {
      log(`\n[${(rig.elapsed() / 1000).toFixed(0)}s] ${name}`);
      const t0 = Date.now();
      try {
        return await fn();
      } catch (err) {
        const message = `${name}: ${causes(err)}`;
        results.errors.push(message);
        log(`  FAILED ${message}`);
        return undefined;
      } finally {
        results.sectionSeconds[name] = (Date.now() - t0) / 1000;
      }
    };

    // The sections in order of importance (the footprint last, see there): past the time budget the
    // later ones are cut short.
    if (run('overhead')) results.overhead = await section('1. overhead per call', () => measureOverhead(ctx));
    if (run('fan-out')) results.fanOut = await section('2. fan-out', () => measureFanOut(ctx));
    if (run('side-by-side')) {
      results.baselines = await section('5. Promise.all and LangGraph', () => measureBaselines(ctx));
    }

    // Worker processes on one task queue share an artifact store, as a deployment's workers share a
    // volume. Each footprint has a worker of its own, so that throughput starts from fresh workers.
    const processSetup = (taskQueue: string, runtime: WorkerRuntime, standInUrl = slow.url) => ({
      taskQueue,
      configDir: BENCH_CONFIG,
      standInUrl,
      dataDir: path.join(rig.root, taskQueue),
      runtime,
      bundle: compiledBundle,
    });
    if (run('throughput')) {
      const setup = processSetup(rig.unique('bench-processes'), 'compiled');
      const first = await section('spawning worker process 1', () =>
        rig.spawnWorker('worker-1', server, setup),
      );
      if (first) {
        results.throughput = await section('3. throughput, 1 worker process', () =>
          measureThroughput(ctx, 1, setup.taskQueue, settings.throughputTasks, settings.latencyMs),
        );
        const second = await section('spawning worker process 2', () =>
          rig.spawnWorker('worker-2', server, setup),
        );
        const two =
          second &&
          (await section('3. throughput, 2 worker processes', () =>
            measureThroughput(ctx, 2, setup.taskQueue, settings.throughputTasks, settings.latencyMs),
          ));
        if (two) results.throughput = [...(results.throughput ?? []), ...two];
      }
      await rig.procs.killAll();
      // Many tasks at a latency closer to real model calls: the slots, not the CPU, set the pace.
      const slowStandIn = await rig.startStandIn(settings.slowLatencyMs);
      const slowSetup = processSetup(rig.unique('bench-slow'), 'compiled', slowStandIn.url);
      const slowWorker = await section('spawning a worker process for the slow model', () =>
        rig.spawnWorker('worker-slow', server, slowSetup),
      );
      if (slowWorker) {
        const slowRows = await section(
          `3. throughput, ${settings.slowTasks} tasks at ${settings.slowLatencyMs} ms model latency`,
          () => measureThroughput(ctx, 1, slowSetup.taskQueue, [settings.slowTasks], settings.slowLatencyMs),
        );
        if (slowRows) results.throughput = [...(results.throughput ?? []), ...slowRows];
      }
      await rig.procs.killAll();
    }
    if (run('profile')) {
      results.profile = await section('8. where the CPU goes', () => measureProfile(ctx));
    }
    if (run('recovery')) {
      results.recovery = await section('7. recovery after a worker is killed', () =>
        measureRecovery(ctx, settings.repeats),
      );
    }

    if (run('tuning')) {
      if (settings.scaleVariants) {
        results.activitySlots = await section('6. tuning: activity slots', () => measureActivitySlots(ctx));
      }
      results.chainVariants = await section('6. tuning: worker options', () => measureChainVariants(ctx));
      const eager = await section('6. tuning: eager workflow start, bookkeeping', () =>
        measureEagerStart(ctx),
      );
      results.eagerStart = eager?.eager;
      results.bookkeeping = eager?.bookkeeping;
    }
    // Last: it leaves thousands of tasks open at their gate until the server stops, so that every other
    // section measures a server without them.
    if (run('footprint')) {
      const footprints: FootprintResult[] = [];
      for (const [runtime, tasks] of [
        ['compiled', settings.gatedTasks],
        ['tsx', settings.gatedTasksTsx],
      ] as const) {
        const gated = processSetup(rig.unique(`bench-gated-${runtime}`), runtime);
        const worker = await section(`spawning a ${runtime} worker process for the footprint`, () =>
          rig.spawnWorker(`worker-gated-${runtime}`, server, gated),
        );
        if (!worker) continue;
        const footprint = await section(`4. footprint, ${runtime} worker, ${tasks} gated tasks`, () =>
          measureFootprint(ctx, worker, gated.taskQueue, runtime, tasks),
        );
        if (footprint) footprints.push(footprint);
        await worker.kill();
      }
      results.footprints = footprints;
    }
  } finally {
    results.machine.loadEnd = os.loadavg();
    await rig.cleanup();
  }

  const file = path.join(__dirname, complete(results) ? 'results.json' : 'results-partial.json');
  await writeFormatted(file, JSON.stringify(results));
  await present(results);
  console.log(
    `\nwrote ${path.relative(process.cwd(), file)} (${(rig.elapsed() / 1000).toFixed(0)} s in all)`,
  );
  return results.errors.length ? 1 : 0;
});

/** A full run of every section: the one whose figures bench/results.json and bench/README.md keep. */
function complete(results: Results): boolean {
  return results.mode === 'full' && !results.only;
}

/**
 * Prints the tables and, for a full run that measured everything, records them in bench/README.md
 * and draws the side by side in bench/side-by-side.svg.
 */
async function present(results: Results): Promise<void> {
  for (const table of tables(results)) console.log(renderText(table));
  if (results.errors.length) console.log(`\nFAILED:\n${results.errors.map((e) => `  * ${e}`).join('\n')}`);
  if (results.capped.length) console.log(`\nCapped:\n${results.capped.map((c) => `  * ${c}`).join('\n')}`);
  console.log(`\nHeadline figures (docs/evaluation.md, "Benchmarks"):\n\n${summaryMarkdown(results)}`);
  if (complete(results) && results.errors.length === 0) {
    const readme = path.join(__dirname, 'README.md');
    if (await updateReadme(readme, results)) {
      console.log(`\nrecorded the figures in ${path.relative(process.cwd(), readme)}`);
    }
    const svg = sideBySideSvg(results);
    if (svg) {
      const chart = path.join(__dirname, 'side-by-side.svg');
      await fs.writeFile(chart, svg, 'utf8');
      console.log(`drew ${path.relative(process.cwd(), chart)}`);
    }
  }
}

/** `--report`: the tables of the last run's bench/results.json, measured again by nobody. */
async function report(): Promise<number> {
  const file = path.join(__dirname, 'results.json');
  // The benchmark's own output file, written by this program: trusted to have its shape.
  const results = JSON.parse(await fs.readFile(file, 'utf8')) as Results;
  await present(results);
  return 0;
}

if (require.main === module) runMain(main);
