/**
 * Real worker processes, for the benchmark and the durability and scale tests: spawned as an
 * operator would run them (`tsx workers/main.ts` with the environment, as `npm run worker` does, or
 * the compiled `node dist/workers/main.js` of `npm run worker:prod`), killed the hard way (SIGKILL:
 * no shutdown hook runs), and always cleaned up.
 *
 * `tsx` runs the script in a child `node` process (which has its own `esbuild` child), so killing
 * the `tsx` pid alone would leave the real worker running as an orphan, still polling. A kill
 * therefore freezes the whole process tree (SIGSTOP: a stopped process cannot fork), then SIGKILLs
 * every process in it, and waits until none is left alive. The tree is read from /proc (Linux, like
 * the CI image). Workers stay in the test's process group, so a Ctrl-C in the terminal reaches them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROJECT_ROOT } from '../activities/options';

const TSX = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx');

/** The compiled worker `npm run build` writes (tsconfig.build.json), relative to the tree's root. */
export const COMPILED_WORKER = path.join('dist', 'workers', 'main.js');

/**
 * The Node flags `npm run worker:prod` gives the compiled worker (package.json): a compiled worker
 * spawned here runs with the same, so that its memory is the script's.
 */
export function workerProdNodeFlags(): string[] {
  const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  const script = pkg.scripts['worker:prod'] ?? '';
  const words = script.split(/\s+/);
  return words.slice(words.indexOf('node') + 1).filter((w) => w.startsWith('--'));
}

/**
 * How a worker process runs: `tsx` (the TypeScript source, as `npm run worker`) or `compiled` (plain
 * `node` on {@link COMPILED_WORKER}, as `npm run worker:prod`; `npm run build` must have run).
 */
export type WorkerRuntime = 'tsx' | 'compiled';

/** The line `workers/main.ts` prints once its worker polls the task queue. */
const READY = /Baton worker polling task queue/;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The environment of one worker process (see workers/options.ts and activities/options.ts). */
export interface WorkerEnv {
  TEMPORAL_ADDRESS: string;
  BATON_TASK_QUEUE: string;
  ANTHROPIC_BASE_URL: string;
  BATON_CONFIG_DIR: string;
  BATON_ARTIFACT_DIR: string;
  BATON_REPORT_DIR: string;
  TEMPORAL_NAMESPACE?: string;
  ANTHROPIC_API_KEY?: string;
  BATON_LOG_LEVEL?: string;
  BATON_MAX_CONCURRENT_ACTIVITIES?: string;
  BATON_MAX_CACHED_WORKFLOWS?: string;
  BATON_HEALTH_PORT?: string;
  BATON_TRACES?: string;
  /**
   * A prebuilt workflow bundle (workers/bundle.ts). Default for a worker of this checkout: the test
   * run's (`BATON_TEST_WORKFLOW_BUNDLE`, built by test/global-setup.ts) when there is one; `''` makes
   * the worker bundle `workflows/` at start.
   */
  BATON_WORKFLOW_BUNDLE?: string;
  /** An S3-compatible store instead of the two folders (activities/store.ts), with its credentials. */
  BATON_STORE?: string;
  BATON_S3_ENDPOINT?: string;
  AWS_REGION?: string;
  AWS_ACCESS_KEY_ID?: string;
  AWS_SECRET_ACCESS_KEY?: string;
  /** Payload encryption (workers/codec.ts), which also encrypts what the store holds. */
  BATON_ENCRYPTION_KEY?: string;
  BATON_ENCRYPTION_KEY_ID?: string;
  /** The key the worker signs report provenance with (activities/signing.ts). */
  BATON_PUBLISHER_KEY?: string;
}

interface ProcStat {
  pid: number;
  ppid: number;
  state: string;
}

/** Every process in /proc with its parent and state. */
async function processTable(): Promise<ProcStat[]> {
  const entries = (await fs.readdir('/proc')).filter((e) => /^\d+$/.test(e));
  const stats = await Promise.all(
    entries.map(async (pid): Promise<ProcStat | undefined> => {
      let stat: string;
      try {
        stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
      } catch {
        return undefined; // gone meanwhile
      }
      // "pid (comm) state ppid ...": comm may contain spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return { pid: Number(pid), state: fields[0] ?? '?', ppid: Number(fields[1]) };
    }),
  );
  return stats.filter((s): s is ProcStat => s !== undefined);
}

/** `root` and its descendants that are alive (not zombies: those run nothing). */
export async function liveTree(root: number): Promise<number[]> {
  const table = await processTable();
  const tree = new Set<number>([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of table) {
      if (!tree.has(p.pid) && tree.has(p.ppid)) {
        tree.add(p.pid);
        grew = true;
      }
    }
  }
  return table.filter((p) => tree.has(p.pid) && p.state !== 'Z').map((p) => p.pid);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

export class WorkerProcess {
  private text = '';
  private readonly listeners = new Set<() => void>();
  private exit: Exit | undefined;
  /** Set once a kill has seen the whole tree gone: its pids may be reused by others, never signal them. */
  private dead = false;
  /** Every pid seen in this worker's tree (the tree's links break once the root process is gone). */
  private readonly known = new Set<number>();
  /** Resolves when the root process has exited (never rejects). */
  readonly exited: Promise<Exit>;
  private readonly spawnedAt = Date.now();
  /** Seconds from the spawn to the worker polling, once {@link ready} has seen it. */
  readySeconds: number | undefined;

  constructor(
    readonly label: string,
    private readonly child: ChildProcess,
    private readonly startedAt: number,
  ) {
    this.known.add(child.pid!);
    const append = (stream: string) => (chunk: Buffer) => {
      const elapsed = ((Date.now() - this.startedAt) / 1000).toFixed(1).padStart(5);
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim()) this.text += `[${label} ${stream} +${elapsed}s] ${line}\n`;
      }
      for (const listener of this.listeners) listener();
    };
    child.stdout?.on('data', append('out'));
    child.stderr?.on('data', append('err'));
    this.exited = new Promise<Exit>((resolve) => {
      child.once('exit', (code, sig) => {
        this.exit = { code, signal: sig };
        this.text += `[${label}] exited (code ${code}, signal ${sig})\n`;
        for (const listener of this.listeners) listener();
        resolve(this.exit);
      });
    });
  }

  /** Pid of the process at the root of this worker's tree (`tsx`, or the compiled worker's `node`). */
  get pid(): number {
    return this.child.pid!;
  }

  get hasExited(): boolean {
    return this.exit !== undefined;
  }

  /** Everything the process wrote so far, each line labelled. */
  output(): string {
    return this.text;
  }

  /** Resolves once the output matches `pattern`; rejects if the process exits first or on timeout. */
  waitForOutput(pattern: RegExp, what: string, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (pattern.test(this.text)) finish();
        else if (this.exit) finish(new Error(`${this.label} exited before ${what}:\n${this.text}`));
      };
      const timer = setTimeout(
        () => finish(new Error(`${this.label}: timed out after ${timeoutMs} ms waiting for ${what}`)),
        timeoutMs,
      );
      const finish = (err?: Error): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
        if (err) reject(err);
        else resolve();
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Waits until the worker polls its task queue (seconds; more when it bundles the workflow code first). */
  async ready(timeoutMs = 60_000): Promise<void> {
    await this.waitForOutput(READY, 'the worker to poll its task queue', timeoutMs);
    this.readySeconds ??= (Date.now() - this.spawnedAt) / 1000;
    await this.livePids(); // learns the tree while its links are intact
  }

  /** Live pids of this worker: the root process and everything under it. */
  async livePids(): Promise<number[]> {
    if (this.dead) return [];
    const tree = this.hasExited ? [] : await liveTree(this.pid);
    for (const pid of tree) this.known.add(pid);
    const table = await processTable();
    return table.filter((p) => this.known.has(p.pid) && p.state !== 'Z').map((p) => p.pid);
  }

  /**
   * Freezes the worker's process tree, SIGKILLs all of it, and resolves once the root process has
   * exited and nothing of the tree is left alive: afterwards this worker can neither poll nor answer.
   */
  async kill(): Promise<Exit> {
    // Stop first, until the tree no longer grows: a stopped process cannot start another one.
    for (let size = -1; ;) {
      const live = await this.livePids();
      for (const pid of live) signal(pid, 'SIGSTOP');
      if (live.length === size) break;
      size = live.length;
    }
    const doomed = await this.livePids();
    for (const pid of doomed) signal(pid, 'SIGKILL');
    const exit = await this.exited;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const live = await this.livePids();
      if (live.length === 0) {
        this.dead = true;
        return exit;
      }
      if (Date.now() > deadline)
        throw new Error(`${this.label}: processes ${live.join(', ')} survived SIGKILL`);
      for (const pid of live) signal(pid, 'SIGKILL');
      await sleep(20);
    }
  }
}

/** Spawns worker processes and remembers them, so a test can always clean up, pass or fail. */
export class Processes {
  private readonly workers: WorkerProcess[] = [];
  private readonly t0 = Date.now();

  /**
   * Starts `tsx workers/main.ts` (or, `compiled`, `node dist/workers/main.js`) with `env` (on top of
   * PATH and HOME only); does not wait for it. The code is this checkout's, or that of `root`
   * (another release's tree, e.g. for the upgrade test).
   * A worker of this checkout loads the test run's workflow bundle, when there is one, rather than
   * spend seconds of CPU bundling its own (see {@link WorkerEnv.BATON_WORKFLOW_BUNDLE}); one of
   * another tree never does: it must run that tree's workflow code.
   */
  spawnWorker(
    label: string,
    env: WorkerEnv,
    root = PROJECT_ROOT,
    runtime: WorkerRuntime = 'tsx',
  ): WorkerProcess {
    const bundle = root === PROJECT_ROOT ? process.env.BATON_TEST_WORKFLOW_BUNDLE : undefined;
    const [file, args] =
      runtime === 'compiled'
        ? [process.execPath, [...workerProdNodeFlags(), COMPILED_WORKER]]
        : [TSX, ['workers/main.ts']];
    const child = spawn(file, args, {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TEMPORAL_NAMESPACE: 'default',
        ANTHROPIC_API_KEY: 'sk-test-durability',
        BATON_LOG_LEVEL: 'INFO',
        ...(bundle ? { BATON_WORKFLOW_BUNDLE: bundle } : {}),
        ...env,
      },
    });
    const worker = new WorkerProcess(label, child, this.t0);
    this.workers.push(worker);
    return worker;
  }

  /** Spawns a worker (of this checkout, or of `root`) and waits until it polls. */
  async startWorker(
    label: string,
    env: WorkerEnv,
    root = PROJECT_ROOT,
    runtime: WorkerRuntime = 'tsx',
  ): Promise<WorkerProcess> {
    const worker = this.spawnWorker(label, env, root, runtime);
    await worker.ready();
    return worker;
  }

  /** Every worker spawned so far, in spawn order. */
  get all(): readonly WorkerProcess[] {
    return this.workers;
  }

  /** The worker whose process tree holds `pid` (e.g. from a worker identity `pid@host`). */
  async owning(pid: number): Promise<WorkerProcess | undefined> {
    for (const worker of this.workers) {
      if ((await worker.livePids()).includes(pid)) return worker;
    }
    return undefined;
  }

  /** The output of every worker spawned so far, in spawn order. */
  output(): string {
    return this.workers.map((w) => w.output()).join('');
  }

  /** Kills every worker with anything still alive. Safe to call at any time, more than once. */
  async killAll(): Promise<void> {
    await Promise.all(
      this.workers.map(async (w) => {
        if (!w.hasExited || (await w.livePids()).length > 0) await w.kill();
      }),
    );
  }
}
