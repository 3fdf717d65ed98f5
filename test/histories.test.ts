/**
 * Recorded histories are the record of released behaviour: they are added, never re-recorded or
 * deleted (docs/architecture.md, "Versioning"). This test reads git's own record of every version of
 * every file ever committed under test/histories/ and fails when one of them is no longer in the
 * working tree, byte for byte (at any path there), naming the file and the commit that added it.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..');
const HISTORIES = 'test/histories';

const git = async (...args: string[]): Promise<string> =>
  (await run('git', args, { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 })).stdout;

/** Every history (.json) ever committed under test/histories/: its object id, the path and the commit that added it. */
async function committedVersions(): Promise<{ blob: string; file: string; commit: string }[]> {
  // --raw lines: ":<old mode> <new mode> <old blob> <new blob> <status>\t<path>"; a deletion's new blob is all zeros.
  const log = await git('log', '--format=commit %H', '--raw', '--no-abbrev', '--no-renames', '--', HISTORIES);
  const versions: { blob: string; file: string; commit: string }[] = [];
  let commit = '';
  for (const line of log.split('\n')) {
    if (line.startsWith('commit ')) commit = line.slice('commit '.length);
    const raw = /^:\d+ \d+ [0-9a-f]+ ([0-9a-f]+) [A-Z]\d*\t(.+)$/.exec(line);
    // Histories only: a note beside them (test/histories/README.md) may change.
    if (raw && !/^0+$/.test(raw[1]!) && raw[2]!.endsWith('.json'))
      versions.push({ blob: raw[1]!, file: raw[2]!, commit });
  }
  return versions;
}

/** The object ids of the files under test/histories/ in the working tree, as git would store them. */
async function workingTreeBlobs(): Promise<Map<string, string>> {
  const files = (await fs.readdir(path.join(ROOT, HISTORIES), { recursive: true }))
    .map((f) => path.posix.join(HISTORIES, f.split(path.sep).join('/')))
    .filter((f) => f.endsWith('.json'))
    .sort();
  const blobs = (await git('hash-object', '--', ...files)).trim().split('\n');
  return new Map(blobs.map((blob, i) => [blob, files[i]!]));
}

/** What the check reports: each committed version whose bytes are nowhere in the working tree. */
const missingVersions = (
  versions: { blob: string; file: string; commit: string }[],
  present: Map<string, string>,
): string[] =>
  versions
    .filter((v) => !present.has(v.blob))
    .map((v) => `${v.file} as committed in ${v.commit.slice(0, 10)} was modified or removed`);

test('every history ever committed is still in the working tree, unchanged', async () => {
  const versions = await committedVersions();
  // A clone without history would make this test vacuous: it must see at least the released v1 to v3.
  expect(new Set(versions.map((v) => v.file.split('/')[2])).size).toBeGreaterThanOrEqual(3);
  expect(missingVersions(versions, await workingTreeBlobs())).toEqual([]);
});

test('the check names a history that was edited or deleted', async () => {
  const versions = await committedVersions();
  const present = await workingTreeBlobs();
  // A committed history (a new one not committed yet has no recorded version to lose).
  const committed = new Set(versions.map((v) => v.blob));
  const [blob, file] = [...present.entries()].find(([b]) => committed.has(b))!;
  const edited = new Map(present);
  edited.delete(blob);
  edited.set('0123456789abcdef0123456789abcdef01234567', file);
  const expected = versions.filter((v) => v.blob === blob).map((v) => v.file);
  expect(expected.length).toBeGreaterThan(0);
  expect(missingVersions(versions, edited).map((m) => m.split(' as committed')[0])).toEqual(expected);
});
