/**
 * The run's chart as a standalone SVG: mean rubric scores per mode (by criterion), the share of
 * cited sources a tool returned, and tokens and wall time per question per mode. Drawn here rather than with a charting library: a few bar panels
 * are a few lines of SVG, and the usual Node choice (Vega) is ESM-only and compiles its expressions
 * with the Function constructor unless configured otherwise, which this project keeps out of its
 * runtime folders. Any browser or image viewer opens the file.
 */
import { MODE_LABELS, type Mode } from './modes';
import { fmtDuration, fmtTokens, type ModeSummary } from './report';
import { CRITERIA, CRITERION_INFO } from './rubric';

/** Colour per mode (ColorBrewer Set2: distinguishable for most colour-blind readers). */
const COLOURS: Record<Mode, string> = {
  'one-call': '#8da0cb',
  'single-agent': '#66c2a5',
  baton: '#fc8d62',
  'baton-rounds': '#e78ac3',
};

const esc = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const n = (v: number): string => (Number.isInteger(v) ? String(v) : v.toFixed(1));

function text(x: number, y: number, content: string, attrs = ''): string {
  return `<text x="${n(x)}" y="${n(y)}"${attrs ? ` ${attrs}` : ''}>${esc(content)}</text>`;
}

/** A round upper bound for an axis: 1, 2 or 5 times a power of ten, at least `max`. */
export function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

interface Panel {
  x: number;
  y: number;
  width: number;
  height: number;
  title: string;
  /** Groups of bars: one value per mode (null: no data). */
  groups: { label: string; values: (number | null)[] }[];
  max: number;
  ticks: number[];
  tickLabel: (v: number) => string;
  valueLabel: (v: number) => string;
}

function panel(p: Panel, modes: readonly Mode[]): string[] {
  const parts: string[] = [];
  const left = p.x + 56;
  const bottom = p.y + p.height - 28;
  const top = p.y + 30;
  const plotW = p.x + p.width - left - 8;
  const scale = (v: number): number => bottom - ((bottom - top) * Math.min(v, p.max)) / p.max;
  parts.push(text(p.x + p.width / 2, p.y + 14, p.title, 'text-anchor="middle" font-weight="bold"'));
  for (const t of p.ticks) {
    const y = scale(t);
    parts.push(`<line x1="${n(left)}" y1="${n(y)}" x2="${n(left + plotW)}" y2="${n(y)}" stroke="#ddd"/>`);
    parts.push(text(left - 6, y + 4, p.tickLabel(t), 'text-anchor="end" font-size="11" fill="#555"'));
  }
  parts.push(
    `<line x1="${n(left)}" y1="${n(bottom)}" x2="${n(left + plotW)}" y2="${n(bottom)}" stroke="#333"/>`,
  );
  const groupW = plotW / Math.max(1, p.groups.length);
  const barW = Math.min(36, (groupW * 0.8) / Math.max(1, modes.length));
  p.groups.forEach((g, gi) => {
    const gx = left + gi * groupW + (groupW - barW * modes.length) / 2;
    g.values.forEach((v, mi) => {
      const mode = modes[mi]!;
      const x = gx + mi * barW;
      if (v === null) {
        parts.push(text(x + barW / 2, bottom - 4, 'n/a', 'text-anchor="middle" font-size="9" fill="#999"'));
        return;
      }
      const y = scale(v);
      parts.push(
        `<rect x="${n(x + 1)}" y="${n(y)}" width="${n(barW - 2)}" height="${n(bottom - y)}" fill="${COLOURS[mode]}"><title>${esc(`${MODE_LABELS[mode]}, ${g.label}: ${p.valueLabel(v)}`)}</title></rect>`,
      );
      parts.push(
        text(x + barW / 2, y - 3, p.valueLabel(v), 'text-anchor="middle" font-size="9" fill="#333"'),
      );
    });
    parts.push(
      text(left + gi * groupW + groupW / 2, bottom + 16, g.label, 'text-anchor="middle" font-size="11"'),
    );
  });
  return parts;
}

/** The SVG document. `offline` puts the stand-in warning across the top. */
export function renderChartSvg(
  summary: readonly ModeSummary[],
  options: { offline: boolean; title?: string },
): string {
  const modes = summary.map((s) => s.mode);
  const width = 1330;
  const banner = options.offline ? 44 : 0;
  const height = 400 + banner;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    text(
      16,
      26,
      options.title ?? 'Baton evaluation: one call vs single agent vs multi-agent, with and without rounds',
      'font-size="16" font-weight="bold"',
    ),
  ];
  if (options.offline) {
    parts.push(
      `<rect x="16" y="36" width="${width - 32}" height="34" fill="#fde2e1" stroke="#c0392b"/>`,
      text(
        width / 2,
        58,
        "OFFLINE STAND-IN RUN: scores are meaningless (placeholder answers, placeholder judge); citation figures count the stand-in's output. Set ANTHROPIC_API_KEY to measure.",
        'text-anchor="middle" font-weight="bold" fill="#c0392b"',
      ),
    );
  }
  // Legend; the rounds mode with the research rounds it used.
  summary.forEach((s, i) => {
    const x = 16 + i * 250;
    const y = 44 + banner;
    const rounds =
      s.mode === 'baton-rounds' && s.avgRounds !== null
        ? ` (${s.avgRounds.toFixed(1)} rounds / question)`
        : '';
    parts.push(
      `<rect x="${x}" y="${y - 10}" width="12" height="12" fill="${COLOURS[s.mode]}"/>`,
      text(x + 18, y, `${MODE_LABELS[s.mode]}${rounds}`),
    );
  });
  const top = 60 + banner;
  const panelH = height - top - 8;
  const maxTokens = niceMax(Math.max(0, ...summary.map((s) => s.avgTokens ?? 0)));
  const maxWall = niceMax(Math.max(0, ...summary.map((s) => (s.avgWallMs ?? 0) / 1000)));
  const quarter = (max: number): number[] => [0, 0.25, 0.5, 0.75, 1].map((f) => f * max);
  parts.push(
    ...panel(
      {
        x: 8,
        y: top,
        width: 620,
        height: panelH,
        title: 'Mean rubric score (1 to 5, higher is better)',
        groups: [
          ...CRITERIA.map((c) => ({
            label: CRITERION_INFO[c].short,
            values: summary.map((s) => s.scores[c]),
          })),
          { label: 'Mean', values: summary.map((s) => s.mean) },
        ],
        max: 5,
        ticks: [0, 1, 2, 3, 4, 5],
        tickLabel: (v) => String(v),
        valueLabel: (v) => v.toFixed(1),
      },
      modes,
    ),
    ...panel(
      {
        x: 640,
        y: top,
        width: 230,
        height: panelH,
        title: 'Cited sources retrieved (%)',
        groups: [
          {
            label: 'counted, not judged',
            values: summary.map((s) => (s.citationValidity === null ? null : s.citationValidity * 100)),
          },
        ],
        max: 100,
        ticks: [0, 25, 50, 75, 100],
        tickLabel: (v) => String(v),
        valueLabel: (v) => `${Math.round(v)}%`,
      },
      modes,
    ),
    ...panel(
      {
        x: 870,
        y: top,
        width: 230,
        height: panelH,
        title: 'Tokens per question',
        groups: [{ label: 'average', values: summary.map((s) => s.avgTokens) }],
        max: maxTokens,
        ticks: quarter(maxTokens),
        tickLabel: (v) => (maxTokens >= 10_000 ? `${n(v / 1000)}k` : fmtTokens(v)),
        valueLabel: (v) => fmtTokens(v),
      },
      modes,
    ),
    ...panel(
      {
        x: 1100,
        y: top,
        width: 225,
        height: panelH,
        title: 'Wall time per question (s)',
        groups: [
          {
            label: 'average',
            values: summary.map((s) => (s.avgWallMs === null ? null : s.avgWallMs / 1000)),
          },
        ],
        max: maxWall,
        ticks: quarter(maxWall),
        tickLabel: (v) => n(v),
        valueLabel: (v) => fmtDuration(v * 1000),
      },
      modes,
    ),
    '</svg>',
  );
  return `${parts.join('\n')}\n`;
}
