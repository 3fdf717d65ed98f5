/**
 * `npm run audit -- --verify <report.md>`: one report file checked offline, with no Temporal server:
 * the text outside the body is what Baton writes for the file's provenance, the body's sha256 is the
 * provenance's `contentHash`, a publisher listed in config signed the provenance, and the
 * `.provenance.json` beside the file (when there is one) holds the same provenance, and every
 * approver's signature in it verifies (cli/audit-approvals.ts). Also where the
 * list of publisher keys is read from, for the export too.
 */
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { PROJECT_ROOT } from '../activities/options';
import { loadPublishers } from '../activities/signing';
import { safeText } from '../contract/text';
import type { CommandOutput } from '../lib/cli';
import type { Publishers } from './audit-record';
import { provenancePathOf } from '../activities/report';
import { reportReader } from '../workers/store';
import { approvalReport, checkApprovals } from './audit-approvals';
import { readReportText } from './audit-collect';
import { embeddedProvenance, verifyReport } from './audit-verify';

/** `--verify <report>`: one report file checked offline. */
export interface VerifyArgs {
  verify: string;
  publishers?: string;
}

/** `--publishers <file>`, else `publishers.yaml` in `$BATON_CONFIG_DIR`, else `config/publishers.yaml`. */
export function publishersPath(given: string | undefined, env: NodeJS.ProcessEnv): string {
  return path.resolve(
    given ?? path.join(env.BATON_CONFIG_DIR || path.join(PROJECT_ROOT, 'config'), 'publishers.yaml'),
  );
}

/** The publisher keys the audit accepts, or why they could not be read. */
export async function readPublishers(given: string | undefined, env: NodeJS.ProcessEnv): Promise<Publishers> {
  const file = publishersPath(given, env);
  try {
    return {
      ok: true,
      value: { list: await loadPublishers(file), from: path.relative(process.cwd(), file) || file },
    };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/**
 * Checks one report file and prints the verdict: exit 0 verified, 3 not (the failed check named),
 * 1 when the publisher keys cannot be read (nothing could be checked).
 */
export async function verifyOffline(
  args: VerifyArgs,
  given: CommandOutput & { env?: NodeJS.ProcessEnv },
): Promise<number> {
  // Reasons quote the file's own lines: printed sanitized (contract/text.ts).
  const deps = {
    env: given.env,
    out: (l: string) => given.out(safeText(l)),
    err: (l: string) => given.err(safeText(l)),
  };
  const publishers = await readPublishers(args.publishers, deps.env ?? process.env);
  if (!publishers.ok) {
    deps.err(`error: ${publishers.reason}`);
    return 1;
  }
  const file = args.verify;
  // A file, or an s3:// address, read as the audit export reads it (decrypted with the payload keys).
  const read = reportReader(deps.env ?? process.env);
  const text = await readReportText(read, file);
  const provenance = text.ok ? embeddedProvenance(text.value) : undefined;
  const v = verifyReport({ file, kind: provenance?.reportKind ?? null, text, expected: null, publishers });
  // The approvers' signatures, verified again with the keys recorded beside them (cli/audit-approvals.ts).
  const approvals = approvalReport(
    provenance && Array.isArray(provenance.approvals) ? checkApprovals(provenance) : [],
  );
  const approvalFailures = (): number => {
    for (const line of approvals.failed) deps.err(`approval NOT verified: ${line}`);
    return approvals.failed.length ? 3 : 0;
  };
  if (!v.verified) {
    deps.err(`report NOT verified (${v.check}): ${v.reason}`);
    approvalFailures();
    return 3;
  }
  const sidecarPath = provenancePathOf(file);
  const sidecar = await readReportText(read, sidecarPath);
  if (sidecar.ok) {
    let same = false;
    try {
      same = isDeepStrictEqual(JSON.parse(sidecar.value), provenance);
    } catch {
      // not JSON: not the same
    }
    if (!same) {
      deps.err(
        `report NOT verified (provenance-file): ${sidecarPath} does not hold the provenance signed in ${file}`,
      );
      approvalFailures();
      return 3;
    }
  }
  deps.out(`report ${file} (${v.kind ?? 'unknown kind'}): verified: ${v.reason}`);
  deps.out(
    sidecar.ok
      ? `provenance file ${sidecarPath}: the same provenance`
      : `provenance file ${sidecarPath}: not checked (${sidecar.reason})`,
  );
  for (const line of approvals.lines) deps.out(line);
  return approvalFailures();
}
