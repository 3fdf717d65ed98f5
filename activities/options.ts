/**
 * Options of Baton's activities, parsed once from the environment.
 *
 * Secrets (the API key) are read here, inside the worker process, and never travel through
 * workflow inputs, results or history.
 */
import path from 'node:path';

export interface ActivityOptions {
  /** Anthropic API key. Env `ANTHROPIC_API_KEY`. Required for model calls. */
  apiKey?: string;
  /** Messages API base URL, for gateways and the offline stand-in. Env `ANTHROPIC_BASE_URL`; default Anthropic's. */
  baseURL?: string;
  /** Folder of config YAML. Env `BATON_CONFIG_DIR`; default `<project>/config`. */
  configDir: string;
  /** Where step results, reports and other large texts are kept, by content hash. Env `BATON_ARTIFACT_DIR`; default `<project>/.baton/artifacts`. */
  artifactDir: string;
  /** Where final reports are written. Env `BATON_REPORT_DIR`; default `<project>/reports`. */
  reportDir: string;
  /**
   * Whether tasks keep Baton's search attributes current (what `pending` queries rely on). Env
   * `BATON_SEARCH_ATTRIBUTES=off` turns it off for servers without custom search attributes, such
   * as the time-skipping test server. Default on.
   */
  searchAttributes: boolean;
}

/** The folder that holds package.json. */
export const PROJECT_ROOT = path.resolve(__dirname, '..');

/** Reads the options from `env` (default `process.env`). */
export function activityOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): ActivityOptions {
  const dir = (name: string, fallback: string): string => path.resolve(env[name] || fallback);
  return {
    apiKey: env.ANTHROPIC_API_KEY || undefined,
    baseURL: env.ANTHROPIC_BASE_URL || undefined,
    configDir: dir('BATON_CONFIG_DIR', path.join(PROJECT_ROOT, 'config')),
    artifactDir: dir('BATON_ARTIFACT_DIR', path.join(PROJECT_ROOT, '.baton', 'artifacts')),
    reportDir: dir('BATON_REPORT_DIR', path.join(PROJECT_ROOT, 'reports')),
    searchAttributes: searchAttributesFromEnv(env.BATON_SEARCH_ATTRIBUTES),
  };
}

function searchAttributesFromEnv(value: string | undefined): boolean {
  if (value === undefined || value === '' || value === 'on') return true;
  if (value === 'off') return false;
  throw new Error(`BATON_SEARCH_ATTRIBUTES must be "on" or "off" (got "${value}")`);
}
