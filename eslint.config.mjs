// Lint rules that carry the project's architecture: deterministic workflows, no generated code,
// no floating promises. Formatting is Prettier's job (`npm run lint` runs both).
import js from '@eslint/js';
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

/**
 * Top-level folders holding code the orchestrator runs. test/ is not one: tests start real processes.
 * test/lint.test.ts keeps a copy, and fails when a folder with TypeScript code is in neither list.
 */
export const RUNTIME_DIRS = [
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

/**
 * The folders' layers: each runtime folder may import only the folders listed for it, so imports go
 * one way (docs/architecture.md draws the picture). Type imports count: a type import is still a
 * dependency of the reader. test/ may import anything; nothing imports test/.
 */
export const LAYERS = {
  lib: ['contract'],
  config: [],
  contract: ['config'],
  standin: ['lib'],
  workflows: ['contract', 'config'],
  activities: ['contract', 'config', 'lib'],
  workers: ['activities', 'workflows', 'contract', 'config', 'lib'],
  client: ['workers', 'contract', 'config', 'lib'],
  local: ['workers', 'standin', 'activities', 'contract', 'config', 'lib'],
  cli: ['client', 'local', 'workers', 'activities', 'workflows', 'contract', 'config', 'lib', 'standin'],
  inbox: ['client', 'workers', 'activities', 'contract', 'config', 'lib'],
  scripts: ['client', 'local', 'workers', 'activities', 'workflows', 'contract', 'config', 'lib', 'standin'],
  eval: ['client', 'local', 'workers', 'activities', 'workflows', 'contract', 'config', 'lib', 'standin'],
  bench: ['client', 'local', 'workers', 'activities', 'workflows', 'contract', 'config', 'lib', 'standin'],
};

/** One block per folder: `no-restricted-imports` (no other block sets it) naming the folders it may not import. */
const layerRules = Object.entries(LAYERS).map(([dir, allowed]) => {
  const forbidden = [...Object.keys(LAYERS), 'test'].filter((d) => d !== dir && !allowed.includes(d));
  return {
    name: `baton/layers/${dir}`,
    files: [`${dir}/**`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: forbidden.flatMap((d) => [`../${d}`, `../${d}/*`]),
              message: `${dir}/ may import only ${allowed.length ? allowed.join(', ') : 'packages'} (LAYERS in eslint.config.mjs).`,
            },
          ],
        },
      ],
    },
  };
});

const WHY = 'The orchestrator never generates or runs code (docs/architecture.md, "No generated code")';

/** Turning a string into code: eval (direct, indirect, `eval?.()`), the Function constructor, string timers. */
const noCodeFromStrings = {
  'no-eval': 'error',
  'no-new-func': 'error',
  'no-implied-eval': 'off',
  // Type-aware: also catches a string *variable* passed to setTimeout/setInterval/setImmediate.
  '@typescript-eslint/no-implied-eval': 'error',
};

/**
 * Node modules that run code or programs: vm and repl evaluate strings, child_process and cluster
 * start processes, worker_threads runs code strings (`eval: true`) and files, module's createRequire
 * loads modules by computed name, inspector can `Runtime.evaluate`. Matches `vm` and `node:vm` alike.
 * (esquery regexes cannot contain "/": the "." in inspector.promises stands for it.)
 */
const CODE_RUNNING_MODULES = `/^(node:)?(vm|child_process|worker_threads|cluster|module|repl|inspector(.promises)?)$/`;
const REQUIRE_CALL = `CallExpression:matches([callee.name='require'], [callee.property.name='require'])`;

/**
 * No generated code, provably (issue 5): what the lint forbids in runtime code. Every form of loading a
 * code-running module is caught whatever the local name (`import * as cp from 'node:child_process'`,
 * `require('vm')`, `import('node:vm')`, `import vm = require('vm')`, `export * from 'vm'`), and modules
 * may be loaded only by literal name, so the list cannot be side-stepped by computing one. Type-only
 * imports are allowed: they are erased. Checked by test/lint.test.ts.
 *
 * Uses `no-restricted-syntax`, which no other block configures: a later block for some of these files
 * that set it would replace these options, so add selectors here instead.
 */
export const noGeneratedCode = {
  name: 'baton/no-generated-code',
  files: RUNTIME_DIRS.map((dir) => `${dir}/**`),
  rules: {
    ...noCodeFromStrings,
    // The Function constructor by any route: `Reflect.construct(Function, ...)`, `const F = Function`.
    'no-restricted-globals': ['error', { name: 'Function', message: `${WHY}: no Function constructor.` }],
    'no-restricted-properties': [
      'error',
      ...['globalThis', 'global'].map((object) => ({
        object,
        property: 'Function',
        message: `${WHY}: no Function constructor.`,
      })),
      // Native addons and internal bindings (process.binding('spawn_sync') spawns without child_process).
      ...['binding', '_linkedBinding', 'dlopen'].map((property) => ({
        object: 'process',
        property,
        message: `${WHY}: no native bindings.`,
      })),
    ],
    'no-restricted-syntax': [
      'error',
      {
        selector: `:matches(ImportDeclaration[importKind!='type'], ExportAllDeclaration[exportKind!='type'], ExportNamedDeclaration[exportKind!='type'], ImportExpression)[source.value=${CODE_RUNNING_MODULES}]`,
        message: `${WHY}: this module runs code or programs.`,
      },
      {
        selector: `TSImportEqualsDeclaration[importKind!='type'] > TSExternalModuleReference[expression.value=${CODE_RUNNING_MODULES}]`,
        message: `${WHY}: this module runs code or programs.`,
      },
      {
        selector: `${REQUIRE_CALL}[arguments.0.value=${CODE_RUNNING_MODULES}]`,
        message: `${WHY}: this module runs code or programs.`,
      },
      {
        selector: `ImportExpression[source.type!='Literal']`,
        message: `${WHY}: import() only a string literal, never a computed name.`,
      },
      {
        selector: `${REQUIRE_CALL}[arguments.0.type!='Literal']`,
        message: `${WHY}: require() only a string literal, never a computed name.`,
      },
      {
        // `(() => {}).constructor('code')` is the Function constructor (AsyncFunction, GeneratorFunction too).
        selector: `:matches(CallExpression, NewExpression)[callee.property.name='constructor']`,
        message: `${WHY}: no calls through .constructor (it reaches the Function constructor).`,
      },
      {
        // The same constructors kept in a variable first: `const AsyncFunction = (async () => {}).constructor`,
        // or reached through a prototype: `Object.getPrototypeOf(async function () {}).constructor`.
        selector: `MemberExpression[property.name='constructor']:matches([object.type=/^(FunctionExpression|ArrowFunctionExpression)$/], [object.callee.property.name='getPrototypeOf'])`,
        message: `${WHY}: no function's .constructor (it is the Function constructor).`,
      },
      {
        // `module.constructor._load('vm')` and friends load modules past every import rule above;
        // `process.getBuiltinModule('node:vm')` (Node 20.16+) loads a built-in by computed name.
        selector: `MemberExpression:matches([property.name=/^(_load|_resolveFilename|_compile|getBuiltinModule)$/], [property.value=/^(_load|_resolveFilename|_compile|getBuiltinModule)$/], [object.name='module'][property.name='constructor'])`,
        message: `${WHY}: no loading modules around the import rules (Module._load, getBuiltinModule).`,
      },
    ],
  },
};

export default tseslint.config(
  { ignores: ['node_modules/', '.baton/', 'reports/', 'coverage/', 'dist/', 'test/histories/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', '*.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // Tests included: no code from strings anywhere (the full set is `noGeneratedCode` below).
      ...noCodeFromStrings,
    },
  },
  {
    // Workflow code is replayed: no I/O, no Node modules, no SDK clients. contract/ is bundled with it.
    files: ['workflows/**', 'contract/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({
              name,
              message: 'Workflow code must be deterministic: no Node modules.',
            })),
            { name: '@anthropic-ai/sdk', message: 'Model calls belong in activities.' },
          ],
        },
      ],
    },
  },
  noGeneratedCode,
  ...layerRules,
  {
    // Jest's asymmetric matchers (expect.any, expect.objectContaining) are typed `any`.
    files: ['test/**'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { module: 'readonly', require: 'readonly', __dirname: 'readonly' } },
  },
);
