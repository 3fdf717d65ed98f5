/** The judge: who grades the answers (the lead's settings, the rubric's instructions) and one grading. */
import type { SnapshotAgent } from '../config/schema';
import { callWithRetries, type ModelEndpoint, type RetryOptions } from './model';
import type { Answer } from './modes';
import type { EvalQuestion } from './questions';
import type { ModeResult } from './report';
import { JUDGE_ANSWER, JUDGE_SYSTEM_PROMPT, judgePrompt, meanScore } from './rubric';

/** The judge agent: the lead's settings with its own model, the rubric's instructions and no tools. */
export const judgeAgentFrom = (lead: SnapshotAgent, model: string): SnapshotAgent => ({
  ...lead,
  id: 'judge',
  role: 'Grades answers against the evaluation rubric.',
  model,
  maxTokens: 2000,
  systemPrompt: JUDGE_SYSTEM_PROMPT,
  tools: [],
  effortRule: undefined,
});

/** Grades `answer` into `row` (its judge call, and the judgement when one came in shape); never throws. */
export async function judgeInto(
  row: ModeResult,
  question: EvalQuestion,
  answer: Answer,
  judge: SnapshotAgent,
  endpoint: ModelEndpoint,
  retry: RetryOptions,
): Promise<void> {
  const verdict = await callWithRetries(
    {
      agent: judge,
      prompt: judgePrompt({
        question,
        answer: answer.text,
        sources: answer.sources,
        effort: {
          totalTokens: row.totalTokens,
          wallSeconds: row.wallMs / 1000,
          ...(row.modelCalls !== undefined ? { modelCalls: row.modelCalls } : {}),
        },
      }),
      answer: JUDGE_ANSWER,
    },
    endpoint,
    retry,
  );
  row.judge = {
    attempts: verdict.attempts,
    usage: verdict.usage,
    ...(verdict.model ? { model: verdict.model } : {}),
    ...(verdict.ok ? {} : { error: `judge: ${verdict.error}` }),
  };
  if (verdict.ok) {
    row.judgement = verdict.value;
    row.meanScore = meanScore(verdict.value);
  }
}
