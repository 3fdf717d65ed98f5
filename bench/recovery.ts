/**
 * Section 7: how soon the steps a killed worker held run again on another worker. Two worker
 * processes share a task queue; a task of eight parallel steps starts; once steps are running, the
 * worker holding the most of them is SIGKILLed (frozen first, so it cannot answer after the kill
 * time is taken). Recovery is the time from the kill to the moment the last of its steps is started
 * again elsewhere, as the server records it (`lastStartedTime` of the retried attempt).
 *
 * Side by side: the agents' heartbeat timeout as shipped (config/agents.yaml) and as it was before
 * (1m), all else equal: the worker heartbeats a third of the timeout apart while a call is open, so
 * the server notices the silence within the timeout, then retries after the policy's first interval.
 */
import type { Duration as TemporalDuration } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../activities/options';
import { loadConfig } from '../activities/config';
import { durationMs } from '../config/schema';
import { researchTask } from '../workflows';
import type { Ctx } from './sections';
import type { WorkerProcess } from './processes';
import { BENCH_CONFIG, STANDARD_PLAYBOOK } from './workload';

const STARTED = temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;
/** Model latency in this section: long enough for the steps to be observably in flight at the kill. */
const LATENCY_MS = 8000;

export interface RecoveryResult {
  /** `shipped` (config/agents.yaml's value) or `before` (1m). */
  variant: 'shipped' | 'before';
  heartbeat: string;
  /** Kill to the last retried step's start, ms, per run. */
  recoveryMs: number[];
  /** Steps the killed worker held, per run. */
  stepsKilled: number[];
}

/**
 * A copy of `from` (a config folder) in a temporary folder, with every agent's `heartbeat:` timeout
 * set to `heartbeat` and nothing else changed. Throws when the file has none to set.
 */
export async function configWithHeartbeat(from: string, heartbeat: TemporalDuration): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-heartbeat-config-'));
  await fs.cp(from, dir, { recursive: true });
  const file = path.join(dir, 'agents.yaml');
  let replaced = 0;
  const text = (await fs.readFile(file, 'utf8')).replace(
    /(\bheartbeat:\s*)\d+(?:ms|s|m|h|d)\b/g,
    (_match, prefix: string) => {
      replaced++;
      return `${prefix}${heartbeat}`;
    },
  );
  if (replaced === 0) throw new Error(`no "heartbeat:" timeout found in ${file} to set`);
  await fs.writeFile(file, text);
  return dir;
}

/** The heartbeat timeout config/agents.yaml ships with (its specialists'), read as workers read config. */
async function shippedHeartbeat(): Promise<TemporalDuration> {
  const { agents } = await loadConfig(path.join(PROJECT_ROOT, 'config'));
  const specialist = agents.agents.find((a) => a.id !== agents.lead);
  if (!specialist) throw new Error('config/agents.yaml declares no specialist');
  return specialist.timeouts.heartbeat;
}

/** Polls `read` every 50 ms until it gives a value; throws after `timeoutMs`. */
async function until<T>(read: () => Promise<T | undefined>, what: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One kill: two fresh workers, one task; the kill-to-retry time of the killed worker's steps. */
async function oneRun(ctx: Ctx, configDir: string, standInUrl: string, heartbeatMs: number) {
  const { rig, server } = ctx;
  const taskQueue = rig.unique('bench-recovery');
  const setup = {
    taskQueue,
    configDir,
    standInUrl,
    dataDir: path.join(rig.root, taskQueue),
    runtime: 'compiled' as const,
    bundle: ctx.compiledBundle,
  };
  const workers: WorkerProcess[] = [
    await rig.spawnWorker(`${taskQueue}-a`, server, setup),
    await rig.spawnWorker(`${taskQueue}-b`, server, setup),
  ];
  try {
    const handle = await server.env.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: taskQueue,
      args: [{ question: 'How soon does a killed worker recover?', playbook: STANDARD_PLAYBOOK }],
    });
    // The worker identity is `<pid>@<host>`: the pid of the worker's Node process.
    const ownerOf = async (identity: string): Promise<WorkerProcess | undefined> => {
      const pid = Number(identity.split('@')[0]);
      for (const w of workers) if ((await w.livePids()).includes(pid)) return w;
      return undefined;
    };
    const running = await until(
      async () => {
        const { raw } = await handle.describe();
        const started = (raw.pendingActivities ?? []).filter((a) => a.state === STARTED);
        return started.length >= 4 ? started : undefined;
      },
      'steps in flight',
      60_000,
    );
    const byWorker = new Map<WorkerProcess, string[]>();
    for (const a of running) {
      const owner = await ownerOf(a.lastWorkerIdentity ?? '');
      if (owner) byWorker.set(owner, [...(byWorker.get(owner) ?? []), a.activityId ?? '']);
    }
    const [victim, held] = [...byWorker.entries()].sort((x, y) => y[1].length - x[1].length)[0] ?? [];
    if (!victim || !held) throw new Error('no running step could be matched to a worker process');
    const killedAt = Date.now();
    await victim.kill();
    const restarted = await until(
      async () => {
        const { raw } = await handle.describe();
        const pending = raw.pendingActivities ?? [];
        const retried = held.map((id) => pending.find((a) => a.activityId === id));
        // A step that finished before the freeze took effect leaves the list: it needs no recovery.
        const again = retried.filter((a) => a !== undefined);
        if (again.length === 0)
          throw new Error('every step the killed worker held had finished: none to recover');
        if (again.some((a) => a.state !== STARTED || (a.attempt ?? 1) < 2)) return undefined;
        return again.map((a) => tsToMs(a.lastStartedTime));
      },
      "the killed worker's steps to start again",
      heartbeatMs * 3 + 60_000,
    );
    await handle.result();
    return { recoveryMs: Math.max(0, ...restarted.map((t) => t - killedAt)), stepsKilled: restarted.length };
  } finally {
    for (const w of workers) if (!w.hasExited) await w.kill();
  }
}

/** The section: `runs` kills with the shipped heartbeat, one with the previous 1m. */
export async function measureRecovery(ctx: Ctx, runs: number): Promise<RecoveryResult[]> {
  const standIn = await ctx.rig.startStandIn(LATENCY_MS);
  const shipped = await shippedHeartbeat();
  const variants = [
    { variant: 'shipped' as const, heartbeat: shipped, runs },
    { variant: 'before' as const, heartbeat: '1m' as TemporalDuration, runs: 1 },
  ];
  const out: RecoveryResult[] = [];
  for (const v of variants) {
    const configDir = await configWithHeartbeat(BENCH_CONFIG, v.heartbeat);
    const heartbeatMs = durationMs(v.heartbeat);
    const result: RecoveryResult = {
      variant: v.variant,
      heartbeat: String(v.heartbeat),
      recoveryMs: [],
      stepsKilled: [],
    };
    for (let i = 0; i < v.runs; i++) {
      const run = await oneRun(ctx, configDir, standIn.url, heartbeatMs);
      ctx.log(
        `  heartbeat ${v.heartbeat}: ${run.stepsKilled} steps recovered in ${(run.recoveryMs / 1000).toFixed(1)} s`,
      );
      result.recoveryMs.push(run.recoveryMs);
      result.stepsKilled.push(run.stepsKilled);
    }
    out.push(result);
  }
  return out;
}
