/**
 * A task's state saved across a continue-as-new (contract/task-state.ts): JSON parts in the artifact
 * store under `state/<sha256 of the workflow id>/<run id>/<state hash>.<part>.json`, keyed by the run
 * the server says called the activity. Written once; encrypted like every stored object when the codec is on.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import {
  STATE_PART_CHARS,
  type LoadStateInput,
  type SaveStateInput,
  type TaskStateActivities,
} from '../contract/task-state';
import { MAX_STATE_PARTS } from '../contract/messages';
import { FailureTypes } from '../contract/failures';
import { sha256 } from './artifacts';
import type { ObjectStore } from './store';

const RUN_ID = /^[0-9a-f-]{1,64}$/;

const invalid = (message: string): ApplicationFailure =>
  ApplicationFailure.nonRetryable(message, FailureTypes.InvalidInput);

function checkPart(part: unknown): number {
  if (!Number.isInteger(part) || (part as number) < 0 || (part as number) >= MAX_STATE_PARTS)
    throw invalid(`task state part must be an integer from 0 to ${MAX_STATE_PARTS - 1}`);
  return part as number;
}

/** The run that scheduled this activity, as the server tells the worker (workers/callers.ts checks it is Baton's). */
function caller(): { workflowId: string; runId: string } {
  const execution = Context.current().info.workflowExecution;
  if (!execution)
    throw invalid('task state is saved and read only by a task (this activity has no workflow)');
  return execution;
}

const STATE_HASH = /^sha256:([0-9a-f]{64})$/;

function stateHex(state: unknown): string {
  const match = typeof state === 'string' ? STATE_HASH.exec(state) : null;
  if (!match) throw invalid('task state must be named by its hash: "sha256:" and 64 hex digits');
  return match[1]!.slice(0, 32);
}

const keyOf = (workflowId: string, runId: string, state: string, part: number): string =>
  `state/${sha256(workflowId).slice(0, 32)}/${runId}/${stateHex(state)}.${part}.json`;

export function taskStateActivities(store: ObjectStore): TaskStateActivities {
  return {
    async saveTaskState(input: SaveStateInput): Promise<void> {
      const part = checkPart(input.part);
      if (typeof input.text !== 'string' || input.text.length > STATE_PART_CHARS)
        throw invalid(`task state part ${part} must be text of at most ${STATE_PART_CHARS} characters`);
      const { workflowId, runId } = caller();
      const key = keyOf(workflowId, runId, input.state, part);
      const body = Buffer.from(input.text, 'utf8');
      if (await store.create(key, body)) return;
      // Saved already: by an earlier attempt of this activity, with the same text.
      const saved = await store.get(key);
      if (saved?.equals(body)) return;
      throw ApplicationFailure.nonRetryable(
        `task state part ${part} of run ${runId} is saved already with other content (${store.locate(key)}): never replaced`,
        FailureTypes.TaskStateMissing,
      );
    },

    async loadTaskState(input: LoadStateInput): Promise<string> {
      const part = checkPart(input.part);
      if (typeof input.run !== 'string' || !RUN_ID.test(input.run))
        throw invalid('task state run must be a run id (hex digits and dashes)');
      const { workflowId } = caller();
      const key = keyOf(workflowId, input.run, input.state, part);
      const body = await store.get(key);
      if (body === undefined)
        throw ApplicationFailure.nonRetryable(
          `the state run ${input.run} of task ${workflowId} saved before continuing as a new run is missing (part ${part}, ${store.locate(key)}): check that every worker uses the same BATON_STORE`,
          FailureTypes.TaskStateMissing,
        );
      return body.toString('utf8');
    },
  };
}
