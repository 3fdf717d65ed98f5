/**
 * Model calls for the modes that run outside a workflow (one call, single agent) and for the judge.
 *
 * They go through Baton's own `callStructured` (activities/model.ts), so the request, the structured
 * output format, the zod validation and the error classification are exactly what Baton's agents get.
 * `callStructured` is activity code: it heartbeats and listens for cancellation through the activity
 * context, so each call runs in a standalone activity context (`MockActivityEnvironment`), with no
 * Temporal server involved.
 *
 * Retries: inside Baton, Temporal's retry policy is the only retry layer (the SDK's retries are off).
 * Here there is no Temporal, so this module is that layer, with the same rule: failures the
 * classifier marks retryable (429 with its `retry-after`, 529, 5xx, dropped connections) and answers
 * that do not match the tool's schema are tried again, a bounded number of times; the rest (400, 401,
 * 403…) fail at once. A call that still fails comes back as an error, never as an exception.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { setTimeout as sleep } from 'node:timers/promises';
import { callStructured, type StructuredCall, type StructuredResult } from '../activities/model';
import type { Retrieval } from '../contract/citations';
import type { TokenUsage } from '../contract/messages';

/** Where model calls go: Anthropic's API, a gateway, or the offline stand-in. */
export interface ModelEndpoint {
  apiKey: string;
  baseURL?: string;
}

/**
 * Tokens as the API reported them, summed over calls, and their estimated cost in USD when Baton's
 * config prices the models (`costUsd`: absent without any estimate, `null` when a model is unpriced).
 */
export type Usage = Pick<
  TokenUsage,
  'inputTokens' | 'outputTokens' | 'cacheReadInputTokens' | 'cacheCreationInputTokens' | 'costUsd'
>;

export const ZERO_USAGE: Usage = { inputTokens: 0, outputTokens: 0 };

/** Every token the API counted: base input, cache reads and writes, and output. */
export const totalTokens = (u: Usage): number =>
  u.inputTokens + u.outputTokens + (u.cacheReadInputTokens ?? 0) + (u.cacheCreationInputTokens ?? 0);

/** Adds usage figures; cache fields appear in the sum only when one side has them. */
export function addUsage(a: Usage, b: TokenUsage): Usage {
  const sum: Usage = {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
  };
  if (a.cacheReadInputTokens !== undefined || b.cacheReadInputTokens !== undefined)
    sum.cacheReadInputTokens = (a.cacheReadInputTokens ?? 0) + (b.cacheReadInputTokens ?? 0);
  if (a.cacheCreationInputTokens !== undefined || b.cacheCreationInputTokens !== undefined)
    sum.cacheCreationInputTokens = (a.cacheCreationInputTokens ?? 0) + (b.cacheCreationInputTokens ?? 0);
  // An unknown cost makes the sum unknown: never shown as a smaller number than was spent.
  if (a.costUsd === null || b.costUsd === null) sum.costUsd = null;
  else if (a.costUsd !== undefined || b.costUsd !== undefined)
    sum.costUsd = (a.costUsd ?? 0) + (b.costUsd ?? 0);
  return sum;
}

export type CallOutcome<T> = { usage: Usage; model?: string; attempts: number } &
  /** `retrievals`: what the offered server tools returned in the answering call (activities/citations.ts). */
  ({ ok: true; value: T; retrievals: Retrieval[] } | { ok: false; error: string });

export interface RetryOptions {
  /** Attempts in all, the first included; default 3. */
  attempts?: number;
  /** Wait before attempt n+1 (ms) when the API gave no `retry-after`; default 2 s doubling, at most 30 s. */
  backoffMs?: (attempt: number) => number;
  /** Aborting stops waiting and cancels the call in flight. */
  signal?: AbortSignal;
}

const defaultBackoff = (attempt: number): number => Math.min(30_000, 2_000 * 2 ** (attempt - 1));

/** The SDK's own logs from the standalone activity context: errors only (the harness reports failures itself). */
const quietLogger = new DefaultLogger('ERROR');

/**
 * One structured model call with retries, as described at the top of this file. Usage is summed
 * over every attempt that got an answer, since every answer was paid for.
 */
export async function callWithRetries<T>(
  call: Omit<StructuredCall<T>, 'apiKey' | 'baseURL'>,
  endpoint: ModelEndpoint,
  options: RetryOptions = {},
): Promise<CallOutcome<T>> {
  const maxAttempts = Math.max(1, options.attempts ?? 3);
  const backoff = options.backoffMs ?? defaultBackoff;
  let usage = ZERO_USAGE;
  let model: string | undefined;
  let lastError = 'not attempted';
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    if (options.signal?.aborted)
      return { ok: false, error: 'interrupted', usage, model, attempts: attempt - 1 };
    const env = new MockActivityEnvironment(
      { activityType: `eval:${call.answer.name}`, attempt, startToCloseTimeoutMs: 10 * 60_000 },
      { logger: quietLogger },
    );
    const cancel = (): void => env.cancel('CANCELLED');
    options.signal?.addEventListener('abort', cancel, { once: true });
    let delay = 0;
    try {
      const answer = await env.run<[], StructuredResult<T>, () => Promise<StructuredResult<T>>>(() =>
        callStructured({ ...call, apiKey: endpoint.apiKey, baseURL: endpoint.baseURL }),
      );
      usage = addUsage(usage, answer.usage);
      model = answer.model;
      if (answer.parsed.ok) {
        const retrievals = answer.retrievals ?? [];
        return { ok: true, value: answer.parsed.value, retrievals, usage, model, attempts: attempt };
      }
      // A model may answer in shape next time: retried at once, like ModelOutputInvalid in Baton.
      lastError = `malformed ${call.answer.name} answer: ${answer.parsed.problems.join('; ')}`;
    } catch (err) {
      if (!(err instanceof ApplicationFailure) || err.nonRetryable) {
        return { ok: false, error: describe(err), usage, model, attempts: attempt };
      }
      lastError = err.message;
      delay = typeof err.nextRetryDelay === 'number' ? err.nextRetryDelay : backoff(attempt);
    } finally {
      options.signal?.removeEventListener('abort', cancel);
    }
    // An abort ends the wait early (the rejection is the abort); the loop then stops.
    if (attempt < maxAttempts && delay > 0)
      await sleep(delay, undefined, { signal: options.signal }).catch(() => undefined);
  }
  return {
    ok: false,
    error: `${lastError} (after ${maxAttempts} attempts)`,
    usage,
    model,
    attempts: maxAttempts,
  };
}

/** An error and its causes on one line. */
export function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause =
    err.cause instanceof Error && !err.message.includes(err.cause.message) ? `: ${describe(err.cause)}` : '';
  return `${err.message}${cause}`;
}
