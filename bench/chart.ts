/**
 * bench/side-by-side.svg: table 5 of a full run as a chart, drawn from its results (bench/results.json)
 * as plain SVG text. One panel per number of tasks started at once, each with its own scale (100
 * tasks take ten times as long as one), and a bar per system with its wall time written on it.
 */
import type { Results } from './report';

const SYSTEMS = [
  { name: 'Baton (1 worker process)', color: '#2f6f9f' },
  { name: 'Promise.all (in memory)', color: '#9a9a9a' },
  { name: 'LangGraph.js + SQLite', color: '#d08a2e' },
] as const;

const PANEL = { width: 230, height: 220, gap: 20, bar: 44 };
const MARGIN = { left: 20, top: 64, bottom: 118 };

/** Text for an SVG element: the five characters XML reserves, escaped. */
function xml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The chart of the run's side by side, or undefined when the run has no Baton or baseline figures
 * at its model latency to draw.
 */
export function sideBySideSvg(r: Results): string | undefined {
  const latency = r.settings.latencyMs;
  const baton = (k: number): number | undefined =>
    r.throughput?.find((t) => t.workers === 1 && t.tasks === k && (t.latencyMs ?? latency) === latency)
      ?.wallMs;
  const baseline = (system: string, k: number): number | undefined =>
    r.baselines?.find((b) => b.system === system && b.tasks === k)?.wallMs;
  const ks = [...new Set((r.baselines ?? []).map((b) => b.tasks))].sort((a, b) => a - b);
  const panels = ks
    .map((k) => ({
      k,
      values: [baton(k), baseline('Promise.all', k), baseline('LangGraph + SQLite checkpointer', k)],
    }))
    .filter((p) => p.values.every((v) => v !== undefined && Number.isFinite(v)));
  if (panels.length === 0) return undefined;

  const width = MARGIN.left * 2 + panels.length * PANEL.width + (panels.length - 1) * PANEL.gap;
  const height = MARGIN.top + PANEL.height + MARGIN.bottom;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${MARGIN.left}" y="24" font-size="16" font-weight="bold">${xml(
      `The standard task (8 parallel steps + report), ${latency / 1000} s model latency: wall time`,
    )}</text>`,
    `<text x="${MARGIN.left}" y="44" fill="#555">${xml(
      `npm run bench of ${r.machine.date.slice(0, 10)}, ${r.machine.nproc} cores shared with the Temporal dev server; lower is better; each panel has its own scale`,
    )}</text>`,
  ];
  panels.forEach((panel, i) => {
    const x0 = MARGIN.left + i * (PANEL.width + PANEL.gap);
    const top = MARGIN.top + 24;
    const plot = PANEL.height - 24;
    const max = Math.max(...(panel.values as number[]));
    parts.push(
      `<text x="${x0 + PANEL.width / 2}" y="${MARGIN.top + 12}" text-anchor="middle" font-weight="bold">${xml(
        `${panel.k} task${panel.k === 1 ? '' : 's'} at once`,
      )}</text>`,
      `<line x1="${x0}" y1="${top + plot}" x2="${x0 + PANEL.width}" y2="${top + plot}" stroke="#333"/>`,
    );
    const step = PANEL.width / SYSTEMS.length;
    (panel.values as number[]).forEach((ms, j) => {
      const h = Math.max(1, (ms / max) * (plot - 18));
      const x = x0 + j * step + (step - PANEL.bar) / 2;
      const y = top + plot - h;
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${PANEL.bar}" height="${h.toFixed(1)}" fill="${SYSTEMS[j]!.color}"/>`,
        `<text x="${(x + PANEL.bar / 2).toFixed(1)}" y="${(y - 5).toFixed(1)}" text-anchor="middle">${xml(
          `${(ms / 1000).toFixed(1)} s`,
        )}</text>`,
      );
    });
    const ratio = (panel.values[0]! / panel.values[2]!).toFixed(2);
    parts.push(
      `<text x="${x0 + PANEL.width / 2}" y="${top + plot + 18}" text-anchor="middle" fill="#555">${xml(
        `Baton / LangGraph ${ratio}x`,
      )}</text>`,
    );
  });
  SYSTEMS.forEach((system, j) => {
    const y = MARGIN.top + PANEL.height + 44 + j * 20;
    parts.push(
      `<rect x="${MARGIN.left}" y="${y - 10}" width="12" height="12" fill="${system.color}"/>`,
      `<text x="${MARGIN.left + 18}" y="${y}">${xml(system.name)}</text>`,
    );
  });
  parts.push(
    `<text x="${MARGIN.left}" y="${height - 12}" fill="#555">${xml(
      'Baton: every step durable on the Temporal server. Promise.all: nothing kept. LangGraph: checkpoints in local SQLite.',
    )}</text>`,
    '</svg>',
  );
  return `${parts.join('\n')}\n`;
}
