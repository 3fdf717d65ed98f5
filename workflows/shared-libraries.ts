/**
 * The libraries every workflow run on a worker shares instead of loading its own copy
 * (`preloadModules` of the bundle: workers/bundle.ts, workers/worker.ts; bench/README.md,
 * "Where the time goes"). With the SDK's reusable V8 context each cached run otherwise instantiates
 * every module of the bundle for itself, and zod and the signature libraries were most of a waiting
 * task's memory and of the CPU of each workflow task.
 *
 * Shared modules are loaded once, before any workflow, and deep-frozen by the SDK. Only pure
 * libraries belong here: no module that keeps per-task state, reads the clock or draws randomness.
 * zod writes its global configuration (`globalThis.__zod_globalConfig`: the default locale and
 * memoizer) and caches whether it may compile parsers on first use: it is used once below, while
 * this module loads, so that afterwards it only reads them. Its registry of schema metadata is a
 * WeakMap keyed by each run's own schemas.
 *
 * They are imported here, as ES modules, rather than named in `preloadModules`: the SDK's entry
 * point `require()`s what it preloads, which would resolve each package's CommonJS build, a second
 * copy beside the ES build the workflow code imports.
 */
import { z } from 'zod';
export { sha256 } from '@noble/hashes/sha2';
export { bytesToHex } from '@noble/hashes/utils';
export { ed25519 } from '@noble/curves/ed25519';
export { p256 } from '@noble/curves/p256';
export { base64 } from '@scure/base';
export { z };

z.object({ warmUp: z.string().min(1) }).safeParse({ warmUp: '' });
