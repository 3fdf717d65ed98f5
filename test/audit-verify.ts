/** `npm run audit -- --verify`, run in-process the way the tests check a published report offline. */
import { runAudit } from '../cli/audit';
import { captured, type CapturedRun } from './helpers';

/**
 * `npm run audit -- --verify <file> --publishers <publishers>`: offline, so no Temporal client is
 * given (none is used); `env` is what the command reads (payload keys, store settings).
 */
export function auditVerify(
  file: string,
  publishers: string,
  env: NodeJS.ProcessEnv = {},
): Promise<CapturedRun> {
  return captured((io) =>
    runAudit(['--verify', file, '--publishers', publishers], { client: undefined as never, env, ...io }),
  );
}
