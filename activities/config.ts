/**
 * Loading and validating `config/`: agents, playbooks. Used by the config-snapshot activity, by
 * `npm run config:check` and by workers at start, so all three print the same messages.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { ZodType } from 'zod';
import { priceOf } from '../contract/usage';
import {
  AgentsFileSchema,
  ApproversFileSchema,
  checkFixedPlan,
  checkGatesAgainstApprovers,
  checkPlaybookAgainstAgents,
  resolveApprovers,
  formatPath,
  PlaybookSchema,
  type AgentConfig,
  type AgentsFile,
  type ApproversFile,
  type GateConfig,
  type ResolvedGate,
  type ConfigSnapshot,
  type Playbook,
  type SnapshotAgent,
} from '../config/schema';

/** One problem in one config file, at one path. */
export interface ConfigProblem {
  file: string;
  path: string;
  message: string;
}

export interface LoadedConfig {
  agents: AgentsFile;
  approvers: ApproversFile;
  playbooks: Record<string, Playbook>;
  digest: string;
}

/** Thrown when config is invalid; `problems` lists every one, not just the first. */
export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(`invalid config:\n${formatProblems(problems)}`);
    this.name = 'ConfigError';
  }
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `  ${p.file}${p.path ? `: ${p.path}` : ''}: ${p.message}`).join('\n');
}

async function parseFile<T>(
  file: string,
  schema: ZodType<T>,
  root: string,
  problems: ConfigProblem[],
): Promise<{ value?: T; raw?: unknown }> {
  const rel = path.relative(root, file) || file;
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    problems.push({ file: rel, path: '', message: `cannot read: ${(err as Error).message}` });
    return {};
  }
  const doc = YAML.parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) problems.push({ file: rel, path: '', message: `YAML: ${e.message}` });
    return {};
  }
  const raw: unknown = doc.toJS();
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push({ file: rel, path: formatPath(issue.path), message: issue.message });
    }
    return { raw };
  }
  return { value: parsed.data, raw };
}

/**
 * Reads `agents.yaml`, `approvers.yaml` and every `playbooks/*.yaml` under `configDir`, validates them and their
 * cross-references, and computes a digest over the validated content. Throws {@link ConfigError}
 * listing every problem.
 */
export async function loadConfig(configDir: string): Promise<LoadedConfig> {
  const problems: ConfigProblem[] = [];
  const root = path.dirname(configDir);
  const agents = await parseFile(path.join(configDir, 'agents.yaml'), AgentsFileSchema, root, problems);
  const approvers = await parseFile(
    path.join(configDir, 'approvers.yaml'),
    ApproversFileSchema,
    root,
    problems,
  );

  const playbookDir = path.join(configDir, 'playbooks');
  let names: string[] = [];
  let readable = true;
  try {
    names = (await fs.readdir(playbookDir)).filter((n) => /\.ya?ml$/.test(n)).sort();
  } catch (err) {
    readable = false;
    problems.push({ file: path.relative(root, playbookDir), path: '', message: (err as Error).message });
  }
  if (readable && names.length === 0) {
    problems.push({
      file: path.relative(root, playbookDir),
      path: '',
      message: 'no playbook (*.yaml) found',
    });
  }
  const playbooks: Record<string, Playbook> = {};
  for (const name of names) {
    const file = path.join(playbookDir, name);
    const rel = path.relative(root, file);
    const { value } = await parseFile(file, PlaybookSchema, root, problems);
    if (!value) continue;
    const expected = name.replace(/\.ya?ml$/, '');
    if (value.id !== expected) {
      problems.push({ file: rel, path: 'id', message: `must match the file name ("${expected}")` });
    }
    // The fixed plan's limits need nothing from agents.yaml: checked even when that file is broken.
    const checks = agents.value
      ? checkPlaybookAgainstAgents(value, agents.value)
      : checkFixedPlan(value).map((p) => `fixedPlan: ${p}`);
    if (approvers.value) checks.push(...checkGatesAgainstApprovers(value, approvers.value));
    for (const message of checks) problems.push({ file: rel, path: '', message });
    playbooks[value.id] = value;
  }
  if (problems.length > 0 || !agents.value || !approvers.value) throw new ConfigError(problems);
  const content = { agents: agents.value, approvers: approvers.value, playbooks };
  return { ...content, digest: digestOf(content) };
}

/** `sha256:<hex>` over a canonical JSON rendering (keys sorted), so formatting and comments do not count. */
export function digestOf(value: unknown): string {
  return `sha256:${createHash('sha256').update(canonicalJson(value)).digest('hex')}`;
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The part of the loaded config one task needs: its playbook, the lead and the allowed specialists. */
export function snapshotFor(
  config: LoadedConfig,
  playbookId: string,
  searchAttributes = true,
): ConfigSnapshot | undefined {
  const playbook = config.playbooks[playbookId];
  if (!playbook) return undefined;
  // Each agent carries the price of its model, frozen with the rest of the snapshot: the cost of a
  // task is estimated at the prices in force when it started (and named by its config digest).
  const priced = (agent: AgentConfig): SnapshotAgent => {
    const price = priceOf(config.agents.prices, agent.model);
    return price ? { ...agent, price } : agent;
  };
  const byId = new Map(config.agents.agents.map((a) => [a.id, priced(a)]));
  const lead = byId.get(config.agents.lead);
  if (!lead) return undefined;
  const specialists = Object.fromEntries(playbook.agents.map((id) => [id, byId.get(id)!]));
  const resolve = (gate: GateConfig): ResolvedGate => ({
    ...gate,
    approvers: resolveApprovers(gate.approvers, config.approvers),
    escalation: gate.escalation && {
      ...gate.escalation,
      approvers: resolveApprovers(gate.escalation.approvers, config.approvers),
    },
  });
  const gates = { plan: resolve(playbook.gates.plan), report: resolve(playbook.gates.report) };
  return { digest: config.digest, playbook, lead, specialists, gates, searchAttributes };
}
