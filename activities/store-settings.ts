/**
 * How a process reaches its store (./store.ts), as its environment says: `BATON_STORE`,
 * `BATON_S3_ENDPOINT`, `BATON_S3_FORCE_PATH_STYLE`, the region and the credentials (docs/storage.md).
 */
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { checkKey, type StoreOptions } from './store';

/** How a process reaches its store, as the environment sets it ({@link storeSettingsFromEnv}). */
export type StoreSettings =
  | { kind: 'local' }
  | {
      kind: 's3';
      bucket: string;
      /** Empty, or ending in `/`. */
      prefix: string;
      endpoint?: string;
      forcePathStyle: boolean;
      region: string;
      /**
       * `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`) of the environment read,
       * behind a function so that printing the settings never shows them; absent, the SDK's standard
       * chain (profile, container or instance role).
       */
      credentials?: S3ClientConfig['credentials'];
    };

/** S3's bucket naming rules (general purpose buckets). */
const BUCKET_PATTERN = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const STORE_HINT =
  'expected s3://<bucket>[/<prefix>], or unset for the local folders BATON_ARTIFACT_DIR and BATON_REPORT_DIR';

/**
 * Reads `BATON_STORE`, `BATON_S3_ENDPOINT`, `BATON_S3_FORCE_PATH_STYLE`, the region and the
 * credentials (the AWS SDK's standard chain when `env` has none); throws an error naming the
 * variable when one is wrong.
 */
export function storeSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): StoreSettings {
  const value = env.BATON_STORE?.trim();
  const s3Only = ['BATON_S3_ENDPOINT', 'BATON_S3_FORCE_PATH_STYLE'].filter((name) => env[name]);
  if (!value) {
    if (s3Only.length) {
      throw new Error(
        `${s3Only.join(' and ')} set, but BATON_STORE is not: set BATON_STORE=s3://<bucket>[/<prefix>]`,
      );
    }
    return { kind: 'local' };
  }
  const match = /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(value);
  if (!match) throw new Error(`BATON_STORE="${value}" is not a store address (${STORE_HINT})`);
  const bucket = match[1]!;
  if (!BUCKET_PATTERN.test(bucket) || bucket.includes('..')) {
    throw new Error(
      `BATON_STORE="${value}": "${bucket}" is not a valid bucket name (3 to 63 lowercase letters, digits, "." and "-", starting and ending with a letter or digit)`,
    );
  }
  const prefixPath = (match[2] ?? '').replace(/\/+$/, '');
  if (prefixPath) {
    try {
      checkKey(prefixPath);
    } catch {
      throw new Error(
        `BATON_STORE="${value}": the prefix "${prefixPath}" is not /-separated names of letters, digits, ".", "_" and "-"`,
      );
    }
  }
  let endpoint: string | undefined;
  if (env.BATON_S3_ENDPOINT) {
    let url: URL;
    try {
      url = new URL(env.BATON_S3_ENDPOINT);
    } catch {
      throw new Error(
        `BATON_S3_ENDPOINT="${env.BATON_S3_ENDPOINT}" is not a URL (expected e.g. http://127.0.0.1:9000)`,
      );
    }
    if (!['http:', 'https:'].includes(url.protocol) || url.username || url.password) {
      throw new Error(
        'BATON_S3_ENDPOINT must be an http:// or https:// URL without credentials (they come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)',
      );
    }
    endpoint = url.toString();
  }
  const pathStyle = env.BATON_S3_FORCE_PATH_STYLE;
  if (pathStyle && !['on', 'off'].includes(pathStyle)) {
    throw new Error(`BATON_S3_FORCE_PATH_STYLE must be "on" or "off" (got "${pathStyle}")`);
  }
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || (endpoint ? 'us-east-1' : undefined);
  if (!region) {
    throw new Error(
      `BATON_STORE="${value}" is on AWS S3, which needs a region: set AWS_REGION (or BATON_S3_ENDPOINT for another S3-compatible store)`,
    );
  }
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = env;
  const sessionToken = env.AWS_SESSION_TOKEN || undefined;
  return {
    kind: 's3',
    ...(accessKeyId && secretAccessKey
      ? { credentials: () => Promise.resolve({ accessKeyId, secretAccessKey, sessionToken }) }
      : {}),
    bucket,
    prefix: prefixPath ? `${prefixPath}/` : '',
    ...(endpoint ? { endpoint } : {}),
    forcePathStyle: pathStyle ? pathStyle === 'on' : Boolean(endpoint),
    region,
  };
}

/** One line for logs and messages: where the store is (never a credential). */
export function describeStore(options: StoreOptions): string {
  const settings = options.store ?? { kind: 'local' };
  return settings.kind === 'local'
    ? `local folders ${options.artifactDir} (artifacts) and ${options.reportDir} (reports)`
    : `s3://${settings.bucket}/${settings.prefix}${settings.endpoint ? ` at ${settings.endpoint}` : ` (AWS, ${settings.region})`}`;
}
