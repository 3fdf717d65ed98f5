/**
 * `npm run bench [-- --quick] [--latency-ms N]`: Baton's benchmarks (bench/README.md).
 *
 * Starts its own Temporal dev server (fresh SQLite database in a temporary folder) and stand-in
 * models, runs real workers (in this process for the tuning variants, `tsx workers/main.ts`
 * processes for throughput and footprint), prints the figures as tables and writes them to
 * bench/results.json; a full run also records them in bench/README.md. Nothing here is asserted:
 * the figures depend on the machine. Everything started is stopped on exit, Ctrl-C included.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { command, intOption, runMain } from '../lib/cli';
import { resolveTemporalCli } from '../local/temporal';
import { causes } from './baton';
import { measureRecovery } from './recovery';
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
} from './sections';
import { renderText } from './stats';
import { BENCH_CONFIG, loadWorkload } from './workload';

const USAGE = `usage: npm run bench [-- --quick] [--latency-ms N] | [-- --report]

  --quick          small sizes (about two minutes): a smoke run
  --latency-ms N   simulated model latency for fan-out, throughput and side by side (default 1000)
  --report         measure nothing: print the tables of bench/results.json again (and, for a full
                   run's results, record them in bench/README.md)`;

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
  options: { quick: { type: 'boolean' }, report: { type: 'boolean' }, 'latency-ms': { type: 'string' } },
} as const;

const main = command(BENCH_COMMAND, async ({ values }) => {
  const args = {
    quick: values.quick === true,
    report: values.report === true,
    latencyMs: intOption('latency-ms', values['latency-ms'], 1, 60_000) ?? 1000,
  };
  if (args.report) return report();
  const settings = settingsFor(args.quick, args.latencyMs);
  const log = (line: string): void => console.error(line);
  const rig = await Rig.create(log);
  const results: Results = {
    mode: args.quick ? 'quick' : 'full',
    machine: await machine(),
    settings,
    capped: [],
    errors: [],
    sectionSeconds: {},
  };
  if (args.quick) {
    results.capped.push(
      `--quick: chain ${settings.chainSteps} calls, fan-out N ≤ ${Math.max(...settings.fanOut.map((f) => f.steps))}, K ≤ ${Math.max(...settings.throughputTasks)} tasks, ${settings.gatedTasks} gated tasks, 1 run per figure (full run: 100 calls, N ≤ 128, K ≤ 100, 500 gated tasks, medians of 3, scale variants)`,
    );
  }
  try {
    log(`bench (${results.mode}): temporary folder ${rig.root}`);
    const server = await rig.startServer();
    const [fast, slow] = [await rig.startStandIn(0), await rig.startStandIn(settings.latencyMs)];
    log('bundling the workflow code ...');
    const ctx: Ctx = {
      rig,
      server,
      bundle: await rig.bundle(),
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

    // The sections in order of importance: past the time budget the later ones are cut short.
    results.overhead = await section('1. overhead per call', () => measureOverhead(ctx));
    results.fanOut = await section('2. fan-out', () => measureFanOut(ctx));
    results.baselines = await section('5. Promise.all and LangGraph', () => measureBaselines(ctx));

    // Worker processes on one task queue share an artifact store, as a deployment's workers share a
    // volume. The footprint has a worker of its own, so that throughput starts from fresh workers.
    const processSetup = (taskQueue: string) => ({
      taskQueue,
      configDir: BENCH_CONFIG,
      standInUrl: slow.url,
      dataDir: path.join(rig.root, taskQueue),
    });
    const gated = processSetup(rig.unique('bench-gated'));
    const gatedWorker = await section('spawning a worker process for the footprint', () =>
      rig.spawnWorker('worker-gated', server, gated),
    );
    if (gatedWorker) {
      results.footprint = await section('4. footprint', () =>
        measureFootprint(ctx, gatedWorker, gated.taskQueue),
      );
      await gatedWorker.kill();
    }
    const setup = processSetup(rig.unique('bench-processes'));
    const first = await section('spawning worker process 1', () =>
      rig.spawnWorker('worker-1', server, setup),
    );
    if (first) {
      results.throughput = await section('3. throughput, 1 worker process', () =>
        measureThroughput(ctx, 1, setup.taskQueue),
      );
      const second = await section('spawning worker process 2', () =>
        rig.spawnWorker('worker-2', server, setup),
      );
      const two =
        second &&
        (await section('3. throughput, 2 worker processes', () =>
          measureThroughput(ctx, 2, setup.taskQueue),
        ));
      if (two) results.throughput = [...(results.throughput ?? []), ...two];
    }
    await rig.procs.killAll();
    results.recovery = await section('7. recovery after a worker is killed', () =>
      measureRecovery(ctx, settings.repeats),
    );

    if (settings.scaleVariants) {
      results.activitySlots = await section('6. tuning: activity slots', () => measureActivitySlots(ctx));
    }
    results.chainVariants = await section('6. tuning: worker options', () => measureChainVariants(ctx));
    const eager = await section('6. tuning: eager workflow start, bookkeeping', () => measureEagerStart(ctx));
    results.eagerStart = eager?.eager;
    results.bookkeeping = eager?.bookkeeping;
  } finally {
    results.machine.loadEnd = os.loadavg();
    await rig.cleanup();
  }

  const file = path.join(__dirname, 'results.json');
  await writeFormatted(file, JSON.stringify(results));
  await present(results);
  console.log(
    `\nwrote ${path.relative(process.cwd(), file)} (${(rig.elapsed() / 1000).toFixed(0)} s in all)`,
  );
  return results.errors.length ? 1 : 0;
});

/** Prints the tables and, for a full run that measured everything, records them in bench/README.md. */
async function present(results: Results): Promise<void> {
  for (const table of tables(results)) console.log(renderText(table));
  if (results.errors.length) console.log(`\nFAILED:\n${results.errors.map((e) => `  * ${e}`).join('\n')}`);
  if (results.capped.length) console.log(`\nCapped:\n${results.capped.map((c) => `  * ${c}`).join('\n')}`);
  console.log(`\nHeadline figures (docs/evaluation.md, "Benchmarks"):\n\n${summaryMarkdown(results)}`);
  if (results.mode === 'full' && results.errors.length === 0) {
    const readme = path.join(__dirname, 'README.md');
    if (await updateReadme(readme, results)) {
      console.log(`\nrecorded the figures in ${path.relative(process.cwd(), readme)}`);
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
