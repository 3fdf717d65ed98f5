/**
 * Report files and their check: the body between the markers, its content hash, the explicit labels
 * and the embedded provenance; which file to check against which recorded hash; and the verdict.
 *
 * Pure: given the file's text (or why it could not be read), so every rule is tested directly.
 */
import { sha256 } from '../activities/artifacts';
import { BODY_END, BODY_START } from '../activities/report';
import type { Provenance, ReportKind } from '../contract/messages';
import type { Answer, AuditSources, Verification, VerificationCheck } from './audit-record';

/** What a report file's name should be, as `publishReport` makes it. */
export const safeName = (workflowId: string): string => workflowId.replace(/[^A-Za-z0-9._-]+/g, '_');

/** The `.provenance.json` written beside a report. */
export const provenancePathOf = (reportPath: string): string =>
  /\.md$/.test(reportPath)
    ? reportPath.replace(/\.md$/, '.provenance.json')
    : `${reportPath}.provenance.json`;

/**
 * The body of a published report: the text between the first `BODY_START` and the `BODY_END`
 * after it, without the blank line after the one and before the other (exactly as
 * `renderReport` lays it out, and as the shell recipe in docs/security.md reads it).
 */
export function reportBody(text: string): { ok: true; body: string } | { ok: false; reason: string } {
  const start = text.indexOf(BODY_START);
  if (start === -1) return { ok: false, reason: `it has no ${BODY_START} marker` };
  const from = start + BODY_START.length;
  const end = text.indexOf(BODY_END, from);
  if (end === -1) return { ok: false, reason: `it has no ${BODY_END} marker after ${BODY_START}` };
  const between = text.slice(from, end);
  if (!between.startsWith('\n\n') || !between.endsWith('\n\n') || between.length < 4) {
    return {
      ok: false,
      reason: 'the body markers are not each followed and preceded by a blank line, as Baton writes them',
    };
  }
  return { ok: true, body: between.slice(2, -2) };
}

/** `sha256:<hex>` of a report's body, or why it has none. */
export function reportContentHash(text: string): { ok: true; hash: string } | { ok: false; reason: string } {
  const body = reportBody(text);
  return body.ok ? { ok: true, hash: `sha256:${sha256(body.body)}` } : body;
}

/** The explicit labels: the paragraphs above the body and below it that carry the AI-generated label. */
export function explicitLabels(text: string): { top: string | null; bottom: string | null } {
  const start = text.indexOf(BODY_START);
  const end = start === -1 ? -1 : text.indexOf(BODY_END, start);
  const isLabel = (p: string): boolean => p.startsWith('> **AI-generated content.**');
  const top =
    start === -1
      ? null
      : (text
          .slice(0, start)
          .split('\n\n')
          .map((p) => p.trim())
          .filter(isLabel)
          .at(-1) ?? null);
  const bottom =
    end === -1
      ? null
      : (text
          .slice(end + BODY_END.length)
          .split('\n\n')
          .map((p) => p.trim())
          .find(isLabel) ?? null);
  return { top, bottom };
}

/** The provenance record embedded at the end of a report (`## Provenance` and a JSON block). */
export function embeddedProvenance(text: string): Provenance | undefined {
  const end = text.lastIndexOf(BODY_END);
  const tail = end === -1 ? text : text.slice(end);
  const match = /## Provenance\n\n```json\n([\s\S]*?)\n```/.exec(tail);
  if (!match) return undefined;
  try {
    return JSON.parse(match[1]!) as Provenance;
  } catch {
    return undefined;
  }
}

/**
 * Checks a report file's body against the content hash recorded for it. Pure: given the file's
 * text (or why it could not be read) and the expected hash with where it was recorded.
 */
export function verifyReport(input: {
  file: string;
  kind: ReportKind | null;
  text: Answer<string>;
  expected: { hash: string; from: string } | null;
}): Verification {
  // One key order for every outcome: the verdict first.
  const verdict = (
    verified: boolean,
    check: VerificationCheck,
    reason: string,
    actual: string | null = null,
  ): Verification => ({
    verified,
    check,
    reason,
    file: input.file,
    kind: input.kind,
    expected: input.expected?.hash ?? null,
    expectedFrom: input.expected?.from ?? null,
    actual,
  });
  if (!input.text.ok) return verdict(false, 'unreadable', `cannot read ${input.file}: ${input.text.reason}`);
  const actual = reportContentHash(input.text.value);
  if (!actual.ok) {
    const note = input.expected ? crlfNote(input.text.value, input.expected.hash) : '';
    return verdict(
      false,
      'malformed',
      `${input.file} is not a report as Baton publishes it: ${actual.reason}${note}`,
    );
  }
  if (!input.expected) {
    return verdict(
      false,
      'no-expected-hash',
      `no content hash is recorded for ${input.file} to compare its body with`,
      actual.hash,
    );
  }
  if (actual.hash === input.expected.hash) {
    return verdict(
      true,
      'match',
      `the sha256 of the body of ${input.file} equals the content hash recorded in ${input.expected.from}`,
      actual.hash,
    );
  }
  return verdict(
    false,
    'mismatch',
    `the body of ${input.file} is not the one published: its sha256 is ${actual.hash}, ${input.expected.from} records ${input.expected.hash}${crlfNote(input.text.value, input.expected.hash)}`,
    actual.hash,
  );
}

/** A file whose line endings were converted (e.g. by a Windows checkout) differs in bytes only: say so. */
function crlfNote(text: string, expected: string): string {
  if (!text.includes('\r\n')) return '';
  const lf = reportContentHash(text.replace(/\r\n/g, '\n'));
  return lf.ok && lf.hash === expected
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
