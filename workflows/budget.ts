/**
 * The playbook's token budget (`budget` in a playbook; docs/configuration.md, "Token budgets"):
 *   - `maxTokensPerTask`: the scheduler starts no step that could take the task past it
 *     ({@link Budget.overBudget}), and records once that it stopped ({@link Budget.stop}); steps it
 *     kept from running are skipped, and the report says so.
 *   - `maxTokensPerStep`: caps each step's model output ({@link Budget.stepMaxTokens}), and is the whole
 *     budget of a decomposed step's child task ({@link Budget.childBounds}); a batch child gets
 *     what is left of the task budget ({@link Budget.batchBounds}).
 * Tokens count cache reads and writes too (`tokensOf`).
 */
import { log } from '@temporalio/workflow';
import type { AgentConfig, ConfigSnapshot } from '../config/schema';
import type { ChildBounds } from '../contract/children';
import type { TaskStatus } from '../contract/messages';
import { tokensOf } from '../contract/usage';
import { now } from './status';

export class Budget {
  constructor(
    private readonly status: TaskStatus,
    private readonly config: ConfigSnapshot,
  ) {}

  /** Whether scheduling has stopped for the budget. */
  get stopped(): boolean {
    return this.status.budget?.stopped !== undefined;
  }

  /**
   * Whether starting one more step could take the task past its token budget: the tokens spent so
   * far, plus, at the average of the steps finished so far, the steps in flight, the next one and
   * the synthesis that must still follow. Without a finished step there is no estimate yet, so
   * only tokens already spent count.
   */
  overBudget(stepsInFlight: number): boolean {
    const max = this.config.playbook.budget?.maxTokensPerTask;
    if (max === undefined) return false;
    const finished = this.status.steps.filter((s) => s.state === 'done' && s.usage);
    const perStep = finished.length
      ? finished.reduce((sum, s) => sum + tokensOf(s.usage!), 0) / finished.length
      : 0;
    return tokensOf(this.status.usage) + (stepsInFlight + 2) * perStep > max;
  }

  /** Stops scheduling for the budget: recorded in status and the audit trail, once. */
  stop(): void {
    if (this.status.budget?.stopped) return;
    const max = this.config.playbook.budget!.maxTokensPerTask!;
    const spent = tokensOf(this.status.usage);
    const reason = `token budget: ${spent} of ${max} tokens spent; the next step would exceed it`;
    this.status.budget = { ...this.status.budget, stopped: { at: now(), reason } };
    this.status.audit.push({ at: now(), gate: null, event: 'budget-exhausted', reason });
    log.warn('token budget reached; no new steps', { spent, max });
  }

  /** After execution: the steps the budget kept from running are skipped, with the reason. */
  skipUnstarted(): void {
    const stopped = this.status.budget?.stopped;
    if (!stopped) return;
    for (const step of this.status.steps) {
      if (step.state === 'pending')
        Object.assign(step, { state: 'skipped', error: `not run: ${stopped.reason}` });
    }
  }

  /**
   * A step's cap on its agent's output: the playbook's per-step budget, when it is lower than the
   * agent's `maxTokens` (undefined otherwise).
   */
  stepMaxTokens(agent: AgentConfig): number | undefined {
    const perStep = this.config.playbook.budget?.maxTokensPerStep;
    return perStep === undefined || agent.maxTokens <= perStep ? undefined : perStep;
  }

  /** Before v8: a decomposed step's child works within the per-step budget, as its own task budget. */
  childConfig(): ConfigSnapshot {
    const perStep = this.config.playbook.budget?.maxTokensPerStep;
    if (perStep === undefined) return this.config;
    const { playbook } = this.config;
    return {
      ...this.config,
      playbook: { ...playbook, budget: { maxTokensPerTask: perStep, maxTokensPerStep: perStep } },
    };
  }

  /**
   * A decomposed step's child's bounds (v8, contract/children.ts): the per-step budget as its whole
   * task budget, the `maxParallel` this run has, and `totalSteps`, its share of `maxTotalSteps`.
   */
  childBounds(totalSteps: number | undefined): ChildBounds {
    const perStep = this.config.playbook.budget?.maxTokensPerStep;
    return {
      ...(perStep === undefined ? {} : { maxTokensPerTask: perStep, maxTokensPerStep: perStep }),
      maxParallel: this.config.playbook.limits.maxParallel,
      ...(totalSteps === undefined ? {} : { maxTotalSteps: totalSteps }),
    };
  }

  /**
   * A batch child's bounds (v8): its share of `maxParallel` (`slots`), the per-step budget, what is
   * left of the task budget, and `totalSteps`, its steps and their children's share of `maxTotalSteps`.
   */
  batchBounds(slots: number, totalSteps: number | undefined): ChildBounds {
    const { maxTokensPerTask, maxTokensPerStep } = this.config.playbook.budget ?? {};
    const left =
      maxTokensPerTask === undefined
        ? undefined
        : Math.max(0, maxTokensPerTask - tokensOf(this.status.usage));
    return {
      maxParallel: slots,
      ...(maxTokensPerStep === undefined ? {} : { maxTokensPerStep }),
      ...(left === undefined ? {} : { maxTokensPerTask: left }),
      ...(totalSteps === undefined ? {} : { maxTotalSteps: totalSteps }),
    };
  }

  /**
   * A batch child's config before v8: its share of `maxParallel` (`slots`); the parent keeps the
   * task budget, a batch only caps steps.
   */
  batchConfig(slots: number): ConfigSnapshot {
    const { maxTokensPerStep } = this.config.playbook.budget ?? {};
    return {
      ...this.config,
      playbook: {
        ...this.config.playbook,
        limits: { ...this.config.playbook.limits, maxParallel: slots },
        budget: maxTokensPerStep === undefined ? undefined : { maxTokensPerStep },
      },
    };
  }
}
