/**
 * Baton's activities: every side effect of a research task. Workflows import only the type
 * {@link Activities} and proxy it; workers register {@link createActivities}' result.
 */
import { ApplicationFailure } from '@temporalio/common';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { checkPlan, PlanSchema, PlanStepSchema, type ConfigSnapshot } from '../config/schema';
import {
  boundSources,
  FindingsSchema,
  type Activities,
  type PartialReportInput,
  type PlanTaskInput,
  type PlanTaskResult,
  type PublishInput,
  type PublishResult,
  type SnapshotCheck,
  type StepInput,
  type StepResult,
} from '../contract/activities';
import { boundProblems } from '../contract/bounds';
import { canonicalJson } from '../contract/canonical';
import { FailureTypes } from '../contract/failures';
import type { ArtifactRef, Provenance } from '../contract/messages';
import { safeText } from '../contract/text';
import { contextReader, refusals, refusedNote } from './answers';
import { getArtifact, putArtifact, sha256 } from './artifacts';
import { ConfigError, loadConfig, putSnapshot, snapshotAgents, snapshotFor } from './config';
import { mcpActivities } from './mcp';
import { citedDocuments, documentBlocks, documentRetrievals } from './documents';
import { callStructured } from './model';
import { activityOptionsFromEnv, configNotAllowed, type ActivityOptions } from './options';
import { planPrompt, safeFindings, safePlan, stepPrompt } from './prompts';
import { neutraliseModelText, renderReport, reportKey, storeReport } from './report';
import {
  checkSnapshotSeal,
  loadPublishers,
  sealSnapshot,
  signProvenance,
  type SignedProvenance,
} from './signing';
import { roundActivities } from './rounds';
import { openStores } from './store';
import { taskStateActivities } from './task-state';
import { synthesisActivities } from './synthesis';
import { citationActivities, putRetrievalRecord } from './citations';
import { toolsFor } from './tools';
import { toolTurnActivities } from './tool-turn';

/** The first path (`snapshot.playbook.limits`) at which two JSON values differ, or undefined when they do not. */
function firstDifference(a: unknown, b: unknown, at = 'snapshot'): string | undefined {
  if (canonicalJson(a) === canonicalJson(b)) return undefined;
  if (a && b && typeof a === 'object' && typeof b === 'object' && Array.isArray(a) === Array.isArray(b)) {
    const x = a as Record<string, unknown>;
    const y = b as Record<string, unknown>;
    for (const key of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) {
      const found = firstDifference(x[key], y[key], `${at}.${key}`);
      if (found) return found;
    }
  }
  return at;
}

/** Builds the activities around one set of options (tests pass their own folders). */
export function createActivities(options: ActivityOptions = activityOptionsFromEnv()): Activities {
  const model = { apiKey: options.apiKey, baseURL: options.baseURL };
  const stores = openStores(options);
  const agentOf = snapshotAgents(stores.artifacts);
  const readContext = contextReader(stores.artifacts);

  return {
    ...taskStateActivities(stores.artifacts),
    ...mcpActivities({ store: stores.artifacts, env: process.env }),
    ...synthesisActivities({ model, store: stores.artifacts, agentOf, readContext }),
    ...citationActivities(stores.artifacts),
    ...roundActivities({ model, agentOf, readContext }),
    ...toolTurnActivities({ model, store: stores.artifacts, agentOf, readContext }),

    /** Loads and validates config, and returns what a task with this playbook needs, with the digest. */
    async loadConfigSnapshot(playbookId: string): Promise<ConfigSnapshot> {
      let config;
      try {
        config = await loadConfig(options.configDir);
      } catch (err) {
        if (err instanceof ConfigError)
          throw ApplicationFailure.nonRetryable(err.message, FailureTypes.ConfigInvalid);
        throw err;
      }
      const notAllowed = configNotAllowed(config.digest, options.configAllowlist);
      if (notAllowed) throw ApplicationFailure.nonRetryable(notAllowed, FailureTypes.ConfigNotAllowed);
      const snapshot = snapshotFor(config, playbookId, options.searchAttributes);
      if (!snapshot) {
        throw ApplicationFailure.nonRetryable(
          `unknown playbook "${playbookId}"; available: ${Object.keys(config.playbooks).join(', ')}`,
          FailureTypes.UnknownPlaybook,
        );
      }
      // Sealed, so that the task's children can show it is a snapshot a worker loaded; stored, so
      // that model activities can be given its agents by reference (v12).
      const loaded = options.publisherKey ? sealSnapshot(snapshot, options.publisherKey) : snapshot;
      await putSnapshot(stores.artifacts, loaded);
      return loaded;
    },

    /**
     * A child workflow's snapshot, checked before the child makes any model call: refused when an
     * allow-list is set and its digest is not on it; accepted when its seal verifies with this
     * worker's publisher key or one config/publishers.yaml lists; otherwise accepted only when this
     * worker's config has the same digest and gives the very same snapshot.
     */
    async checkSnapshot(snapshot: ConfigSnapshot): Promise<SnapshotCheck> {
      const refuse = (check: string, reason: string): never => {
        throw ApplicationFailure.nonRetryable(
          `config snapshot refused (${check}): ${reason}`,
          FailureTypes.SnapshotRefused,
        );
      };
      const notAllowed = configNotAllowed(snapshot.digest, options.configAllowlist);
      if (notAllowed) refuse('allow-list', notAllowed);
      const own = options.publisherKey
        ? [{ id: 'this worker', publicKey: options.publisherKey.publicKey }]
        : [];
      const listed = path.join(options.configDir, 'publishers.yaml');
      const publishers = await fs.access(listed).then(
        () => loadPublishers(listed),
        () => [],
      );
      const sealed = checkSnapshotSeal(snapshot, [...own, ...publishers]);
      // Stored once checked, so that the child's model activities resolve its agents by reference
      // (v12) wherever its parent's snapshot was loaded.
      if (sealed.ok) {
        await putSnapshot(stores.artifacts, snapshot);
        return { by: 'seal', keyId: sealed.keyId };
      }
      let config;
      try {
        config = await loadConfig(options.configDir);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        return refuse('seal', `${sealed.reason}, and this worker's config does not load: ${err.message}`);
      }
      if (config.digest !== snapshot.digest)
        refuse(
          'seal',
          `${sealed.reason}, and its digest ${snapshot.digest} is not that of this worker's config (${config.digest})`,
        );
      const mine = snapshotFor(config, snapshot.playbook.id, options.searchAttributes);
      const differs = mine ? firstDifference({ ...snapshot, seal: undefined }, mine) : 'snapshot.playbook.id';
      if (differs)
        refuse(
          'content',
          `${sealed.reason}, and it differs at ${differs} from the snapshot this worker's config (same digest) gives`,
        );
      await putSnapshot(stores.artifacts, snapshot);
      return { by: 'config' };
    },

    /**
     * Asks the lead for a plan and validates it here, so only a checked plan or the problems enter
     * history, sanitized (./prompts.ts): what the approver reads is what the specialists get.
     */
    async planTask(input: PlanTaskInput): Promise<PlanTaskResult> {
      const { limits } = input;
      const lead = await agentOf(input.lead, 'lead');
      // The schema the model sees names only the allowed agents and the step limit.
      const shown = PlanSchema.extend({
        steps: z
          .array(PlanStepSchema.extend({ agent: z.enum(limits.allowedAgents as [string, ...string[]]) }))
          .min(1)
          .max(limits.maxSteps),
      });
      const answer = await callStructured({
        ...model,
        agent: lead,
        prompt: planPrompt({ ...input, effortRule: lead.effortRule }),
        documents: await documentBlocks(stores.artifacts, input.documents),
        answer: { name: 'submit_plan', schema: PlanSchema, shownSchema: shown },
      });
      const common = { usage: answer.usage, model: answer.model, ...refusals(answer) };
      if (!answer.parsed.ok) {
        return {
          valid: false,
          problems: boundProblems(answer.parsed.problems).map((p) => safeText(p)),
          ...common,
        };
      }
      const plan = safePlan(answer.parsed.value);
      const problems = boundProblems(checkPlan(plan, limits)).map((p) => safeText(p));
      return problems.length ? { valid: false, problems, ...common } : { valid: true, plan, ...common };
    },

    /** One specialist step: the findings go to the artifact store, a summary and reference to history. */
    async runSpecialist(input: StepInput): Promise<StepResult> {
      const agent = await agentOf(input.agent, 'specialist');
      const answer = await callStructured({
        ...model,
        agent,
        prompt: stepPrompt({
          overallQuestion: input.overallQuestion,
          step: input.step,
          context: await readContext(input.context),
          change: input.change,
          documents: input.documents,
        }),
        documents: await documentBlocks(stores.artifacts, input.documents),
        answer: { name: 'submit_findings', schema: FindingsSchema },
        extraTools: toolsFor(agent.tools),
        step: input.step.id,
      });
      if (!answer.parsed.ok) {
        // Retryable: a model may well answer in shape on the next attempt.
        throw ApplicationFailure.create({
          message: `step "${input.step.id}" (agent "${input.agent.id}"): malformed findings: ${safeText(boundProblems(answer.parsed.problems).join('; '))}${refusedNote(answer.refusedToolCalls)}`,
          type: FailureTypes.ModelOutputInvalid,
        });
      }
      const safe = safeFindings(answer.parsed.value);
      const { summary, findings } = safe;
      const sources = citedDocuments(safe.sources, input.documents);
      // The sources the step keeps, stored too, so that synthesis is given them by reference; and
      // what its tools returned (from the response, not the answer), for the citation pass.
      const [result, sourcesRef, retrieved] = await Promise.all([
        putArtifact(stores.artifacts, findings),
        putArtifact(stores.artifacts, JSON.stringify(boundSources(sources).sources)),
        putRetrievalRecord(stores.artifacts, input.step.id, [
          ...(answer.retrievals ?? []),
          ...documentRetrievals(input.documents, new Date().toISOString()),
        ]),
      ]);
      return {
        summary,
        sources,
        sourcesRef,
        ...retrieved,
        result,
        usage: answer.usage,
        model: answer.model,
        ...refusals(answer),
      };
    },

    /**
     * The best report a task that stopped early can give without a model call: the finished steps'
     * findings, in plan order, under a note that the task stopped early.
     */
    async assemblePartialReport(input: PartialReportInput): Promise<ArtifactRef> {
      const sections = await Promise.all(
        input.steps.map(
          async (s) =>
            `## Step ${s.id} (${s.agent})\n\n_${s.question}_\n\n${await getArtifact(stores.artifacts, s.result.id)}`,
        ),
      );
      const body = [
        `# Partial results: ${input.question}`,
        `The task stopped before its report was written and signed off (${neutraliseModelText(input.reason ?? 'the task was cancelled')}). What follows is the findings of the steps that had finished, unedited and not synthesized.`,
        ...sections.map(neutraliseModelText),
      ].join('\n\n');
      return putArtifact(stores.artifacts, body);
    },

    /**
     * Writes a report with its AI-generated labels and provenance (signed with the worker's publisher
     * key when it has one) to the report store: `<id>.<run id>.md` when final, `….draft.md` or
     * `….partial.md` otherwise. Idempotent; a final or partial report is written once (./report.ts).
     */
    async publishReport(input: PublishInput): Promise<PublishResult> {
      // Neutralised again: a no-op for bodies written above, a guard for any other stored text.
      const body = neutraliseModelText(await getArtifact(stores.artifacts, input.report.id));
      const contentHash = `sha256:${sha256(body)}`;
      const kind = input.kind ?? 'final';
      const unsigned: Provenance = { ...input.provenance, contentHash, reportKind: kind };
      // Without a publisher key the report is published, its label saying "unsigned provenance".
      const provenance: SignedProvenance = options.publisherKey
        ? signProvenance(unsigned, options.publisherKey)
        : unsigned;
      const location = await storeReport(stores.reports, {
        key: reportKey(input.provenance.workflowId, input.provenance.runId, kind),
        kind,
        text: renderReport(body, provenance),
        provenance,
      });
      return { path: location, contentHash, kind, report: input.report };
    },
  };
}
