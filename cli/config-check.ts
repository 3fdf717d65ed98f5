/**
 * `npm run config:check`: validates config/ (or BATON_CONFIG_DIR) and prints every problem with
 * its file, path and reason. Exits 1 when config is invalid.
 */
import { ConfigError, loadConfig } from '../activities/config';
import { activityOptionsFromEnv } from '../activities/options';
import { runMain } from './run';

async function main(): Promise<number> {
  const { configDir } = activityOptionsFromEnv();
  try {
    const config = await loadConfig(configDir);
    const playbooks = Object.keys(config.playbooks);
    console.log(
      `config OK: ${config.agents.agents.length} agents, ${playbooks.length} playbooks (${playbooks.join(', ')}); digest ${config.digest}`,
    );
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(
      `config has ${err.problems.length} problem(s):\n${err.message.replace(/^invalid config:\n/, '')}`,
    );
    return 1;
  }
}

runMain(main);
