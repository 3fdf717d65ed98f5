/**
 * Report files and their check: the structure Baton writes (labels and provenance block as rendered
 * from the file's own provenance, the body between them), the body's content hash, and the
 * publisher's signature on the provenance; which file to check against which recorded hash; and the
 * verdict.
 *
 * Pure: given the file's text (or why it could not be read) and the publishers, so every rule is
 * tested directly.
 */
import { sha256 } from '../activities/artifacts';
import { reportFrame } from '../activities/report';
import { checkProvenanceSignature, type SignedProvenance } from '../activities/signing';
import type { ReportKind } from '../contract/messages';
import type { Answer, AuditSources, Publishers, Verification, VerificationCheck } from './audit-record';

/** Where the provenance block starts: the last one in the file is Baton's (the body comes before it). */
const TRAILER = '\n\n## Provenance\n\n```json\n\n';
const TRAILER_END = '\n\n```\n\n';

/** A report read by the structure Baton writes, or the first way it is not that. */
export type ParsedReport =
  | { ok: true; body: string; provenance: SignedProvenance }
  | { ok: false; check: 'malformed' | 'label'; reason: string };

/** Two lines that differ, each quoted as a JSON string (no raw controls) around where they part. */
function quotePair(want: string | undefined, got: string | undefined): [string, string] {
  let c = 0;
  while (want !== undefined && got !== undefined && c < want.length && want[c] === got[c]) c++;
  const from = Math.max(0, c - 40);
  const quote = (line: string | undefined): string => {
    if (line === undefined) return 'nothing';
    const part = line.slice(from, c + 80);
    return JSON.stringify(`${from > 0 ? '…' : ''}${part}${c + 80 < line.length ? '…' : ''}`);
  };
  return [quote(want), quote(got)];
}

/**
 * Where `text` stops matching what Baton writes: reading from its start against `head`, or from its
 * end against `tail`. The line number is the file's; lines are quoted as JSON strings (no raw controls).
 */
function difference(text: string, expected: { head: string } | { tail: string }): string {
  const got = text.split('\n');
  const fromEnd = 'tail' in expected;
  const want = (fromEnd ? expected.tail : expected.head).split('\n');
  const at = (lines: string[], k: number): string | undefined =>
    fromEnd ? lines[lines.length - 1 - k] : lines[k];
  const k = want.findIndex((_, i) => at(want, i) !== at(got, i));
  const line = fromEnd ? got.length - k : k + 1;
  const [should, found] = quotePair(at(want, k), at(got, k));
  return `line ${line} should be ${should}, found ${found}`;
}

/**
 * A published report taken apart without searching its body: the provenance block at its end, and
 * the body as what lies between the text Baton writes before and after it for that provenance
 * ({@link reportFrame}). Any other text outside the body (an edited label, a planted "Sign-off"
 * line, a moved marker) makes the file not a report Baton wrote.
 */
export function parseReport(text: string): ParsedReport {
  const at = text.lastIndexOf(TRAILER);
  if (at === -1 || !text.endsWith(TRAILER_END)) {
    return {
      ok: false,
      check: 'malformed',
      reason: 'it does not end with a provenance block (## Provenance and its JSON)',
    };
  }
  let provenance: SignedProvenance;
  try {
    provenance = JSON.parse(text.slice(at + TRAILER.length, -TRAILER_END.length)) as SignedProvenance;
  } catch (err) {
    return {
      ok: false,
      check: 'malformed',
      reason: `its provenance block is not JSON (${(err as Error).message})`,
    };
  }
  if (
    !provenance ||
    typeof provenance !== 'object' ||
    !Array.isArray(provenance.agents) ||
    !Array.isArray(provenance.approvals)
  ) {
    return { ok: false, check: 'malformed', reason: 'its provenance block is not a Baton provenance record' };
  }
  const { head, tail } = reportFrame(provenance);
  if (!text.startsWith(head)) {
    return {
      ok: false,
      check: 'label',
      reason: `the text above the body is not the label Baton writes for the provenance in the file (edited, added or removed lines): ${difference(text, { head })}`,
    };
  }
  if (head.length + tail.length > text.length || !text.endsWith(tail)) {
    return {
      ok: false,
      check: 'label',
      reason: `the text below the body (end marker, label, provenance block) is not what Baton writes for the provenance in the file: ${difference(text, { tail })}`,
    };
  }
  return { ok: true, body: text.slice(head.length, text.length - tail.length), provenance };
}

/** The body of a published report, located by structure ({@link parseReport}). */
export function reportBody(text: string): { ok: true; body: string } | { ok: false; reason: string } {
  const parsed = parseReport(text);
  return parsed.ok ? { ok: true, body: parsed.body } : parsed;
}

const isLabel = (p: string): boolean => p.startsWith('> **AI-generated content.**');

/**
 * The explicit labels as the file has them: its first paragraph and the last one before the
 * provenance block, each when it reads as a label (null otherwise). The body is not searched.
 */
export function explicitLabels(text: string): { top: string | null; bottom: string | null } {
  const first = text.split('\n\n', 1)[0]!.trim();
  const at = text.lastIndexOf(TRAILER);
  const last = at === -1 ? '' : (text.slice(0, at).split('\n\n').at(-1)?.trim() ?? '');
  return { top: isLabel(first) ? first : null, bottom: isLabel(last) ? last : null };
}

/** The provenance record at the end of a report (`## Provenance` and a JSON block). */
export function embeddedProvenance(text: string): SignedProvenance | undefined {
  const at = text.lastIndexOf(TRAILER);
  if (at === -1) return undefined;
  const end = text.lastIndexOf(TRAILER_END);
  try {
    return JSON.parse(text.slice(at + TRAILER.length, end > at ? end : undefined)) as SignedProvenance;
  } catch {
    return undefined;
  }
}

/**
 * Checks a report file: that everything outside the body is what Baton writes for the provenance in
 * it, that the body's sha256 is the content hash recorded for it (in Temporal, or failing that in
 * the file's provenance) and in the file's provenance, and that a listed publisher signed that
 * provenance. Pure: given the file's text (or why it could not be read), the expected hash with
 * where it was recorded, and the publishers. The verdict names the first check that failed.
 */
export function verifyReport(input: {
  file: string;
  kind: ReportKind | null;
  text: Answer<string>;
  expected: { hash: string; from: string } | null;
  publishers: Publishers;
}): Verification {
  // One key order for every outcome: the verdict first.
  const verdict = (
    verified: boolean,
    check: VerificationCheck,
    reason: string,
    actual: string | null = null,
    signature: Verification['signature'] = null,
  ): Verification => ({
    verified,
    check,
    reason,
    file: input.file,
    kind: input.kind,
    expected: input.expected?.hash ?? null,
    expectedFrom: input.expected?.from ?? null,
    actual,
    signature,
  });
  if (!input.text.ok) return verdict(false, 'unreadable', `cannot read ${input.file}: ${input.text.reason}`);
  const parsed = parseReport(input.text.value);
  if (!parsed.ok) {
    const note = crlfNote(input.text.value, input.expected?.hash);
    return verdict(
      false,
      parsed.check,
      `${input.file} is not a report as Baton publishes it: ${parsed.reason}${note}`,
    );
  }
  const actual = `sha256:${sha256(parsed.body)}`;
  const own = parsed.provenance.contentHash;
  const expected =
    input.expected ??
    (own
      ? { hash: own, from: 'the provenance inside the report file itself (not a Temporal record)' }
      : null);
  if (!expected) {
    return verdict(
      false,
      'no-expected-hash',
      `no content hash is recorded for ${input.file} to compare its body with`,
      actual,
    );
  }
  if (actual !== expected.hash) {
    return verdict(
      false,
      'mismatch',
      `the body of ${input.file} is not the one published: its sha256 is ${actual}, ${expected.from} records ${expected.hash}`,
      actual,
    );
  }
  if (own !== actual) {
    return verdict(
      false,
      'mismatch',
      `the provenance in ${input.file} records content hash ${own ?? 'none'}, but its body's sha256 is ${actual}, as ${expected.from} records`,
      actual,
    );
  }
  const hashed = `the sha256 of the body of ${input.file} equals the content hash recorded in ${expected.from}`;
  if (!input.publishers.ok) {
    return verdict(
      false,
      'no-publishers',
      `${hashed}, but its signature cannot be checked: ${input.publishers.reason}`,
      actual,
    );
  }
  const sig = checkProvenanceSignature(
    parsed.provenance,
    input.publishers.value.list,
    input.publishers.value.from,
  );
  const signature = {
    verified: sig.ok,
    keyId: sig.keyId,
    publisher: sig.ok ? sig.publisher : null,
    reason: sig.reason,
  };
  return sig.ok
    ? verdict(true, 'match', `${hashed}; ${sig.reason}`, actual, signature)
    : verdict(false, sig.check, `${hashed}, but ${sig.reason}`, actual, signature);
}

/** A file whose line endings were converted (e.g. by a Windows checkout) differs in bytes only: say so. */
function crlfNote(text: string, expected: string | undefined): string {
  if (!text.includes('\r\n')) return '';
  const lf = parseReport(text.replace(/\r\n/g, '\n'));
  return lf.ok && (expected === undefined || `sha256:${sha256(lf.body)}` === expected)
    ? ' (its line endings were converted to CRLF: with LF line endings the body is the one published)'
    : '';
}

/** Which report file the export checks, and the hash Temporal recorded for it. */
export interface ReportTarget {
  path: string;
  kind: ReportKind;
  expected: { hash: string; from: string } | null;
}

/**
 * The report to verify: the final report of a completed task (hash from the workflow result);
 * otherwise the latest draft or partial report (hash from the status query: a report's artifact id
 * is the sha256 of its body); otherwise the last report the event history says was published.
 * With `override` (`--report <file>`), that file is checked against the same recorded hash.
 */
export function reportTarget(src: Omit<AuditSources, 'reportFiles'>, override?: string): ReportTarget | null {
  const target = ((): ReportTarget | null => {
    if (src.result.ok && src.result.value.reportPath && src.result.value.provenance.contentHash) {
      return {
        path: src.result.value.reportPath,
        kind: src.result.value.provenance.reportKind ?? 'final',
        expected: {
          hash: src.result.value.provenance.contentHash,
          from: 'the workflow result (provenance.contentHash)',
        },
      };
    }
    const report = src.status.ok ? src.status.value.report : undefined;
    const statusPath = report?.path ?? report?.draftPath;
    if (report && statusPath) {
      return {
        path: statusPath,
        kind: report.path ? (/\.partial\.md$/.test(report.path) ? 'partial' : 'final') : 'draft',
        expected: { hash: report.artifact.id, from: 'the status query (report.artifact.id)' },
      };
    }
    const last = src.history.ok ? src.history.value.publications.at(-1) : undefined;
    if (last) {
      return {
        path: last.path,
        kind: last.kind,
        expected: { hash: last.contentHash, from: 'the event history (publishReport result)' },
      };
    }
    return null;
  })();
  if (override === undefined) return target;
  return { path: override, kind: target?.kind ?? 'final', expected: target?.expected ?? null };
}
