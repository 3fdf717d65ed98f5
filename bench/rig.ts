/**
 * The benchmark's environment: a temporary folder, a Temporal dev server with a fresh database in
 * it, stand-in models, the workflow bundle, workers in this process (for the tuning variants) and
 * worker processes, as an operator runs them: the compiled worker of `npm run worker:prod` (built by
 * `npm run build` at the start of the run), or `tsx workers/main.ts` (`npm run worker`).
 *
 * Everything started here is registered for cleanup, which runs once: at the end, on an error, or
 * on Ctrl-C / SIGTERM (worker process trees are SIGKILLed, the dev server stopped, the stand-ins
 * closed, the temporary folder removed).
 */
import { Client } from '@temporalio/client';
import {
  bundleWorkflowCode,
  DefaultLogger,
  Runtime,
  Worker,
  type WorkerOptions,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createActivities } from '../activities';
import { PROJECT_ROOT, type ActivityOptions } from '../activities/options';
import { startDevServer, type DevServer } from '../local/temporal';
import { startStandIn, type StandIn } from '../standin/server';
import { COMPILED_WORKER, liveTree, Processes, type WorkerProcess, type WorkerRuntime } from './processes';
import { createBatonWorker } from '../workers/worker';
import { withTimeout } from './baton';
import { SEARCH_ATTRIBUTES } from '../contract/messages';

/** Options of `Worker.create` a tuning variant may set on top of the SDK's defaults. */
export type TuningOptions = Pick<
  WorkerOptions,
  | 'maxCachedWorkflows'
  | 'reuseV8Context'
  | 'maxConcurrentActivityTaskExecutions'
  | 'maxConcurrentWorkflowTaskExecutions'
  | 'maxConcurrentActivityTaskPolls'
  | 'maxConcurrentWorkflowTaskPolls'
  | 'maxEagerActivityReservationsPerWorkflowTask'
>;

/**
 * How an in-process worker is built: `shipped` is Baton's own `createBatonWorker` (whatever
 * workers/worker.ts sets); a `TuningOptions` object is `Worker.create` with the same activities and
 * bundle and only those options over the SDK's defaults (`{}`: the SDK's defaults alone).
 */
export type WorkerVariant = 'shipped' | TuningOptions;

/** Clock ticks per second of /proc/<pid>/stat's CPU times. */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time (user + system) the processes used so far, in milliseconds; gone processes count 0. */
export async function cpuMs(pids: readonly number[]): Promise<number> {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
      // Fields after "pid (comm) ": state is the 1st, utime the 12th, stime the 13th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // Ended meanwhile.
    }
  }
  return (ticks * 1000) / CLOCK_TICKS;
}

/** Resident set size of one process, from /proc. */
export interface ProcessRss {
  pid: number;
  command: string;
  rssKib: number;
}

export class Rig {
  readonly startedAt = Date.now();
  readonly procs = new Processes();
  private cleanups: Array<() => Promise<unknown>> = [];
  private cleaning: Promise<void> | undefined;
  private counter = 0;

  private constructor(
    readonly root: string,
    readonly log: (line: string) => void,
  ) {}

  /** Makes the temporary folder and installs the cleanup on Ctrl-C and SIGTERM. */
  static async create(log: (line: string) => void): Promise<Rig> {
    // The SDK's own signal handling would shut workers down behind the rig's back; the rig does it.
    Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-bench-'));
    const rig = new Rig(root, log);
    // `on`, not `once`: a Ctrl-C reaches this process twice (from the terminal, and relayed by the
    // `tsx` launcher), and a signal with no listener left would end the process mid-cleanup.
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.on(signal, () => {
        if (rig.cleaning) return;
        log(`\n${signal}: stopping workers and the dev server, removing ${root} ...`);
        void rig.cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
      });
    }
    return rig;
  }

  /**
   * Kills the worker processes, runs every other cleanup newest first, and removes the temporary
   * folder; safe to call more than once (later calls wait for the first).
   */
  cleanup(): Promise<void> {
    // Bounded: a dev server already stopped by the same Ctrl-C must not hold the rest up.
    const attempt = (fn: () => Promise<unknown>): Promise<unknown> =>
      withTimeout(fn(), 20_000, 'a cleanup step').catch((err: unknown) =>
        this.log(`cleanup: ${err instanceof Error ? err.message : String(err)}`),
      );
    this.cleaning ??= (async () => {
      await attempt(() => this.procs.killAll());
      for (const fn of [...this.cleanups].reverse()) await attempt(fn);
      await attempt(() => fs.rm(this.root, { recursive: true, force: true }));
    })();
    return this.cleaning;
  }

  /** Milliseconds since the rig was created. */
  elapsed(): number {
    return Date.now() - this.startedAt;
  }

  /** A name unique within this run, e.g. for task queues and workflow id prefixes. */
  unique(prefix: string): string {
    this.counter += 1;
    return `${prefix}-${this.counter}-${randomUUID().slice(0, 6)}`;
  }

  /** The Temporal dev server, with its SQLite database in the temporary folder. */
  async startServer(): Promise<DevServer> {
    const server = await startDevServer({
      dbFile: path.join(this.root, 'temporal.sqlite'),
      searchAttributes: [...SEARCH_ATTRIBUTES],
      log: (line) => this.log(`  ${line}`),
    });
    this.cleanups.push(() => server.stop());
    return server;
  }

  async startStandIn(latencyMs: number): Promise<StandIn> {
    const standIn = await startStandIn({ latencyMs });
    this.cleanups.push(() => standIn.close());
    return standIn;
  }

  /**
   * `npm run build`, as an operator builds a deployment: the compiled worker (dist/) and its workflow
   * bundle, which worker processes of the `compiled` runtime load. Returns the bundle's path.
   */
  build(): string {
    execFileSync('npm', ['run', '--silent', 'build'], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    return path.join(PROJECT_ROOT, path.dirname(path.dirname(COMPILED_WORKER)), 'workflow-bundle.js');
  }

  /** Bundles workflows/ once for every in-process worker (worker processes load `npm run build`'s). */
  bundle(): Promise<WorkflowBundleWithSourceMap> {
    return bundleWorkflowCode({
      workflowsPath: require.resolve('../workflows'),
      logger: new DefaultLogger('WARN'),
    });
  }

  /** Fresh artifact and report folders in the temporary folder. */
  async activityOptions(configDir: string, standInUrl: string): Promise<ActivityOptions> {
    const dir = path.join(this.root, this.unique('activities'));
    await fs.mkdir(dir, { recursive: true });
    return {
      configDir,
      artifactDir: path.join(dir, 'artifacts'),
      reportDir: path.join(dir, 'reports'),
      apiKey: 'bench-key',
      baseURL: standInUrl,
      searchAttributes: true,
    };
  }

  /**
   * Runs `fn` while a worker in this process polls a fresh task queue, then shuts the worker down.
   * `client` is the one `fn` should use (the server's, on the same native connection as the worker,
   * which eager workflow start needs).
   */
  async withWorker<T>(
    server: DevServer,
    bundle: WorkflowBundleWithSourceMap,
    setup: { configDir: string; standInUrl: string; variant: WorkerVariant },
    fn: (taskQueue: string, client: Client) => Promise<T>,
  ): Promise<T> {
    const taskQueue = this.unique('bench');
    const activityOptions = await this.activityOptions(setup.configDir, setup.standInUrl);
    const connection = server.env.nativeConnection;
    const worker =
      setup.variant === 'shipped'
        ? await createBatonWorker({
            connection,
            namespace: server.namespace,
            taskQueue,
            activityOptions,
            workflowBundle: bundle,
          })
        : await Worker.create({
            connection,
            namespace: server.namespace,
            taskQueue,
            activities: createActivities(activityOptions),
            workflowBundle: bundle,
            ...setup.variant,
          });
    const client = new Client({ connection, namespace: server.namespace });
    return worker.runUntil(() => fn(taskQueue, client));
  }

  /**
   * Spawns a worker process against the server and a stand-in, and waits until it polls: the
   * compiled worker with the bundle of {@link build} (`npm run worker:prod`), or, `tsx`, the
   * TypeScript source bundling the workflow code at start (`npm run worker` as shipped). Workers on
   * one task queue share `dataDir`'s artifact store, as a deployment shares a volume: a report may
   * be written by another worker than the steps it reads.
   */
  async spawnWorker(
    label: string,
    server: DevServer,
    setup: {
      taskQueue: string;
      configDir: string;
      standInUrl: string;
      dataDir: string;
      runtime: WorkerRuntime;
      /** The bundle of {@link build}, for the compiled runtime. */
      bundle?: string;
    },
  ): Promise<WorkerProcess> {
    const env = {
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_NAMESPACE: server.namespace,
      BATON_TASK_QUEUE: setup.taskQueue,
      BATON_CONFIG_DIR: setup.configDir,
      ANTHROPIC_BASE_URL: setup.standInUrl,
      ANTHROPIC_API_KEY: 'any',
      BATON_ARTIFACT_DIR: path.join(setup.dataDir, 'artifacts'),
      BATON_REPORT_DIR: path.join(setup.dataDir, 'reports'),
      // INFO: the worker says at that level when it polls, which is how readiness is seen.
      BATON_LOG_LEVEL: 'INFO',
      // Spans are not what is measured (a deployment sends them to a collector, off the worker's
      // critical path); printing each one as a line would be.
      BATON_TRACES: 'off',
      BATON_WORKFLOW_BUNDLE: setup.runtime === 'compiled' ? (setup.bundle ?? '') : '',
    };
    const worker = this.procs.spawnWorker(label, env, PROJECT_ROOT, setup.runtime);
    // Bundling the workflow code takes a while on a busy two-core machine.
    await worker.ready(180_000);
    return worker;
  }

  /** Pids of the Temporal dev server: the `temporal` processes this process started. */
  async serverPids(): Promise<number[]> {
    const pids = await liveTree(process.pid);
    const out: number[] = [];
    for (const pid of pids) {
      const comm = await fs.readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
      if (comm.trim() === 'temporal') out.push(pid);
    }
    return out;
  }

  /** Pids of every live worker process tree. */
  async workerPids(): Promise<number[]> {
    return (await Promise.all(this.procs.all.map((w) => w.livePids()))).flat();
  }

  /** RSS of every live process of a worker (its node; under tsx, also the launcher and esbuild). */
  async rss(worker: WorkerProcess): Promise<ProcessRss[]> {
    const out: ProcessRss[] = [];
    for (const pid of await worker.livePids()) {
      try {
        const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
        const command = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8'))
          .split('\0')
          .filter(Boolean)
          .join(' ');
        const rssKib = Number(/^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1] ?? Number.NaN);
        out.push({ pid, command: command.slice(0, 120), rssKib });
      } catch {
        // The process ended between listing and reading.
      }
    }
    return out;
  }
}
