/**
 * `npm run eval`: is multi-agent worth it? Runs the question set in each mode, judges every
 * answer, counts the citations a retrieval backs, and writes results.json, results.md and
 * chart.svg (see eval/harness.ts, and --help).
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { activityOptionsFromEnv } from '../activities/options';
import { command, runMain } from '../lib/cli';
import { dataConverterFor, encryptionFromEnv } from '../workers/codec';
import { logLevelFromEnv, temporalOptionsFromEnv } from '../workers/options';
import { EVAL_COMMAND, evalArgs } from './args';
import { runEval } from './harness';
import { QuestionFileError } from './questions';
import { fmtShare, OFFLINE_CITATIONS_NOTE, OFFLINE_WARNING } from './report';

export const main = command(EVAL_COMMAND, async ({ values }) => {
  const args = evalArgs(values);
  const controller = new AbortController();
  const interrupt = (): void => {
    if (controller.signal.aborted) {
      console.error('Interrupted again: exiting now, without writing results.');
      process.exit(130);
    }
    console.error(
      '\nInterrupted: stopping after the runs in flight (Baton tasks are cancelled); partial results are still written.',
    );
    controller.abort(new Error('interrupted'));
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  try {
    const env = activityOptionsFromEnv();
    // The harness prints its own progress; the SDK's logs only when something is wrong.
    Runtime.install({ logger: new DefaultLogger(logLevelFromEnv('ERROR')) });
    const { results, files } = await runEval({
      ...args,
      apiKey: env.apiKey,
      baseURL: env.baseURL,
      configDir: env.configDir,
      ...(env.configAllowlist ? { configAllowlist: env.configAllowlist } : {}),
      // An explicit TEMPORAL_ADDRESS must answer; without one the harness starts its own dev server.
      ...(process.env.TEMPORAL_ADDRESS ? { temporal: temporalOptionsFromEnv() } : {}),
      dataConverter: dataConverterFor(encryptionFromEnv()),
      log: (line) => console.log(line),
      signal: controller.signal,
    });
    console.log('');
    for (const s of results.summary) {
      const rounds = s.avgRounds === null ? '' : `  avg rounds ${s.avgRounds.toFixed(1)}`;
      console.log(
        `${s.mode.padEnd(13)} mean score ${s.mean === null ? '—' : s.mean.toFixed(2)}  answered ${s.answered}/${s.questions}  cited & retrieved ${fmtShare(s.citationValidity)}${rounds}  avg tokens ${s.avgTokens === null ? '—' : Math.round(s.avgTokens)}  avg wall ${s.avgWallMs === null ? '—' : `${(s.avgWallMs / 1000).toFixed(1)} s`}`,
      );
    }
    if (results.offline) console.log(`\nWARNING: ${OFFLINE_WARNING}\n${OFFLINE_CITATIONS_NOTE}`);
    console.log(`\nResults: ${files.json}\nTable:   ${files.markdown}\nChart:   ${files.chart}`);
    return controller.signal.aborted ? 130 : 0;
  } catch (err) {
    if (err instanceof QuestionFileError) console.error(`error: ${err.message}`);
    else console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
  }
});

if (require.main === module) runMain(main);
