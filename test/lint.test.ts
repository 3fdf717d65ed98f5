/**
 * Issue 5, "No generated code, provably": the `noGeneratedCode` block of eslint.config.mjs forbids every
 * way runtime code could turn a string into code, start a process or load a module by computed name
 * (docs/architecture.md, "No generated code"). This test runs the project's real ESLint config through
 * ESLint's Node API: each forbidden form must be reported, with the expected rule, in runtime folders
 * (workflows/ included, whose determinism rules configure imports differently); allowed forms must not
 * be; and the repository's own runtime code must pass.
 *
 * ESLint runs in one plain Node process (test/fixtures/lint/run-eslint.mjs: Jest's module sandbox cannot
 * import() the config), once for the whole file: type-aware linting builds the TypeScript program once.
 * Probes are linted as text at `<dir>/__lint_probe__.ts`, a path that never exists on disk.
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const RUNNER = path.join(__dirname, 'fixtures', 'lint', 'run-eslint.mjs');
const PROBE = '__lint_probe__.ts';

/** Must match RUNTIME_DIRS in eslint.config.mjs; the last test checks that no code folder is missing. */
const RUNTIME_DIRS = [
  'lib',
  'contract',
  'workflows',
  'activities',
  'workers',
  'config',
  'cli',
  'standin',
  'scripts',
  'eval',
  'inbox',
  'client',
  'local',
];
/** Development tools that start real processes (tests, benchmarks): the code-generation bans from strings still hold. */
const DEV_DIRS = ['test', 'bench'];

/** The rules that carry "no generated code"; anything else a probe triggers is not this test's concern. */
const CODE_RULES = [
  'no-eval',
  'no-new-func',
  '@typescript-eslint/no-implied-eval',
  'no-restricted-syntax',
  'no-restricted-globals',
  'no-restricted-properties',
];

interface Finding {
  ruleId: string | null;
  message: string;
  line: number;
  fatal: boolean;
}

interface LintResponse {
  probes: { filePath: string; messages: Finding[] }[];
  files: { filePath: string; messages: Finding[] }[];
  configs: { filePath: string; rules: Record<string, unknown> }[];
}

interface LintRequest {
  cwd: string;
  probeName: string;
  ruleIds: string[];
  probes: { filePath: string; code: string }[];
  lintPaths: string[];
  configFor: string[];
}

function runEslint(request: LintRequest): Promise<LintResponse> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [RUNNER],
      { cwd: ROOT, maxBuffer: 64 * 1024 * 1024, timeout: 170_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${RUNNER} failed: ${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as LintResponse);
      },
    );
    child.stdin?.end(JSON.stringify(request));
  });
}

const MODULE = 'this module runs code or programs';
const FUNCTION = 'no Function constructor';

/** [forbidden code, rule expected, part of its message when the rule alone says too little]. */
const FORBIDDEN: [string, string, string?][] = [
  // eval in every spelling
  ["export const v: unknown = eval('1 + 1');", 'no-eval'],
  ["export const v: unknown = eval?.('1 + 1');", 'no-eval'],
  ["export const v: unknown = (0, eval)('1 + 1');", 'no-eval'],
  ["export const v: unknown = globalThis.eval('1 + 1');", 'no-eval'],
  ["const e = eval;\nexport const v: unknown = e('1 + 1');", 'no-eval'],
  // the Function constructor, directly and not
  ["export const f = new Function('a', 'return a');", 'no-new-func'],
  ["export const f = Function('return 1');", 'no-new-func'],
  [
    "export const f = Reflect.construct(Function, ['return 1']) as unknown;",
    'no-restricted-globals',
    FUNCTION,
  ],
  ["export const f = globalThis.Function('return 1');", 'no-restricted-properties', FUNCTION],
  [
    "export const f = (async () => {}).constructor('return 1') as unknown;",
    'no-restricted-syntax',
    '.constructor',
  ],
  [
    "const AsyncFunction = (async () => {}).constructor as new (code: string) => unknown;\nexport const f = new AsyncFunction('return 1');",
    'no-restricted-syntax',
    '.constructor',
  ],
  [
    "const G = Object.getPrototypeOf(function* () {}).constructor as new (code: string) => unknown;\nexport const f = new G('yield 1');",
    'no-restricted-syntax',
    '.constructor',
  ],
  // loading modules around the import rules
  [
    "export const cp = process.getBuiltinModule('node:child_process') as unknown;",
    'no-restricted-syntax',
    'getBuiltinModule',
  ],
  [
    "const name = 'node:vm';\nexport const vm = (process as unknown as Record<string, (n: string) => unknown>)['getBuiltinModule']!(name);",
    'no-restricted-syntax',
    'getBuiltinModule',
  ],
  [
    "type Loader = { _load(request: string): unknown };\nexport const vm = (module.constructor as unknown as Loader)._load('vm');",
    'no-restricted-syntax',
    '_load',
  ],
  // implied eval: string timers, literal or (type-aware) a string variable
  ["export const t = setTimeout('tick()', 1);", '@typescript-eslint/no-implied-eval'],
  ["export const t = setInterval('tick()', 1000);", '@typescript-eslint/no-implied-eval'],
  [
    "const body: string = 'tick()';\nexport const t = setTimeout(body, 1);",
    '@typescript-eslint/no-implied-eval',
  ],
  // code-running modules, however imported or named
  [
    "import * as cp from 'node:child_process';\nexport const run = cp.execSync;",
    'no-restricted-syntax',
    MODULE,
  ],
  ["import { spawn as go } from 'child_process';\nexport const run = go;", 'no-restricted-syntax', MODULE],
  ["import vm from 'node:vm';\nexport const s = new vm.Script('1');", 'no-restricted-syntax', MODULE],
  ["import vm = require('vm');\nexport const s = new vm.Script('1');", 'no-restricted-syntax', MODULE],
  ["export const vm = require('vm') as unknown;", 'no-restricted-syntax', MODULE],
  ["export const cp = module.require('node:child_process') as unknown;", 'no-restricted-syntax', MODULE],
  ["export const vm = import('node:vm');", 'no-restricted-syntax', MODULE],
  ["export * from 'node:vm';", 'no-restricted-syntax', MODULE],
  ["export { fork } from 'node:cluster';", 'no-restricted-syntax', MODULE],
  [
    "import { Worker } from 'node:worker_threads';\nexport const w = new Worker('1', { eval: true });",
    'no-restricted-syntax',
    MODULE,
  ],
  ["import { Worker } from 'worker_threads';\nexport const W = Worker;", 'no-restricted-syntax', MODULE],
  [
    "import { createRequire } from 'node:module';\nexport const r = createRequire;",
    'no-restricted-syntax',
    MODULE,
  ],
  [
    "import { Session } from 'node:inspector/promises';\nexport const s = Session;",
    'no-restricted-syntax',
    MODULE,
  ],
  [
    "export const b = process.binding('spawn_sync') as unknown;",
    'no-restricted-properties',
    'native bindings',
  ],
  // modules by computed name
  [
    "const name = 'x';\nexport const m = import(name);",
    'no-restricted-syntax',
    'import() only a string literal',
  ],
  [
    "const x = 'y';\nexport const m = import(`./${x}`);",
    'no-restricted-syntax',
    'import() only a string literal',
  ],
  [
    "const n = 'x';\nexport const m = require(n) as unknown;",
    'no-restricted-syntax',
    'require() only a string literal',
  ],
];

/** Ordinary code that must stay allowed, including look-alikes of the forbidden forms. */
const ALLOWED: string[] = [
  "export const m = import('./messages');",
  "export const schema = import('../config/schema');",
  "import path from 'node:path';\nexport const p = path.join('a', 'b');",
  "export const w = require.resolve('../workflows');",
  'export const main = require.main === module;',
  "export const t = setTimeout(() => undefined, 1);\nexport const j = JSON.parse('{}') as unknown;",
  "import type { ChildProcess } from 'node:child_process';\nexport let child: ChildProcess | undefined;",
  "export type Schema = typeof import('../config/schema');",
  'export const evaluate = (s: string): number => s.length;\nexport const fn = (x: () => void) => x instanceof Object;',
];

/** One probe in every runtime folder: each code-generation ban must hold there. */
const EVERY_DIR_PROBE = [
  "import * as cp from 'node:child_process';",
  "const name = 'x';",
  "export const all = [cp, eval('1'), new Function('return 1'), setTimeout('1', 1), import(name)];",
].join('\n');

/** test/ may start real processes, but it evaluates no strings either. */
const TEST_PROBE =
  "import { spawn } from 'node:child_process';\nexport const run = spawn;\nexport const v: unknown = eval('1');";

const probePath = (dir: string): string => `${dir}/${PROBE}`;

describe('no generated code (eslint.config.mjs, noGeneratedCode)', () => {
  let response: LintResponse;
  const byProbe = new Map<string, Finding[]>();

  /** What ESLint reported for `code` at `<dir>/__lint_probe__.ts`; a probe that did not parse fails. */
  function findings(dir: string, code: string): Finding[] {
    const messages = byProbe.get(`${probePath(dir)}\n${code}`);
    if (messages === undefined) throw new Error(`probe not linted: ${dir} ${code}`);
    const fatal = messages.filter((m) => m.fatal || m.ruleId === null);
    if (fatal.length > 0) throw new Error(`probe did not lint: ${fatal.map((m) => m.message).join('; ')}`);
    return messages;
  }

  beforeAll(async () => {
    // A real file at a probe path would be linted from disk and clash with the default project.
    for (const dir of [...RUNTIME_DIRS, 'test'])
      expect(existsSync(path.join(ROOT, probePath(dir)))).toBe(false);
    const probes = [
      ...[...FORBIDDEN.map(([code]) => code), ...ALLOWED].map((code) => ({
        filePath: probePath('activities'),
        code,
      })),
      ...RUNTIME_DIRS.map((dir) => ({ filePath: probePath(dir), code: EVERY_DIR_PROBE })),
      { filePath: probePath('test'), code: TEST_PROBE },
    ];
    response = await runEslint({
      cwd: ROOT,
      probeName: PROBE,
      ruleIds: CODE_RULES,
      probes,
      lintPaths: RUNTIME_DIRS,
      configFor: RUNTIME_DIRS.map(probePath),
    });
    response.probes.forEach((result, i) =>
      byProbe.set(`${result.filePath}\n${probes[i]?.code}`, result.messages),
    );
  }, 180_000);

  // Rows as objects: with a tuple shorter than the callback's arity, Jest would pass `done` as `fragment`.
  test.each(
    FORBIDDEN.map(([code, ruleId, fragment]) => ({
      name: JSON.stringify(code),
      code,
      ruleId,
      fragment: fragment ?? '',
    })),
  )('reports $name', ({ code, ruleId, fragment }) => {
    const messages = findings('activities', code)
      .filter((f) => f.ruleId === ruleId)
      .map((f) => f.message);
    expect(messages).toContainEqual(expect.stringContaining(fragment));
  });

  test.each(ALLOWED)('allows %j', (code) => {
    expect(findings('activities', code)).toEqual([]);
  });

  test.each(RUNTIME_DIRS)('applies in %s/', (dir) => {
    const rules = findings(dir, EVERY_DIR_PROBE).map((f) => f.ruleId);
    expect([...new Set(rules)].sort()).toEqual([
      '@typescript-eslint/no-implied-eval',
      'no-eval',
      'no-new-func',
      'no-restricted-globals', // `Function`, beside no-new-func
      'no-restricted-syntax',
    ]);
    // The child_process import and the computed import().
    expect(rules.filter((r) => r === 'no-restricted-syntax')).toHaveLength(2);
  });

  test('tests may start processes, but never evaluate strings', () => {
    expect(findings('test', TEST_PROBE).map((f) => f.ruleId)).toEqual(['no-eval']);
  });

  test("the repository's runtime code passes", () => {
    const files = response.files.map((r) => r.filePath);
    // The lint really covered the runtime code, workflows included.
    expect(files).toEqual(
      expect.arrayContaining(['workflows/research.ts', 'cli/start.ts', 'local/temporal.ts']),
    );
    const problems = response.files.flatMap((r) =>
      r.messages.map((m) => `${r.filePath}:${m.line} ${m.ruleId ?? 'fatal'}: ${m.message}`),
    );
    expect(problems).toEqual([]);
  });

  test('every top-level folder with TypeScript code is a runtime folder or a development tool (test/, bench/)', async () => {
    const codeDirs: string[] = [];
    for (const entry of await fs.readdir(ROOT, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const files = await fs.readdir(path.join(ROOT, entry.name), { recursive: true });
      if (files.some((f) => f.endsWith('.ts'))) codeDirs.push(entry.name);
    }
    expect(codeDirs.filter((d) => !DEV_DIRS.includes(d)).sort()).toEqual(
      RUNTIME_DIRS.filter((d) => codeDirs.includes(d)).sort(),
    );
  });

  test('the whole rule set is on, as errors, for every runtime folder', () => {
    expect(response.configs.map((c) => c.filePath)).toEqual(RUNTIME_DIRS.map(probePath));
    for (const { filePath, rules } of response.configs) {
      for (const ruleId of CODE_RULES) {
        expect({ filePath, ruleId, severity: (rules[ruleId] as unknown[] | undefined)?.[0] }).toEqual({
          filePath,
          ruleId,
          severity: 2,
        });
      }
    }
  });
});
