/**
 * Options of Baton's activities, parsed once from the environment.
 *
 * Secrets (the API key) are read here, inside the worker process, and never travel through
 * workflow inputs, results or history.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { publisherKeyFromEnv, type PublisherKey } from './signing';
import type { Sealer, StoreOptions } from './store';
import { storeSettingsFromEnv, type StoreSettings } from './store-settings';

export interface ActivityOptions {
  /** Anthropic API key. Env `ANTHROPIC_API_KEY`. Required for model calls. */
  apiKey?: string;
  /** Messages API base URL, for gateways and the offline stand-in. Env `ANTHROPIC_BASE_URL`; default Anthropic's. */
  baseURL?: string;
  /** Folder of config YAML. Env `BATON_CONFIG_DIR`; default `<project>/config`. */
  configDir: string;
  /** Where step results, reports and other large texts are kept, by content hash, with the local store. Env `BATON_ARTIFACT_DIR`; default `<project>/.baton/artifacts`. */
  artifactDir: string;
  /** Where reports are published, with the local store. Env `BATON_REPORT_DIR`; default `<project>/reports`. */
  reportDir: string;
  /**
   * The object store for artifacts and reports (./store.ts): the two local folders above, or an
   * S3-compatible bucket (env `BATON_STORE=s3://…` and `BATON_S3_*`). Default (absent): the folders.
   */
  store?: StoreSettings;
  /**
   * Encrypts what the store holds. Set by the process that runs the worker, from the payload
   * encryption keys (workers/store.ts); absent: objects are stored as they are.
   */
  sealer?: Sealer;
  /**
   * Whether tasks keep Baton's search attributes current (what `pending` queries rely on). Env
   * `BATON_SEARCH_ATTRIBUTES=off` turns it off for servers without custom search attributes, such
   * as the time-skipping test server. Default on.
   */
  searchAttributes: boolean;
  /**
   * Config digests this worker accepts (`sha256:<hex>`, as `npm run config:check` prints). When set,
   * the worker refuses to start on, and tasks refuse to run with, any other config. Env
   * `BATON_CONFIG_ALLOWLIST` (digests separated by commas or spaces) or `BATON_CONFIG_ALLOWLIST_FILE`
   * (one digest per line, `#` comments). Default: any valid config.
   */
  configAllowlist?: string[];
  /**
   * The key this worker signs report provenance with (activities/signing.ts). Env
   * `BATON_PUBLISHER_KEY` (the key) or `BATON_PUBLISHER_KEY_FILE` (a path). Without one, reports
   * are published labelled "unsigned provenance", and `npm run audit` does not verify them.
   */
  publisherKey?: PublisherKey;
}

/** The folder that holds package.json. */
export const PROJECT_ROOT = path.resolve(__dirname, '..');

/** A folder named by the variable `name`, or `fallback`, as an absolute path. */
const dirFrom = (env: NodeJS.ProcessEnv, name: string, fallback: string): string =>
  path.resolve(env[name] || fallback);

/** Reads the options from `env` (default `process.env`). */
export function activityOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): ActivityOptions {
  return {
    apiKey: env.ANTHROPIC_API_KEY || undefined,
    baseURL: env.ANTHROPIC_BASE_URL || undefined,
    configDir: dirFrom(env, 'BATON_CONFIG_DIR', path.join(PROJECT_ROOT, 'config')),
    ...storeOptionsFromEnv(env),
    searchAttributes: searchAttributesFromEnv(env.BATON_SEARCH_ATTRIBUTES),
    ...configAllowlistFromEnv(env),
    ...publisherKeyFromEnv(env),
  };
}

/**
 * Where this process finds the workers' store (activities/store.ts), from the same variables a
 * worker reads: the CLI, the inbox and the audit read drafts and reports through it.
 */
export function storeOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): StoreOptions {
  return {
    artifactDir: dirFrom(env, 'BATON_ARTIFACT_DIR', path.join(PROJECT_ROOT, '.baton', 'artifacts')),
    reportDir: dirFrom(env, 'BATON_REPORT_DIR', path.join(PROJECT_ROOT, 'reports')),
    store: storeSettingsFromEnv(env),
  };
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

function configAllowlistFromEnv(env: NodeJS.ProcessEnv): { configAllowlist?: string[] } {
  const inline = env.BATON_CONFIG_ALLOWLIST;
  const file = env.BATON_CONFIG_ALLOWLIST_FILE;
  if (inline && file) {
    throw new Error('set BATON_CONFIG_ALLOWLIST or BATON_CONFIG_ALLOWLIST_FILE, not both');
  }
  if (!inline && !file) return {};
  let entries: { where: string; digest: string }[];
  if (inline) {
    entries = inline
      .split(/[\s,]+/)
      .filter(Boolean)
      .map((digest) => ({ where: 'BATON_CONFIG_ALLOWLIST', digest }));
  } else {
    let text: string;
    try {
      text = readFileSync(file!, 'utf8');
    } catch (err) {
      throw new Error(`BATON_CONFIG_ALLOWLIST_FILE=${file} cannot be read: ${(err as Error).message}`, {
        cause: err,
      });
    }
    entries = text.split('\n').flatMap((line, i) => {
      const digest = line.replace(/#.*/, '').trim();
      return digest ? [{ where: `${file}:${i + 1}`, digest }] : [];
    });
  }
  const bad = entries.filter((e) => !DIGEST.test(e.digest));
  if (bad.length) {
    throw new Error(
      `config allow-list entries must be digests like sha256:<64 hex digits> (as \`npm run config:check\` prints): ${bad
        .map((e) => `"${e.digest}" (${e.where})`)
        .join(', ')}`,
    );
  }
  if (entries.length === 0) {
    throw new Error(
      `${inline ? 'BATON_CONFIG_ALLOWLIST' : `BATON_CONFIG_ALLOWLIST_FILE=${file}`} lists no digest`,
    );
  }
  return { configAllowlist: entries.map((e) => e.digest) };
}

/**
 * Why a config with this digest is refused under the allow-list, or undefined when it is accepted
 * (always, without an allow-list).
 */
export function configNotAllowed(digest: string, allowlist: string[] | undefined): string | undefined {
  if (!allowlist || allowlist.includes(digest)) return undefined;
  return `config digest ${digest} is not on this worker's allow-list (${allowlist.join(', ')}): deploy the reviewed config, or add its digest to BATON_CONFIG_ALLOWLIST after review`;
}

function searchAttributesFromEnv(value: string | undefined): boolean {
  if (value === undefined || value === '' || value === 'on') return true;
  if (value === 'off') return false;
  throw new Error(`BATON_SEARCH_ATTRIBUTES must be "on" or "off" (got "${value}")`);
}
