/**
 * The committed histories under test/histories/<version>/, for the tests that replay them
 * (test/replay.test.ts, test/replay-coverage.test.ts). Record new ones with
 * `npm run histories:record -- v<N>`.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

const HISTORIES = path.join(__dirname, 'histories');

export interface RecordedHistory {
  /** `<version>/<file>`, where it came from. */
  name: string;
  /**
   * The workflow id it replays as: the file name, URI-decoded, without `.json` (and without `@<n>`,
   * the run's number, for a task that continued as new runs: test/record-histories.ts).
   */
  workflowId: string;
  history: unknown;
}

/** Every recorded history, in version then file order (test/histories/README.md is no history). */
export async function recordedHistories(): Promise<RecordedHistory[]> {
  const out: RecordedHistory[] = [];
  const folders = (await fs.readdir(HISTORIES, { withFileTypes: true })).filter((d) => d.isDirectory());
  for (const version of folders.map((d) => d.name).sort()) {
    for (const file of (await fs.readdir(path.join(HISTORIES, version)))
      .filter((f) => f.endsWith('.json'))
      .sort()) {
      const history: unknown = JSON.parse(await fs.readFile(path.join(HISTORIES, version, file), 'utf8'));
      out.push({
        name: `${version}/${file}`,
        workflowId: decodeURIComponent(file.replace(/(@\d+)?\.json$/, '')),
        history,
      });
    }
  }
  return out;
}
