/**
 * Small numeric and formatting helpers for the benchmark: percentiles, and tables rendered both as
 * aligned text (stdout) and as Markdown (bench/README.md).
 */

/** The `p`-th percentile (0–100) by nearest rank; NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export const median = (values: readonly number[]): number => percentile(values, 50);

export const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);

export const mean = (values: readonly number[]): number =>
  values.length === 0 ? Number.NaN : sum(values) / values.length;

/** Summary of a sample of durations in milliseconds. */
export interface Summary {
  n: number;
  median: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

export function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    median: median(values),
    p99: percentile(values, 99),
    mean: mean(values),
    min: values.length ? Math.min(...values) : Number.NaN,
    max: values.length ? Math.max(...values) : Number.NaN,
  };
}

/** Milliseconds with a precision that suits their size: `0.42`, `12.3`, `1234`. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  const abs = Math.abs(value);
  return abs < 10 ? value.toFixed(2) : abs < 100 ? value.toFixed(1) : Math.round(value).toString();
}

/** Seconds with two decimals. */
export const secs = (valueMs: number): string =>
  Number.isFinite(valueMs) ? (valueMs / 1000).toFixed(2) : 'n/a';

/** A ratio as `1.23x`. */
export const ratio = (value: number): string => (Number.isFinite(value) ? `${value.toFixed(2)}x` : 'n/a');

/** A number with at most `digits` decimals. */
export const num = (value: number, digits = 1): string =>
  Number.isFinite(value) ? value.toFixed(digits).replace(/\.0+$/, '') : 'n/a';

/** Kibibytes to MiB with one decimal. */
export const mib = (kib: number): string => (Number.isFinite(kib) ? (kib / 1024).toFixed(1) : 'n/a');

/** A table of already-formatted cells. */
export interface Table {
  title: string;
  columns: string[];
  rows: string[][];
  /** Lines printed under the table: what was measured, how, and what was capped. */
  notes?: string[];
}

/** The table as aligned text for a terminal. Numbers (cells starting with a digit) are right-aligned. */
export function renderText(table: Table): string {
  const widths = table.columns.map((c, i) =>
    Math.max(c.length, ...table.rows.map((r) => (r[i] ?? '').length)),
  );
  const numeric = (cell: string): boolean => /^[-+]?\d/.test(cell) || cell === 'n/a';
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => (numeric(cell) && i > 0 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [
    '',
    table.title,
    '='.repeat(table.title.length),
    line(table.columns),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...table.rows.map(line),
  ];
  for (const note of table.notes ?? []) out.push(`  * ${note}`);
  return out.join('\n');
}

/** The table as GitHub-flavoured Markdown, under a level-3 heading; columns of numbers right-aligned. */
export function renderMarkdown(table: Table): string {
  const escape = (cell: string): string => cell.replace(/\|/g, '\\|');
  const numeric = table.columns.map((_, i) => table.rows.every((r) => /^([-+]?\d|n\/a$)/.test(r[i] ?? '')));
  const out = [
    `### ${table.title}`,
    '',
    `| ${table.columns.map(escape).join(' | ')} |`,
    `| ${numeric.map((n) => (n ? '---:' : '---')).join(' | ')} |`,
    ...table.rows.map((r) => `| ${r.map(escape).join(' | ')} |`),
  ];
  if (table.notes?.length) out.push('', ...table.notes.map((n) => `- ${n}`));
  return out.join('\n');
}
