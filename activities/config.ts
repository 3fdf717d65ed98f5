/**
 * Loading and validating `config/`: agents, playbooks. Used by the config-snapshot activity, by
 * `npm run config:check` and by workers at start, so all three print the same messages.
 */
import { ApplicationFailure } from '@temporalio/common';
import { LRUCache } from 'lru-cache';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import YAML, { isMap, isNode, isScalar, isSeq, LineCounter, type Node } from 'yaml';
import type { ZodType } from 'zod';
import { AgentRefSchema, isAgentRef, type GivenAgent } from '../contract/activities';
import { canonicalJson } from '../contract/canonical';
import { failureMessage, FailureTypes } from '../contract/failures';
import { priceOf } from '../contract/usage';
import {
  AgentsFileSchema,
  ApproversFileSchema,
  checkFixedPlan,
  checkGatesAgainstApprovers,
  checkMcpTools,
  checkPlaybookAgainstAgents,
  resolveApprovers,
  approverKeys as keysOf,
  approverPasskeys as passkeysOf,
  formatPath,
  mcpServersFor,
  PlaybookSchema,
  type AgentConfig,
  type AgentsFile,
  type ApproversFile,
  type ConfigPath,
  type GateConfig,
  type ResolvedGate,
  type ConfigSnapshot,
  type Playbook,
  type SnapshotAgent,
} from '../config/schema';
import { getArtifact, putArtifact } from './artifacts';
import type { ObjectStore } from './store';

/** One problem in one config file, at one path. */
export interface ConfigProblem {
  file: string;
  path: string;
  message: string;
}

/** A problem and where in its file the node it is about starts (1-based), when it is about one. */
export type LocatedProblem = ConfigProblem & { line?: number; column?: number };

export interface LoadedConfig {
  agents: AgentsFile;
  approvers: ApproversFile;
  playbooks: Record<string, Playbook>;
  digest: string;
}

/** Thrown when config is invalid; `problems` lists every one, not just the first. */
export class ConfigError extends Error {
  /** What is wrong, file by file. Where (line and column) is in the message, one problem a line. */
  readonly problems: ConfigProblem[];

  constructor(problems: readonly LocatedProblem[]) {
    super(`invalid config:\n${problems.map(formatProblem).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems.map(({ file, path, message }) => ({ file, path, message }));
  }
}

/** `  <file>: <path>: <message> (<file>:<line>:<column>)`: the position last, clickable in editors. */
function formatProblem(p: LocatedProblem): string {
  const where = p.line === undefined ? '' : ` (${p.file}:${p.line}:${p.column})`;
  return `  ${p.file}${p.path ? `: ${p.path}` : ''}: ${p.message}${where}`;
}

/** One parsed file: its value when valid, and where a path into it starts (see {@link locate}). */
interface ParsedFile<T> {
  value?: T;
  at: (path: ConfigPath) => { line: number; column: number } | undefined;
}

async function parseFile<T>(
  file: string,
  schema: ZodType<T>,
  root: string,
  problems: LocatedProblem[],
): Promise<ParsedFile<T>> {
  const rel = path.relative(root, file) || file;
  const nowhere = { at: () => undefined };
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    problems.push({ file: rel, path: '', message: `cannot read: ${(err as Error).message}` });
    return nowhere;
  }
  const lines = new LineCounter();
  const doc = YAML.parseDocument(text, { prettyErrors: true, lineCounter: lines });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      // The first line of the message (the code excerpt under it would break the one-problem-a-line list).
      const message = `YAML: ${e.message.split('\n')[0]?.replace(/:$/, '')}`;
      const [line, column] = [e.linePos?.[0].line, e.linePos?.[0].col];
      problems.push({ file: rel, path: '', message, line, column });
    }
    return nowhere;
  }
  const at = (p: ConfigPath): { line: number; column: number } | undefined => {
    const offset = locate(doc.contents, p);
    if (offset === undefined) return undefined;
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };
  const parsed = schema.safeParse(doc.toJS());
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      // An unknown key is pointed at itself rather than at the mapping that holds it.
      const node =
        issue.code === 'unrecognized_keys' ? [...issue.path, ...issue.keys.slice(0, 1)] : issue.path;
      problems.push({ file: rel, path: formatPath(issue.path), message: issue.message, ...at(node) });
    }
    return { at };
  }
  return { value: parsed.data, at };
}

/**
 * The offset in the file where the node at `path` starts: the key that names it when it has one
 * (the line that says `quorum:` or `limits:`), else the node itself (a list item, the document).
 * When the path goes further than the file (a required key is missing, a default filled it in),
 * the nearest ancestor that is in the file.
 */
function locate(root: unknown, path: ConfigPath): number | undefined {
  let node = root;
  let key: Node | undefined;
  for (const step of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(step));
      if (!pair) break;
      [node, key] = [pair.value, isNode(pair.key) ? pair.key : undefined];
    } else if (isSeq(node) && typeof step === 'number' && step < node.items.length) {
      [node, key] = [node.items[step], undefined];
    } else break;
  }
  return (key ?? (isNode(node) ? node : undefined))?.range?.[0];
}

/**
 * Reads `agents.yaml`, `approvers.yaml` and every `playbooks/*.yaml` under `configDir`, validates them and their
 * cross-references, and computes a digest over the validated content. Throws {@link ConfigError}
 * listing every problem.
 */
export async function loadConfig(configDir: string): Promise<LoadedConfig> {
  const problems: LocatedProblem[] = [];
  const root = path.dirname(configDir);
  const agentsFile = path.join(configDir, 'agents.yaml');
  const agents = await parseFile(agentsFile, AgentsFileSchema, root, problems);
  // Every MCP tool an agent names is declared and pinned in the same file.
  for (const c of agents.value ? checkMcpTools(agents.value) : [])
    problems.push({
      file: path.relative(root, agentsFile),
      path: formatPath(c.at),
      message: c.message,
      ...agents.at(c.at),
    });
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
    const { value, at } = await parseFile(file, PlaybookSchema, root, problems);
    if (!value) continue;
    const expected = name.replace(/\.ya?ml$/, '');
    if (value.id !== expected) {
      problems.push({
        file: rel,
        path: 'id',
        message: `must match the file name ("${expected}")`,
        ...at(['id']),
      });
    }
    // The fixed plan's limits need nothing from agents.yaml: checked even when that file is broken.
    const checks = agents.value ? checkPlaybookAgainstAgents(value, agents.value) : checkFixedPlan(value);
    if (approvers.value) checks.push(...checkGatesAgainstApprovers(value, approvers.value));
    // The path is in the message ("agents: ..."); the position is that of the node naming the reference.
    for (const c of checks) problems.push({ file: rel, path: '', message: c.message, ...at(c.at) });
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

/** Re-exported for the activities that sign with it (the one implementation is contract/canonical.ts). */
export { canonicalJson };

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
  const mcpServers = mcpServersFor(config.agents.mcpServers, [lead, ...Object.values(specialists)]);
  const resolve = (gate: GateConfig): ResolvedGate => ({
    ...gate,
    approvers: resolveApprovers(gate.approvers, config.approvers),
    escalation: gate.escalation && {
      ...gate.escalation,
      approvers: resolveApprovers(gate.escalation.approvers, config.approvers),
    },
  });
  const gates = { plan: resolve(playbook.gates.plan), report: resolve(playbook.gates.report) };
  const people = Object.values(gates).flatMap((g) => [...g.approvers, ...(g.escalation?.approvers ?? [])]);
  const approverKeys = keysOf(config.approvers, people);
  const passkeys = passkeysOf(config.approvers, people);
  return {
    digest: config.digest,
    playbook,
    lead,
    specialists,
    gates,
    searchAttributes,
    approverKeys,
    ...(Object.keys(passkeys).length ? { approverPasskeys: passkeys } : {}),
    ...(mcpServers ? { mcpServers } : {}),
  };
}

/**
 * Stores a task's config snapshot in the artifact store, content-addressed (idempotent), under the
 * name the workflow computes for it (contract/activities.ts `snapshotRefOf`): its canonical JSON as
 * the workflow receives it, after the payload's JSON round trip. Model activities then resolve the
 * agents they are given by reference ({@link snapshotAgents}).
 */
export async function putSnapshot(store: ObjectStore, snapshot: ConfigSnapshot): Promise<string> {
  const received = JSON.parse(JSON.stringify(snapshot)) as ConfigSnapshot;
  return (await putArtifact(store, canonicalJson(received))).id;
}

/** Parsed snapshots a worker keeps, by hash: a task uses one for its whole life. */
const SNAPSHOTS_CACHED = 32;

/** Which agent of the snapshot a reference names: the lead (plan, synthesis) or a specialist (a step). */
export type AgentRole = 'lead' | 'specialist';

/**
 * What a model activity runs its agent with: the agent itself when given inline (inputs scheduled
 * before v12, or by a child holding a narrowed copy of the snapshot); for a reference, the agent of
 * that role in the stored snapshot (read and checked against its hash by `getArtifact`, parsed
 * snapshots cached, at most {@link SNAPSHOTS_CACHED}), its `maxTokens` lowered to the reference's
 * when that is lower. A reference that does not resolve fails for good, naming the snapshot and
 * the agent: every worker reads the same store.
 */
export function snapshotAgents(
  store: ObjectStore,
): (given: GivenAgent, role: AgentRole) => Promise<SnapshotAgent> {
  const cache = new LRUCache<string, Promise<ConfigSnapshot>>({ max: SNAPSHOTS_CACHED });
  const read = (hash: string): Promise<ConfigSnapshot> => {
    let snapshot = cache.get(hash);
    if (!snapshot) {
      snapshot = getArtifact(store, hash).then((text) => JSON.parse(text) as ConfigSnapshot);
      cache.set(hash, snapshot);
      snapshot.catch(() => cache.delete(hash));
    }
    return snapshot;
  };
  return async (given, role) => {
    if (!isAgentRef(given)) return given;
    const parsed = AgentRefSchema.safeParse(given);
    if (!parsed.success) {
      throw ApplicationFailure.nonRetryable(
        `malformed agent reference: ${parsed.error.issues
          .slice(0, 5)
          .map((i) => `${i.path.join('.') || 'agent'}: ${i.message}`)
          .join('; ')}`,
        FailureTypes.InvalidInput,
      );
    }
    const ref = parsed.data;
    let snapshot: ConfigSnapshot;
    try {
      snapshot = await read(ref.snapshot);
    } catch (err) {
      throw ApplicationFailure.nonRetryable(
        `agent "${ref.id}" is given by reference to config snapshot ${ref.snapshot}, which cannot be read: ${failureMessage(err)}`,
        FailureTypes.ArtifactMissing,
      );
    }
    const specialists = snapshot.specialists ?? {};
    const agent =
      role === 'lead'
        ? snapshot.lead?.id === ref.id
          ? snapshot.lead
          : undefined
        : Object.hasOwn(specialists, ref.id)
          ? specialists[ref.id]
          : undefined;
    if (!agent) {
      throw ApplicationFailure.nonRetryable(
        `agent "${ref.id}" is not ${role === 'lead' ? 'the lead' : 'a specialist'} of config snapshot ${ref.snapshot}`,
        FailureTypes.PlanInvalid,
      );
    }
    return ref.maxTokens !== undefined && ref.maxTokens < agent.maxTokens
      ? { ...agent, maxTokens: ref.maxTokens }
      : agent;
  };
}
