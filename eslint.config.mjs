// Lint rules that carry the project's architecture: deterministic workflows, no generated code,
// no floating promises. Formatting is Prettier's job (`npm run lint` runs both).
import js from '@eslint/js';
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  { ignores: ['node_modules/', '.baton/', 'reports/', 'coverage/', 'test/histories/'] },
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
      // No generated or spawned code, anywhere the orchestrator runs (ARCHITECTURE.md).
      'no-eval': 'error',
      'no-implied-eval': 'off',
      '@typescript-eslint/no-implied-eval': 'error',
      'no-new-func': 'error',
    },
  },
  {
    files: ['workflows/**', 'activities/**', 'workers/**', 'config/**', 'cli/**', 'scripts/**', 'standin/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['vm', 'node:vm', 'child_process', 'node:child_process'].map((name) => ({
            name,
            message:
              'The orchestrator never generates or spawns code (ARCHITECTURE.md, "No generated code").',
          })),
        },
      ],
    },
  },
  {
    // Workflow code is replayed: no I/O, no Node modules, no SDK clients, activities as types only.
    files: ['workflows/**'],
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({
              name,
              message: 'Workflow code must be deterministic: no Node modules.',
            })),
            { name: '@anthropic-ai/sdk', message: 'Model calls belong in activities.' },
            { name: '../activities', message: 'Import activities as types only.', allowTypeImports: true },
          ],
          patterns: [
            {
              group: ['../activities/*'],
              message: 'Import activities as types only.',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
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
