/**
 * The previous release, for the upgrade test (test/upgrade.test.ts): its commit, named once in
 * test/releases.json and moved on at each release (docs/releases.md); exporting a commit's tree from
 * git with this checkout's node_modules linked in, so that its worker runs as a real process; and the
 * check that a task's history shows no replay break.
 */
import { temporal } from '@temporalio/proto';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import releases from './releases.json';

const run = promisify(execFile);
const PROJECT_ROOT = path.resolve(__dirname, '..');

/** The commit of the previous release (test/releases.json): a full sha, so that it names one commit for good. */
export const PREVIOUS_RELEASE: string = releases.previous;
if (!/^[0-9a-f]{40}$/.test(PREVIOUS_RELEASE)) {
  throw new Error(
    `test/releases.json: "previous" must be a full 40-digit commit sha (got "${PREVIOUS_RELEASE}")`,
  );
}

type Dependencies = Record<string, string>;

async function dependenciesIn(dir: string): Promise<Dependencies> {
  const json = JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8')) as {
    dependencies?: Dependencies;
  };
  return json.dependencies ?? {};
}

/** A commit's tree, exported from git. */
export interface ExportedTree {
  /** The full sha `commit` names. */
  sha: string;
  /** The temporary folder holding its files; the caller removes it. */
  dir: string;
}

/**
 * Exports `commit` (a sha, tag or any name git resolves) from this clone's history into a new
 * temporary folder (`git archive`: no work tree touched) and links this checkout's node_modules
 * into it, so that its code runs (`tsx`) and bundles here. Fails, never skips, when the commit is not
 * in the clone (a shallow clone) or, unless `checkDependencies` is false (only its workflow code is
 * bundled, with the SDK installed here), when its runtime dependencies are not the ones installed here.
 */
export async function exportCommit(
  commit: string,
  { checkDependencies = true }: { checkDependencies?: boolean } = {},
): Promise<ExportedTree> {
  let sha: string;
  try {
    sha = (
      await run('git', ['rev-parse', '--verify', `${commit}^{commit}`], { cwd: PROJECT_ROOT })
    ).stdout.trim();
  } catch {
    throw new Error(
      `commit ${commit} is not in this clone: the previous release's code comes from git history (git fetch --unshallow)`,
    );
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `baton-${sha.slice(0, 7)}-`));
  const tarFile = `${dir}.tar`;
  try {
    await run('git', ['archive', '--format=tar', `--output=${tarFile}`, sha], { cwd: PROJECT_ROOT });
    await run('tar', ['-x', '-f', tarFile, '-C', dir]);
  } finally {
    await fs.rm(tarFile, { force: true });
  }
  const [theirs, ours] = await Promise.all([dependenciesIn(dir), dependenciesIn(PROJECT_ROOT)]);
  const differ = Object.entries(theirs).filter(([name, version]) => ours[name] !== version);
  if (checkDependencies && differ.length > 0) {
    throw new Error(
      `${sha} needs ${differ.map(([n, v]) => `${n}@${v}`).join(', ')}, which this checkout's node_modules does not have (here: ${differ.map(([n]) => `${n}@${ours[n] ?? 'none'}`).join(', ')}); install its own dependencies in ${dir} instead of linking these`,
    );
  }
  await fs.symlink(path.join(PROJECT_ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return { sha, dir };
}

const { WorkflowTaskFailedCause } = temporal.api.enums.v1;
/** Causes of a failed workflow task that mean the code could not continue the history it was given. */
const BREAKS = new Set<temporal.api.enums.v1.WorkflowTaskFailedCause>([
  WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR,
  WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
]);

/** A failed workflow task of a history, as the upgrade test reports it. */
export interface ReplayBreak {
  eventId: string;
  cause: string;
  message: string;
  identity: string;
}

/**
 * The workflow tasks of `history` that failed because the worker's code could not continue it: a
 * nondeterminism error (the code emitted other commands than the history holds), or the code throwing
 * while it replayed. Other failed tasks (e.g. a sticky cache reset) are not breaks.
 */
export function replayBreaks(history: temporal.api.history.v1.IHistory): ReplayBreak[] {
  return (history.events ?? []).flatMap((event) => {
    const failed = event.workflowTaskFailedEventAttributes;
    if (!failed || failed.cause == null || !BREAKS.has(failed.cause)) return [];
    return [
      {
        eventId: String(event.eventId),
        cause: WorkflowTaskFailedCause[failed.cause],
        message: failed.failure?.message ?? '',
        identity: failed.identity ?? '',
      },
    ];
  });
}
