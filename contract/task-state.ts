/**
 * The activities that carry a task's state across a continue-as-new (workflows/continue.ts): a
 * task that waits at a gate long enough for its history to grow (reminders, escalations, refused
 * decisions) saves its state to the store in parts and continues as a new run, which reads it back.
 *
 * The parts are keyed by the saving run, which the server names to the activity (its caller's
 * workflow and run id), and the state's hash; they are read back under the run the new one
 * continued from, which the server also names, and checked against the hash: a task's state can
 * only be read by the run that continued it, and nobody can hand a task a state of their own
 * through its input.
 */

/** Characters of state JSON in one part: at most 512 KB of UTF-8, well under Temporal's 2 MB payload limit. */
export const STATE_PART_CHARS = 128 * 1024;

export interface SaveStateInput {
  /** `sha256:<hex>` of the whole state's JSON: the parts are kept under it. */
  state: string;
  /** Which part, from 0. */
  part: number;
  /** At most {@link STATE_PART_CHARS} characters of the state's JSON. */
  text: string;
}

export interface LoadStateInput {
  /** The run that saved the state: the one this run continued from. */
  run: string;
  /** The state's hash, as the run continued with it. */
  state: string;
  part: number;
}

export interface TaskStateActivities {
  /** Saves one part of the calling run's state, once: a retry with the same text finds it saved. */
  saveTaskState(input: SaveStateInput): Promise<void>;
  /** Reads one part of the state the calling task's run `run` saved. */
  loadTaskState(input: LoadStateInput): Promise<string>;
}
