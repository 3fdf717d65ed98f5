/**
 * Every failure type Baton raises: the `type` of an `ApplicationFailure` a workflow or an activity
 * throws. Callers and retry policies (an agent's `retry.nonRetryableErrorTypes` in config) match on
 * these names, so each is written here once. Workflow-safe: plain data.
 */
export const FailureTypes = {
  /** The task's input is not a valid `researchTask` input. */
  InvalidInput: 'InvalidInput',
  /** The config folder does not load or does not validate. */
  ConfigInvalid: 'ConfigInvalid',
  /** The config's digest is not on the worker's allowlist. */
  ConfigNotAllowed: 'ConfigNotAllowed',
  /** A child workflow's config snapshot is not one this worker sealed or would load (contract/children.ts). */
  SnapshotRefused: 'SnapshotRefused',
  /**
   * An activity on Baton's task queue was scheduled by something other than a Baton workflow on that
   * queue (another workflow type, a workflow on another queue, no workflow): refused before it runs,
   * naming the workflow, its type and its queue (workers/callers.ts).
   */
  CallerRefused: 'CallerRefused',
  /** The task names a playbook the config does not have. */
  UnknownPlaybook: 'UnknownPlaybook',
  /** The lead produced no valid plan, or a step names an agent the playbook does not allow. */
  PlanInvalid: 'PlanInvalid',
  /** A step failed and the playbook's step-failure policy fails the task. */
  StepFailed: 'StepFailed',
  /** A decision (the `decide` Update) was refused: it would be refused again, so it is not retried. */
  DecisionRefused: 'DecisionRefused',
  /** The model request is wrong (400, 404, 413, 422): fix config or input. */
  ModelRequestInvalid: 'ModelRequestInvalid',
  /** The key is missing, wrong or lacks permission (401, 403). */
  ModelAuthFailed: 'ModelAuthFailed',
  /** Rate limit, overload, 5xx, connection trouble: retried with backoff. */
  ModelUnavailable: 'ModelUnavailable',
  /**
   * The request does not fit the agent's context window (the API's 400 "prompt is too long", or
   * Baton's own count before the call): not retried. Synthesis splits its input further instead.
   * Details: `[{ inputTokens, contextTokens, maxTokens }]` when known.
   */
  ContextTooLong: 'ContextTooLong',
  /**
   * The answer was cut off at the agent's `maxTokens` (stop reason max_tokens): not retried, since
   * the same call would be cut off again at full price. The message names the agent to raise.
   */
  AnswerCutOff: 'AnswerCutOff',
  /** The model answered, but not in the required structure. */
  ModelOutputInvalid: 'ModelOutputInvalid',
  /** A stored artifact is missing or does not match its hash: every worker reads the same store, so not retried. */
  ArtifactMissing: 'ArtifactMissing',
  /**
   * A task continuing as a new run cannot read the state its previous run saved (missing, or not
   * the state that run saved): every worker reads the same store, so not retried.
   */
  TaskStateMissing: 'TaskStateMissing',
  /** A signed-off or partial report of this run is already published, with other content: never replaced. */
  ReportExists: 'ReportExists',
} as const;

/** One of {@link FailureTypes}. */
export type FailureType = (typeof FailureTypes)[keyof typeof FailureTypes];

/** What went wrong, with the chain of causes (`Child workflow execution failed: step "s2" …`). */
export const failureMessage = (err: unknown): string => {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message}: ${failureMessage(cause)}` : err.message;
  }
  return String(err);
};
