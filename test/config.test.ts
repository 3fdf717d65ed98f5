/**
 * Loading `config/`: the real config is valid and complete, its digest tracks content and nothing
 * else, and broken config is reported in full — every problem, with its file, path and a reason —
 * by `loadConfig` and by `npm run config:check` alike.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import {
  ConfigError,
  digestOf,
  loadConfig,
  snapshotFor,
  type ConfigProblem,
  type LoadedConfig,
} from '../activities/config';
import { PROJECT_ROOT } from '../activities/options';
import { unpricedModels } from '../contract/usage';

const CONFIG_DIR = path.join(PROJECT_ROOT, 'config');
const TSX = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx');

const tempDirs: string[] = [];

/** A fresh copy of the real config in a temporary folder; `name` makes the copy `<tmp>/<name>`. */
async function copyConfig(name?: string): Promise<string> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-cfg-'));
  tempDirs.push(tmp);
  const dir = name ? path.join(tmp, name) : tmp;
  await fs.cp(CONFIG_DIR, dir, { recursive: true });
  return dir;
}

/** Rewrites one file of a config copy; fails the test if the edit did not change anything. */
async function edit(dir: string, rel: string, change: (text: string) => string): Promise<void> {
  const file = path.join(dir, rel);
  const before = await fs.readFile(file, 'utf8');
  const after = change(before);
  expect(after).not.toBe(before);
  await fs.writeFile(file, after);
}

/** The ConfigError `loadConfig` throws for `dir` (fails the test if it loads). */
async function configError(dir: string): Promise<ConfigError> {
  try {
    await loadConfig(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`expected ${dir} to be refused`);
}

/** Runs the config:check CLI against `dir`. */
function configCheck(dir: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(TSX, ['cli/config-check.ts'], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, BATON_CONFIG_DIR: dir },
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** `value`, or a thrown error naming `what` when it is missing. */
function must<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`expected ${what}`);
  return value;
}

/** A copy of a parsed YAML value with every mapping's keys in reverse order. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .reverse()
        .map(([k, v]) => [k, reverseKeys(v)]),
    );
  }
  return value;
}

afterAll(async () => {
  await Promise.all(tempDirs.map((d) => fs.rm(d, { recursive: true, force: true })));
});

// ---------------------------------------------------------------------------------------------------------

describe('digestOf', () => {
  test('is sha256 over content: key order and undefined fields do not count, values and array order do', () => {
    const digest = digestOf({ a: 1, b: { c: [1, 2], d: 'x' } });
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(digestOf({ b: { d: 'x', c: [1, 2] }, a: 1 })).toBe(digest);
    expect(digestOf({ a: 1, b: { c: [1, 2], d: 'x', e: undefined } })).toBe(digest);
    expect(digestOf({ a: 2, b: { c: [1, 2], d: 'x' } })).not.toBe(digest);
    expect(digestOf({ a: 1, b: { c: [2, 1], d: 'x' } })).not.toBe(digest);
    expect(digestOf({ a: '1', b: { c: [1, 2], d: 'x' } })).not.toBe(digest);
  });
});

describe('the real config/', () => {
  let config: LoadedConfig;
  beforeAll(async () => {
    config = await loadConfig(CONFIG_DIR);
  });

  test('loads with the fact-sheet, research-brief and team-review playbooks', () => {
    expect(Object.keys(config.playbooks).sort()).toEqual(['fact-sheet', 'research-brief', 'team-review']);
    expect(must(config.playbooks['research-brief'], 'research-brief').id).toBe('research-brief');
    expect(must(config.playbooks['fact-sheet'], 'fact-sheet').fixedPlan?.steps.map((s) => s.id)).toEqual([
      'gather',
      'check',
      'write',
    ]);
  });

  test('research-brief lets the lead plan with at least 4 specialists', () => {
    const brief = must(config.playbooks['research-brief'], 'the research-brief playbook');
    expect(brief.agents.length).toBeGreaterThanOrEqual(4);
    expect(brief.agents).not.toContain(config.agents.lead);
    expect(brief.fixedPlan).toBeUndefined();
  });

  test('declares a lead and at least 4 specialists, each spelling out model, prompt, tokens, timeouts and retry', async () => {
    const ids = config.agents.agents.map((a) => a.id);
    expect(ids).toContain(config.agents.lead);
    expect(ids.filter((id) => id !== config.agents.lead).length).toBeGreaterThanOrEqual(4);
    // Defaults would fill timeouts and retry in the parsed config, so look at what the file itself says.
    const raw = YAML.parse(await fs.readFile(path.join(CONFIG_DIR, 'agents.yaml'), 'utf8')) as {
      agents: Record<string, unknown>[];
    };
    expect(raw.agents).toHaveLength(ids.length);
    for (const declared of raw.agents) {
      expect(Object.keys(declared)).toEqual(
        expect.arrayContaining(['id', 'model', 'systemPrompt', 'maxTokens', 'timeouts', 'retry']),
      );
    }
    for (const a of config.agents.agents) {
      expect(a.model).not.toBe('');
      expect(a.systemPrompt.trim().length).toBeGreaterThan(0);
      expect(a.maxTokens).toBeGreaterThanOrEqual(64);
    }
  });

  test('has a digest of the form sha256:<64 hex>, the same on every load', async () => {
    expect(config.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const again = await loadConfig(CONFIG_DIR);
    expect(again.digest).toBe(config.digest);
  });

  test('the digest ignores comments, formatting and key order', async () => {
    const dir = await copyConfig();
    const files = [
      'agents.yaml',
      'approvers.yaml',
      ...(await fs.readdir(path.join(dir, 'playbooks'))).map((n) => `playbooks/${n}`),
    ];
    for (const rel of files) {
      await edit(dir, rel, (text) => {
        const reordered = YAML.stringify(reverseKeys(YAML.parse(text)), { indent: 4 });
        return `# Reformatted copy: keys reversed, comments moved.\n\n${reordered}\n# trailing comment\n`;
      });
    }
    const reformatted = await loadConfig(dir);
    expect(reformatted.digest).toBe(config.digest);
    // The copy really was rewritten: the first key of agents.yaml is no longer `lead`.
    const text = await fs.readFile(path.join(dir, 'agents.yaml'), 'utf8');
    expect(text).toMatch(/^# Reformatted copy/);
    expect(Object.keys(YAML.parse(text) as object)[0]).toBe('prices');
  });

  test.each<[string, string, (text: string) => string]>([
    ['an agent value', 'agents.yaml', (t) => t.replace('maxTokens: 8000', 'maxTokens: 8001')],
    ['a system prompt', 'agents.yaml', (t) => t.replace('You are an analyst.', 'You are an economist.')],
    [
      'a playbook limit',
      'playbooks/research-brief.yaml',
      (t) => t.replace('maxParallel: 4', 'maxParallel: 3'),
    ],
    ['a fixed plan question', 'playbooks/fact-sheet.yaml', (t) => t.replace('one-page', 'two-page')],
    [
      'a group of approvers',
      'approvers.yaml',
      (t) => t.replace('members: [carol@example.com]', 'members: [carol@example.com, bob@example.com]'),
    ],
    ['a gate quorum', 'playbooks/team-review.yaml', (t) => t.replace('quorum: 2', 'quorum: 1')],
    ['a price', 'agents.yaml', (t) => t.replace('output: 20,', 'output: 21,')],
  ])('the digest changes when %s changes', async (_what, rel, change) => {
    const dir = await copyConfig();
    await edit(dir, rel, change);
    const changed = await loadConfig(dir);
    expect(changed.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(changed.digest).not.toBe(config.digest);
  });

  test('snapshotFor an unknown playbook is undefined', () => {
    expect(snapshotFor(config, 'no-such-playbook')).toBeUndefined();
  });

  test.each(['research-brief', 'fact-sheet', 'team-review'])(
    'snapshotFor %s holds the lead and exactly the playbook specialists',
    (id) => {
      const snapshot = snapshotFor(config, id);
      expect(snapshot).toBeDefined();
      const playbook = must(config.playbooks[id], `playbook ${id}`);
      // Each agent comes with the price of its model from the prices table, for cost estimates.
      const priced = (a: (typeof config.agents.agents)[number]) => ({
        ...a,
        price: must(config.agents.prices?.[a.model], `the price of ${a.model}`),
      });
      const byId = new Map(config.agents.agents.map((a) => [a.id, priced(a)]));
      expect(snapshot?.digest).toBe(config.digest);
      expect(snapshot?.playbook).toEqual(playbook);
      expect(snapshot?.lead).toEqual(byId.get(config.agents.lead));
      expect(Object.keys(snapshot?.specialists ?? {}).sort()).toEqual([...playbook.agents].sort());
      for (const sid of playbook.agents) expect(snapshot?.specialists[sid]).toEqual(byId.get(sid));
      expect(snapshot?.specialists).not.toHaveProperty(config.agents.lead);
    },
  );

  test('snapshotFor team-review resolves gate approvers to people: editors, escalating to research leads', () => {
    const members = (group: string): string[] =>
      must(
        config.approvers.groups.find((g) => g.id === group),
        `group ${group}`,
      ).members;
    const editors = members('editors');
    const leads = members('research-leads');
    expect(editors).toEqual(['alice@example.com', 'bob@example.com']);
    expect(leads).toEqual(['carol@example.com']);

    const snapshot = must(snapshotFor(config, 'team-review'), 'the team-review snapshot');
    expect(snapshot.gates.plan).toEqual({
      required: true,
      approvers: editors,
      quorum: 2,
      deadline: '2d',
      onDeadline: 'escalate',
      escalation: { approvers: leads, quorum: 1, deadline: '1d', onDeadline: 'reject' },
      reminders: ['1d'],
    });
    expect(snapshot.gates.report.approvers).toEqual([...editors, ...leads]);
    expect(snapshot.gates.report.escalation).toBeUndefined();
    // The playbook itself keeps the references as written.
    expect(snapshot.playbook.gates.plan.approvers).toEqual(['group:editors']);
    expect(snapshot.playbook.gates.plan.escalation?.approvers).toEqual(['group:research-leads']);
  });

  test('snapshotFor research-brief keeps "*" as its approvers', () => {
    const snapshot = must(snapshotFor(config, 'research-brief'), 'the research-brief snapshot');
    expect(snapshot.gates.plan.approvers).toEqual(['*']);
    expect(snapshot.gates.report.approvers).toEqual(['*']);
  });

  test('config:check exits 0 and says "config OK" with the digest', () => {
    const { status, stdout } = configCheck(CONFIG_DIR);
    expect(status).toBe(0);
    expect(stdout).toContain(
      'config OK: 5 agents, 3 playbooks (fact-sheet, research-brief, team-review); digest ',
    );
    expect(stdout).toContain(config.digest);
    expect(stdout).not.toContain('no price');
  });

  test('prices every model its agents use, each with all four figures', () => {
    expect(unpricedModels(config.agents)).toEqual([]);
    for (const model of new Set(config.agents.agents.map((a) => a.model))) {
      expect(Object.keys(must(config.agents.prices?.[model], `the price of ${model}`)).sort()).toEqual([
        'cacheRead',
        'cacheWrite',
        'input',
        'output',
      ]);
    }
  });

  test('the prices table is marked as to be checked against Anthropic’s price list', async () => {
    const text = await fs.readFile(path.join(CONFIG_DIR, 'agents.yaml'), 'utf8');
    expect(text).toMatch(/CHECK THESE AGAINST ANTHROPIC'S CURRENT PRICE LIST/);
  });

  test('without a prices table config is still valid; snapshots carry no price and config:check says costs are unknown', async () => {
    const dir = await copyConfig();
    await edit(dir, 'agents.yaml', (t) => t.slice(0, t.indexOf('\n# Prices for cost estimates')));
    const unpriced = await loadConfig(dir);
    expect(unpriced.agents.prices).toBeUndefined();
    expect(unpriced.digest).not.toBe(config.digest);
    const snapshot = must(snapshotFor(unpriced, 'research-brief'), 'the research-brief snapshot');
    expect(snapshot.lead).not.toHaveProperty('price');
    const { status, stdout } = configCheck(dir);
    expect(status).toBe(0);
    expect(stdout).toContain(
      'note: agents.yaml lists no price for claude-haiku-5-5, claude-opus-5-5, claude-sonnet-5-5: cost estimates for the agents using them are shown as unknown',
    );
  });
});

// ---------------------------------------------------------------------------------------------------------

/** An expected problem; `file` is relative to the config folder, the message a substring or pattern. */
interface Expected {
  file: string;
  path: string;
  message: string | RegExp;
}

interface BadCase {
  name: string;
  breakIt: (dir: string) => Promise<void>;
  problems: Expected[];
}

const BAD_CASES: BadCase[] = [
  {
    name: 'a YAML syntax error',
    breakIt: (dir) =>
      edit(dir, 'playbooks/research-brief.yaml', (t) => t.replace('maxSteps: 8', 'maxSteps: [8')),
    problems: [{ file: 'playbooks/research-brief.yaml', path: '', message: /^YAML: .*line 9, column 3/ }],
  },
  {
    name: 'an unknown key',
    breakIt: (dir) =>
      edit(dir, 'playbooks/research-brief.yaml', (t) =>
        t.replace('maxParallel: 4', 'maxParallel: 4\n  maxCost: 10'),
      ),
    problems: [
      { file: 'playbooks/research-brief.yaml', path: 'limits', message: 'Unrecognized key: "maxCost"' },
    ],
  },
  {
    name: 'a value of the wrong type',
    breakIt: (dir) => edit(dir, 'agents.yaml', (t) => t.replace('maxTokens: 4000', 'maxTokens: "4000"')),
    problems: [
      {
        file: 'agents.yaml',
        path: 'agents[1].maxTokens',
        message: 'Invalid input: expected number, received string',
      },
    ],
  },
  {
    name: 'a tool that is not in the registry',
    breakIt: (dir) =>
      edit(dir, 'agents.yaml', (t) => t.replace('tools: [web_search]', 'tools: [web_search, bash]')),
    problems: [
      {
        file: 'agents.yaml',
        path: 'agents[1].tools[1]',
        message:
          'must be a tool of the registry ("web_search", "web_fetch"), by name or as { name, allowedDomains, … }',
      },
    ],
  },
  {
    name: 'a price with its cache columns swapped',
    breakIt: (dir) =>
      edit(dir, 'agents.yaml', (t) =>
        t.replace(
          'claude-sonnet-5-5: { input: 2, output: 10, cacheWrite: 2.5, cacheRead: 0.2 }',
          'claude-sonnet-5-5: { input: 2, output: 10, cacheWrite: 0.2, cacheRead: 2.5 }',
        ),
      ),
    problems: [
      {
        file: 'agents.yaml',
        path: 'prices.claude-sonnet-5-5.cacheRead',
        message: /^must not exceed input \(2\)/,
      },
      {
        file: 'agents.yaml',
        path: 'prices.claude-sonnet-5-5.cacheWrite',
        message: /^must not be below input \(2\)/,
      },
    ],
  },
  {
    name: 'a playbook id that does not match its file name',
    breakIt: (dir) =>
      fs.rename(path.join(dir, 'playbooks/fact-sheet.yaml'), path.join(dir, 'playbooks/facts.yaml')),
    problems: [{ file: 'playbooks/facts.yaml', path: 'id', message: 'must match the file name ("facts")' }],
  },
  {
    name: 'a playbook naming an undeclared agent',
    breakIt: (dir) =>
      edit(dir, 'playbooks/research-brief.yaml', (t) =>
        t.replace('fact-checker, writer]', 'fact-checker, writer, coder]'),
      ),
    problems: [
      {
        file: 'playbooks/research-brief.yaml',
        path: '',
        message: 'agents: "coder" is not declared in agents.yaml',
      },
    ],
  },
  {
    name: 'a fixed plan naming an agent its playbook does not allow',
    breakIt: (dir) =>
      edit(dir, 'playbooks/fact-sheet.yaml', (t) => t.replace('agent: fact-checker', 'agent: analyst')),
    problems: [
      {
        file: 'playbooks/fact-sheet.yaml',
        path: '',
        message:
          'fixedPlan: steps[1] ("check"): agent "analyst" is not allowed here; use one of: researcher, fact-checker, writer',
      },
    ],
  },
  {
    name: 'a playbook naming an undeclared group of approvers',
    breakIt: (dir) =>
      edit(dir, 'playbooks/team-review.yaml', (t) =>
        t.replace(
          "approvers: ['group:editors', 'group:research-leads']",
          "approvers: ['group:editors', 'group:ghosts']",
        ),
      ),
    problems: [
      {
        file: 'playbooks/team-review.yaml',
        path: '',
        message: 'gates.report.approvers: group "ghosts" is not declared in approvers.yaml',
      },
    ],
  },
  {
    name: 'a gate quorum its approvers cannot meet',
    breakIt: (dir) => edit(dir, 'playbooks/team-review.yaml', (t) => t.replace('quorum: 2', 'quorum: 3')),
    problems: [
      {
        file: 'playbooks/team-review.yaml',
        path: '',
        message: 'gates.plan.quorum: 3 approvals needed but only 2 approver(s) named',
      },
    ],
  },
  {
    name: "a quorum over 1 that '*' could meet with one person's claimed names",
    breakIt: (dir) =>
      edit(dir, 'playbooks/team-review.yaml', (t) =>
        t.replace("approvers: ['group:editors']\n    quorum: 2", "approvers: ['*']\n    quorum: 2"),
      ),
    problems: [
      {
        file: 'playbooks/team-review.yaml',
        path: '',
        message:
          "gates.plan.quorum: 2 approvals from '*' (anyone) could all come from one person claiming several names; name the approvers, or use quorum 1",
      },
    ],
  },
  {
    name: 'an approver group member not declared under people',
    breakIt: (dir) =>
      edit(dir, 'approvers.yaml', (t) =>
        t.replace('members: [carol@example.com]', 'members: [carol@example.com, dan@example.com]'),
      ),
    problems: [
      {
        file: 'approvers.yaml',
        path: 'groups[1].members[1]',
        message: '"dan@example.com" is not declared under people',
      },
    ],
  },
  {
    name: 'a reminder at the deadline',
    breakIt: (dir) =>
      edit(dir, 'playbooks/team-review.yaml', (t) => t.replace('reminders: [1d]', 'reminders: [2d]')),
    problems: [
      {
        file: 'playbooks/team-review.yaml',
        path: 'gates.plan.reminders[0]',
        message: 'must come before the deadline (2d)',
      },
    ],
  },
  {
    name: 'a gate deadline that is not a duration',
    breakIt: (dir) =>
      edit(dir, 'playbooks/research-brief.yaml', (t) => t.replace('deadline: 7d', 'deadline: 7 days')),
    problems: [
      {
        file: 'playbooks/research-brief.yaml',
        path: 'gates.plan.deadline',
        message: 'must be a whole number followed by ms, s, m, h or d, e.g. "30s" or "10m"',
      },
    ],
  },
  {
    name: 'a missing approvers.yaml',
    breakIt: (dir) => fs.rm(path.join(dir, 'approvers.yaml')),
    problems: [
      { file: 'approvers.yaml', path: '', message: /^cannot read: ENOENT: no such file or directory/ },
    ],
  },
  {
    name: 'a missing agents.yaml',
    breakIt: (dir) => fs.rm(path.join(dir, 'agents.yaml')),
    problems: [{ file: 'agents.yaml', path: '', message: /^cannot read: ENOENT: no such file or directory/ }],
  },
  {
    name: 'an empty playbooks folder',
    breakIt: async (dir) => {
      for (const name of await fs.readdir(path.join(dir, 'playbooks')))
        await fs.rm(path.join(dir, 'playbooks', name));
    },
    problems: [{ file: 'playbooks', path: '', message: 'no playbook (*.yaml) found' }],
  },
];

/** `expected` as matchers, with files relative to the folder that holds the config folder. */
function matchers(dir: string, expected: Expected[]): ConfigProblem[] {
  const base = path.basename(dir);
  return expected.map((e) => ({
    file: `${base}/${e.file}`,
    path: e.path,
    message: typeof e.message === 'string' ? e.message : expect.stringMatching(e.message),
  }));
}

describe('broken config', () => {
  test.each(BAD_CASES.map((c) => [c.name, c] as const))(
    '%s is a ConfigError naming file, path and reason',
    async (_name, c) => {
      const dir = await copyConfig();
      await c.breakIt(dir);
      const err = await configError(dir);
      expect(err.problems).toEqual(matchers(dir, c.problems));
      // The error's own message lists the problems too, for logs that only print `message`.
      for (const p of err.problems)
        expect(err.message).toContain(`${p.file}${p.path ? `: ${p.path}` : ''}: ${p.message}`);
    },
  );

  test('files are named relative to the folder above the config folder, e.g. config/agents.yaml', async () => {
    const dir = await copyConfig('config');
    await edit(dir, 'agents.yaml', (t) => t.replace('lead: lead', 'lead: boss'));
    const err = await configError(dir);
    expect(err.problems).toEqual([
      { file: 'config/agents.yaml', path: 'lead', message: 'no agent with id "boss" is declared' },
    ]);
  });

  test('problems in several files are all reported at once', async () => {
    const dir = await copyConfig();
    await edit(dir, 'agents.yaml', (t) => t.replace('maxTokens: 8000', 'maxTokens: lots'));
    await edit(dir, 'playbooks/research-brief.yaml', (t) => t.replace('maxDepth: 1', 'maxDepth: 7'));
    await fs.rename(path.join(dir, 'playbooks/fact-sheet.yaml'), path.join(dir, 'playbooks/facts.yaml'));
    const err = await configError(dir);
    expect(err.problems).toEqual(
      matchers(dir, [
        {
          file: 'agents.yaml',
          path: 'agents[0].maxTokens',
          message: 'Invalid input: expected number, received string',
        },
        { file: 'playbooks/facts.yaml', path: 'id', message: 'must match the file name ("facts")' },
        {
          file: 'playbooks/research-brief.yaml',
          path: 'limits.maxDepth',
          message: 'Too big: expected number to be <=3',
        },
      ]),
    );
  });

  test('config:check exits 1 and lists every problem with its file and path', async () => {
    const dir = await copyConfig();
    await edit(dir, 'agents.yaml', (t) =>
      t.replace(
        'backoffCoefficient: 2, maximumInterval: 2m',
        'backoffCoefficient: 20, maximumInterval: 2 minutes',
      ),
    );
    await edit(dir, 'playbooks/research-brief.yaml', (t) =>
      t.replace('onDeadline: reject', 'onDeadline: ignore'),
    );
    await edit(dir, 'playbooks/fact-sheet.yaml', (t) => t.replace('maxParallel: 2', 'maxParallel: 0'));
    const { problems } = await configError(dir);
    expect(problems.map((p) => `${p.file} ${p.path}`)).toEqual(
      [
        'agents.yaml agents[0].retry.backoffCoefficient',
        'agents.yaml agents[0].retry.maximumInterval',
        'playbooks/fact-sheet.yaml limits.maxParallel',
        'playbooks/research-brief.yaml gates.plan.onDeadline',
      ].map((s) => `${path.basename(dir)}/${s}`),
    );

    const { status, stdout, stderr } = configCheck(dir);
    expect(status).toBe(1);
    expect(stdout).not.toContain('config OK');
    expect(stderr).toContain(`config has ${problems.length} problem(s):`);
    for (const p of problems) {
      expect(stderr).toContain(`  ${p.file}${p.path ? `: ${p.path}` : ''}: ${p.message}`);
    }
  });
});

describe('each problem names the line and column of its node', () => {
  /** `<file>:<line>:<column>` of the first `needle` in a config copy's file, as problems print it. */
  async function position(dir: string, rel: string, needle: string): Promise<string> {
    const text = await fs.readFile(path.join(dir, rel), 'utf8');
    const before = text.slice(0, text.indexOf(needle));
    expect(before.length).toBeLessThan(text.length);
    const line = before.split('\n').length;
    const column = before.length - before.lastIndexOf('\n');
    return `${path.basename(dir)}/${rel}:${line}:${column}`;
  }

  test('a wrong value in a playbook: its file, line and column, after the problem as before', async () => {
    const dir = await copyConfig();
    await edit(dir, 'playbooks/team-review.yaml', (t) => t.replace('quorum: 2', 'quorum: 0'));
    const at = await position(dir, 'playbooks/team-review.yaml', 'quorum: 0');
    const err = await configError(dir);
    expect(err.problems).toEqual(
      matchers(dir, [
        {
          file: 'playbooks/team-review.yaml',
          path: 'gates.plan.quorum',
          message: 'Too small: expected number to be >=1',
        },
      ]),
    );
    const line = `  ${path.basename(dir)}/playbooks/team-review.yaml: gates.plan.quorum: Too small: expected number to be >=1 (${at})`;
    expect(err.message.split('\n')).toContain(line);
    // config:check prints the same line.
    const { status, stderr } = configCheck(dir);
    expect(status).toBe(1);
    expect(stderr.split('\n')).toContain(line);
  });

  test('a playbook naming an undeclared agent: the line and column of that name', async () => {
    const dir = await copyConfig();
    await edit(dir, 'playbooks/research-brief.yaml', (t) =>
      t.replace('fact-checker, writer]', 'fact-checker, writer, coder]'),
    );
    const at = await position(dir, 'playbooks/research-brief.yaml', 'coder');
    const err = await configError(dir);
    expect(err.message).toContain(
      `playbooks/research-brief.yaml: agents: "coder" is not declared in agents.yaml (${at})`,
    );
  });

  test('an approver group a gate names but approvers.yaml does not declare: the line of the reference', async () => {
    const dir = await copyConfig();
    await edit(dir, 'playbooks/team-review.yaml', (t) =>
      t.replace("'group:editors', 'group:research-leads'", "'group:editors', 'group:ghosts'"),
    );
    const at = await position(dir, 'playbooks/team-review.yaml', "'group:ghosts'");
    const err = await configError(dir);
    expect(err.message).toContain(`group "ghosts" is not declared in approvers.yaml (${at})`);
  });

  test('a missing required key: the line of the mapping that lacks it', async () => {
    const dir = await copyConfig();
    await edit(dir, 'playbooks/research-brief.yaml', (t) => t.replace(/\n {2}maxSteps: 8[^\n]*/, ''));
    const at = await position(dir, 'playbooks/research-brief.yaml', 'limits:');
    const err = await configError(dir);
    expect(err.problems).toEqual(
      matchers(dir, [
        {
          file: 'playbooks/research-brief.yaml',
          path: 'limits.maxSteps',
          message: 'Invalid input: expected number, received undefined',
        },
      ]),
    );
    expect(err.message).toContain(
      `limits.maxSteps: Invalid input: expected number, received undefined (${at})`,
    );
  });

  test('a key the schema does not know: the line of that key', async () => {
    const dir = await copyConfig();
    await edit(dir, 'agents.yaml', (t) =>
      t.replace('maxTokens: 8000', 'maxTokens: 8000\n    temperature: 1'),
    );
    const at = await position(dir, 'agents.yaml', 'temperature');
    const err = await configError(dir);
    expect(err.message).toContain(`agents[0]: Unrecognized key: "temperature" (${at})`);
  });

  test('a YAML syntax error: the position the parser reports, in the same form', async () => {
    const dir = await copyConfig();
    await edit(dir, 'playbooks/research-brief.yaml', (t) => t.replace('maxSteps: 8', 'maxSteps: [8'));
    const err = await configError(dir);
    expect(err.message).toContain(
      `at line 9, column 3 (${path.basename(dir)}/playbooks/research-brief.yaml:9:3)`,
    );
  });
});
