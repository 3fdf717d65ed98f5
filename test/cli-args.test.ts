/**
 * Every entry point reads its command line the same way (lib/cli.ts): `--help` prints the usage on
 * stdout and exits 0; an unknown option prints what is wrong and the usage on stderr and exits 2,
 * before doing anything else. Each runs as a process, as its npm script runs it, in an environment
 * with nothing to reach (no Temporal address, no API key), two at a time.
 */
import { mapLimit } from '../lib/map-limit';
import { runScript, type ScriptRun } from './helpers';

const ENTRY_POINTS = [
  'cli/start.ts',
  'cli/baton.ts',
  'cli/audit.ts',
  'cli/codec-server.ts',
  'cli/config-check.ts',
  'inbox/main.ts',
  'workers/main.ts',
  'workers/bundle.ts',
  'standin/main.ts',
  'standin/proxy-main.ts',
  'eval/main.ts',
  'bench/main.ts',
  'test/record-histories.ts',
  'scripts/screenshot-web-ui.ts',
];

/** Only what tsx needs to run: an entry point that reads settings finds none. */
const ENV: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR };

/** A process still running after this has not refused the option: it is killed, and fails the test. */
const TIMEOUT_MS = 60_000;

const runs = new Map<string, { help: ScriptRun; unknown: ScriptRun }>();

beforeAll(async () => {
  const results = await mapLimit(ENTRY_POINTS, 2, async (file) => ({
    help: await runScript(file, ['--help'], ENV, TIMEOUT_MS),
    unknown: await runScript(file, ['--no-such-option'], ENV, TIMEOUT_MS),
  }));
  ENTRY_POINTS.forEach((file, i) => runs.set(file, results[i]!));
}, 600_000);

/** What a failure shows: the exit code and the start of each stream. */
const shown = (run: ScriptRun) => ({
  code: run.code,
  stdout: run.stdout.slice(0, 300),
  stderr: run.stderr.slice(0, 300),
});

describe.each(ENTRY_POINTS)('%s', (file) => {
  test('--help: the usage on stdout, exit 0', () => {
    const { help } = runs.get(file)!;
    expect(shown(help)).toMatchObject({ code: 0, stdout: expect.stringMatching(/^usage: /) });
  });

  test('--no-such-option: what is wrong and the usage on stderr, exit 2', () => {
    const { help, unknown } = runs.get(file)!;
    expect(shown(unknown)).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--no-such-option'),
    });
    expect(help.stdout.trim()).not.toBe('');
    expect(unknown.stderr).toContain(help.stdout.trim());
  });
});
