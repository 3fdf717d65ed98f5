/**
 * `npm run build:workflows`: the workflow bundle, built ahead of time. Bundling `workflows/` (webpack,
 * through the SDK's `bundleWorkflowCode`) costs a worker seconds of CPU at every start: about 8 s on a
 * quiet two-core machine, 25–30 s on a busy one. A worker started with `BATON_WORKFLOW_BUNDLE=<file>`
 * loads this file instead (the Docker image builds it at image build time); without the variable it
 * bundles at start, as `npm start` always does. The test run's global setup builds its bundle with the
 * same {@link buildWorkflowBundle}, so in-process test workers and worker processes run the same code.
 *
 * The bundle holds what a worker that bundles at start adds as it needs it: the tracing interceptors
 * (`TRACING_WORKFLOW_MODULES`: harmless with tracing off, see workers/telemetry.ts) and the failure
 * converter used with encryption (`FAILURE_CONVERTER_PATH`). With encryption off, that converter still
 * moves the message and stack trace of a failure raised in workflow code into the failure's encoded
 * attributes, stored as plain JSON (not encrypted): every SDK client, the audit and the Web UI read the
 * message from there; raw history shows `Encoded failure` (docs/operations.md, "Workers").
 */
import { bundleWorkflowCode, DefaultLogger, type BundleOptions } from '@temporalio/worker';
import { statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PROJECT_ROOT } from '../activities/options';
import { command, runMain } from '../lib/cli';
import { FAILURE_CONVERTER_PATH } from './codec';
import { TRACING_WORKFLOW_MODULES } from './telemetry';

/**
 * How `workflows/` is bundled, ahead of time and by a worker that bundles at start: with the shared
 * libraries, and with an inline source map that leaves out the sources' text (webpack's
 * `inline-nosources-source-map`, where the SDK sets `inline-source-map`). Stack traces of workflow code
 * still name file, line and column; the text is read only by the stack trace query's
 * `showStackTraceSources`, which Baton's workers leave off, and it cost every worker 20 to 30 MiB of
 * memory (the bundle and its map are held by both of the worker's threads).
 */
export const BUNDLER_OPTIONS = {
  // Modules every workflow run on a worker shares instead of loading its own copy: pure libraries
  // only (workflows/shared-libraries.ts says why and which).
  preloadModules: [require.resolve('../workflows/shared-libraries')],
  webpackConfigHook: (config) => ({ ...config, devtool: 'inline-nosources-source-map' }),
} satisfies Pick<BundleOptions, 'preloadModules' | 'webpackConfigHook'>;

/** Where `npm run build:workflows` writes the bundle unless told otherwise. */
export const DEFAULT_BUNDLE_FILE = path.join(PROJECT_ROOT, '.baton', 'workflow-bundle.js');

/** Bundles `workflows/` as a worker would, with the tracing interceptors and the failure converter. */
export async function buildWorkflowBundle(): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    workflowInterceptorModules: [...TRACING_WORKFLOW_MODULES],
    failureConverterPath: FAILURE_CONVERTER_PATH,
    ...BUNDLER_OPTIONS,
    logger: new DefaultLogger('WARN'),
  });
  return code;
}

/** Builds the bundle and writes it to `file` (its folder created if missing). */
export async function writeWorkflowBundle(file: string): Promise<void> {
  const code = await buildWorkflowBundle();
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, code);
}

/**
 * `BATON_WORKFLOW_BUNDLE`: the prebuilt bundle a worker loads, as `Worker.create`'s `workflowBundle`;
 * undefined when unset (the worker bundles `workflows/` at start). Throws when it names no file.
 */
export function workflowBundleFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): { codePath: string } | undefined {
  const raw = env.BATON_WORKFLOW_BUNDLE;
  if (!raw) return undefined;
  const codePath = path.resolve(raw);
  if (!statSync(codePath, { throwIfNoEntry: false })?.isFile()) {
    throw new Error(
      `BATON_WORKFLOW_BUNDLE names no file: ${codePath} (build it with \`npm run build:workflows\`, or unset the variable to bundle workflows/ at start)`,
    );
  }
  return { codePath };
}

const USAGE = `usage: npm run build:workflows [-- --out <file>]

Bundles workflows/ (with the tracing interceptors and the failure converter used with encryption) into
one file a worker loads with BATON_WORKFLOW_BUNDLE=<file> instead of bundling at start. Rebuild it
whenever the code changes: the bundle is part of the deploy.

  --out <file>  where to write it (default .baton/workflow-bundle.js)`;

export const main = command(
  { name: 'npm run build:workflows', usage: USAGE, options: { out: { type: 'string' } } },
  async ({ values }) => {
    const file = path.resolve(values.out ?? DEFAULT_BUNDLE_FILE);
    const started = Date.now();
    await writeWorkflowBundle(file);
    console.log(`wrote ${file} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    console.log(`run workers with BATON_WORKFLOW_BUNDLE=${file}`);
    return 0;
  },
);

if (require.main === module) runMain(main);
