/**
 * The headless Chromium that playwright-core drives for the inbox's browser test and for
 * scripts/screenshot-web-ui.ts, found without a root install step. In order:
 *
 * 1. `CHROMIUM_PATH`, if set (it must exist: a wrong path is an error, not a reason to look on);
 * 2. the Chromium that the npm package `@sparticuz/chromium` (a devDependency) ships for x64 Linux,
 *    brotli-compressed in its `bin/chromium.br`: `npm install` brings it, and the first call
 *    unpacks it once into node_modules/.cache/ (about 3 s, 200 MB);
 * 3. the system's `/usr/bin/chromium` (Debian: `apt-get install chromium`).
 *
 * The package's own `executablePath()` is not used: it unpacks into the shared temporary folder
 * (the binary, its fonts and SwiftShader libraries side by side) and reuses whatever binary it finds
 * there, whatever its version. Here the binary is keyed by the package's version, written under a
 * temporary name and renamed, so a half-written one is never launched. Since none of the package's
 * JavaScript runs, its `engines` (Node 22.17 and later, for that JavaScript) do not bind us; npm
 * only warns. The binary is chrome-headless-shell (Chromium 153 in 153.0.0; playwright-core 1.65
 * was built against 159, and older Chromium builds lose CDP features as the gap grows: upgrade the
 * two together). It needs only the NSS libraries (libnss3), which Debian's base images have.
 */
import { createReadStream, createWriteStream, existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createBrotliDecompress } from 'node:zlib';
import { PROJECT_ROOT } from '../activities/options';

const PACKAGE = path.join(PROJECT_ROOT, 'node_modules', '@sparticuz', 'chromium');
const SYSTEM_CHROMIUM = '/usr/bin/chromium';

/** Where to find a browser when none is found, in one line. */
const NONE_FOUND =
  'No Chromium for playwright-core: run `npm install` (on x64 Linux it brings @sparticuz/chromium), ' +
  'or install one (`apt-get install -y chromium`) or set CHROMIUM_PATH to one';

/** The path of a Chromium executable for playwright-core's `executablePath`, or an error that says what to install. */
export async function chromiumPath(): Promise<string> {
  const given = process.env.CHROMIUM_PATH;
  if (given) {
    if (!existsSync(given)) throw new Error(`CHROMIUM_PATH is ${given}, which does not exist`);
    return given;
  }
  const shipped = await shippedChromium();
  if (shipped) return shipped;
  if (existsSync(SYSTEM_CHROMIUM)) return SYSTEM_CHROMIUM;
  throw new Error(NONE_FOUND);
}

/** The package's Chromium, unpacked on first use; undefined where the package or its binary is missing. */
async function shippedChromium(): Promise<string | undefined> {
  const archive = path.join(PACKAGE, 'bin', 'chromium.br');
  if (process.platform !== 'linux' || process.arch !== 'x64' || !existsSync(archive)) return undefined;
  const { version } = JSON.parse(await fs.readFile(path.join(PACKAGE, 'package.json'), 'utf8')) as {
    version: string;
  };
  const binary = path.join(
    PROJECT_ROOT,
    'node_modules',
    '.cache',
    'baton',
    `chromium-${version}`,
    'chromium',
  );
  if (!existsSync(binary)) {
    await fs.mkdir(path.dirname(binary), { recursive: true });
    const partial = `${binary}.${process.pid}.partial`;
    await pipeline(
      createReadStream(archive),
      createBrotliDecompress(),
      createWriteStream(partial, { mode: 0o755 }),
    );
    await fs.rename(partial, binary);
  }
  return binary;
}
