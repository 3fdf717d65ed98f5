/**
 * `npm run config:check`: validates config/ (or BATON_CONFIG_DIR) and prints every problem with
 * its file, path and reason, then the config's digest. Exits 1 when config is invalid or, with a
 * config allow-list set (BATON_CONFIG_ALLOWLIST), when its digest is not on it.
 *
 * `--digest` prints the digest alone, for scripts that build an allow-list from reviewed config.
 */
import { ConfigError, loadConfig } from '../activities/config';
import { activityOptionsFromEnv, configNotAllowed } from '../activities/options';
import { unpricedModels } from '../contract/usage';
import { command, runMain } from '../lib/cli';

const USAGE = `usage: npm run config:check [-- --digest]

  --digest   print the config's digest alone (for building BATON_CONFIG_ALLOWLIST)`;

export const main = command(
  { name: 'config:check', usage: USAGE, options: { digest: { type: 'boolean' } } },
  async ({ values }) => {
    let options;
    try {
      options = activityOptionsFromEnv();
    } catch (err) {
      console.error(`config:check: ${(err as Error).message}`);
      return 2;
    }
    const { configDir, configAllowlist } = options;
    try {
      const config = await loadConfig(configDir);
      if (values.digest) {
        console.log(config.digest);
        return 0;
      }
      const playbooks = Object.keys(config.playbooks);
      console.log(
        `config OK: ${config.agents.agents.length} agents, ${playbooks.length} playbooks (${playbooks.join(', ')}); digest ${config.digest}`,
      );
      const unpriced = unpricedModels(config.agents);
      if (unpriced.length) {
        console.log(
          `note: agents.yaml lists no price for ${unpriced.join(', ')}: cost estimates for the agents using ${unpriced.length === 1 ? 'it' : 'them'} are shown as unknown`,
        );
      }
      const notAllowed = configNotAllowed(config.digest, configAllowlist);
      if (notAllowed) {
        console.error(`but a worker with this allow-list would refuse it: ${notAllowed}`);
        return 1;
      }
      return 0;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      console.error(
        `config has ${err.problems.length} problem(s):\n${err.message.replace(/^invalid config:\n/, '')}`,
      );
      return 1;
    }
  },
);

if (require.main === module) runMain(main);
