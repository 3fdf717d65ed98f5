/**
 * Where a model call's errors become Temporal failures that do or do not retry (the design note on
 * retries is in ./model.ts): the API's status and message, its `retry-after`, a context-length
 * refusal, a lost connection, a stream that broke off.
 */
import Anthropic from '@anthropic-ai/sdk';
import { ApplicationFailure } from '@temporalio/common';
import { FailureTypes } from '../contract/failures';

const NON_RETRYABLE_HINTS: Record<number, string> = {
  400: "the request was refused as invalid; check the agent's model name and max tokens in config/agents.yaml",
  401: "authentication failed; set a valid ANTHROPIC_API_KEY in the worker's environment",
  403: "the API key lacks permission for this model or feature; check the key's workspace and the model name",
  404: 'not found; check the model name in config/agents.yaml and ANTHROPIC_BASE_URL',
  413: 'the request is too large; lower the question or step context size',
  422: "the request could not be processed; check the agent's config",
};

/** The API's 400 messages for a request over the model's context window. */
const CONTEXT_REFUSAL = /^prompt is too long\b|exceed context limit/;

/** Parses `retry-after` (seconds or HTTP date) into milliseconds, if present and sane. */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  const value = headers?.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.min(Number(value) * 1000, 10 * 60_000);
  // Only the IMF-fixdate form HTTP uses: Date.parse alone accepts garbage such as "-5".
  if (!/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(value)) return undefined;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.min(date - now, 10 * 60_000));
}

/** Maps anything a model call threw to what Temporal should do with it. */
export function classifyModelError(err: unknown, agentId: string): unknown {
  if (err instanceof Anthropic.APIUserAbortError) return err; // cancellation: let Temporal see it as such
  if (err instanceof Anthropic.APIError && typeof err.status === 'number') {
    const status: number = err.status;
    const hint = NON_RETRYABLE_HINTS[status];
    // The API's own message reads better than the SDK's (which repeats the status and raw body).
    const apiMessage = (err.error as { error?: { message?: unknown } } | undefined)?.error?.message;
    const detail = `agent "${agentId}": model API answered ${status}: ${typeof apiMessage === 'string' ? apiMessage : err.message}`;
    // The API's context-length refusals ("prompt is too long: …", "input length and `max_tokens`
    // exceed context limit: …"): their own type, which synthesis answers by splitting its input.
    if (status === 400 && typeof apiMessage === 'string' && CONTEXT_REFUSAL.test(apiMessage)) {
      return ApplicationFailure.create({
        message: `${detail} (the request does not fit the model's context window)`,
        type: FailureTypes.ContextTooLong,
        nonRetryable: true,
      });
    }
    if (hint) {
      const type =
        status === 401 || status === 403 ? FailureTypes.ModelAuthFailed : FailureTypes.ModelRequestInvalid;
      return ApplicationFailure.create({ message: `${detail} (${hint})`, type, nonRetryable: true });
    }
    return ApplicationFailure.create({
      message: detail,
      type: FailureTypes.ModelUnavailable,
      nextRetryDelay: retryAfterMs(err.headers as Headers | undefined),
    });
  }
  if (err instanceof Anthropic.APIConnectionError) {
    return ApplicationFailure.create({
      message: `agent "${agentId}": cannot reach the model API: ${err.message}`,
      type: FailureTypes.ModelUnavailable,
    });
  }
  if (err instanceof Anthropic.AnthropicError) {
    // E.g. a stream cut mid-response ("terminated"): transient, so retried like a lost connection.
    return ApplicationFailure.create({
      message: `agent "${agentId}": the model call broke off: ${err.message}`,
      type: FailureTypes.ModelUnavailable,
    });
  }
  return err;
}
