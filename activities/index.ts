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
  MAX_SOURCE_BYTES_PER_STEP,
  ReportSchema,
  StoredSourcesSchema,
  type Activities,
  type PartialReportInput,
  type PlanTaskInput,
  type PlanTaskResult,
  type PublishInput,
  type PublishResult,
  type RefusedToolCall,
  type Refusals,
  type SnapshotCheck,
  type StepInput,
  type StepResult,
  type SummaryInput,
  type SummaryResult,
  type SynthesisInput,
  type SynthesisPart,
  type SynthesisStep,
  type SynthesisResult,
} from '../contract/activities';
import { boundProblems } from '../contract/bounds';
import { canonicalJson } from '../contract/canonical';
import { FailureTypes } from '../contract/failures';
import type { ArtifactRef, Provenance, Source } from '../contract/messages';
import { safeText } from '../contract/text';
import { getArtifact, putArtifact, sha256 } from './artifacts';
import { ConfigError, loadConfig, putSnapshot, snapshotAgents, snapshotFor } from './config';
import { callStructured } from './model';
import { activityOptionsFromEnv, configNotAllowed, type ActivityOptions } from './options';
import {
  planPrompt,
  safeFindings,
  safePlan,
  safeReport,
  stepPrompt,
  summaryPrompt,
  synthesisPrompt,
  type ContextItem,
} from './prompts';
import { neutraliseModelText, renderReport, reportKey, storeReport } from './report';
import {
  checkSnapshotSeal,
  loadPublishers,
  sealSnapshot,
  signProvenance,
  type SignedProvenance,
} from './signing';
import { openStores } from './store';
import { taskStateActivities } from './task-state';
import { toolsFor } from './tools';

/** The refusals of one model answer, as an optional field (absent when there were none). */
const refusals = (answer: { refusedToolCalls: RefusedToolCall[] }): Refusals =>
  answer.refusedToolCalls.length ? { refusedToolCalls: answer.refusedToolCalls } : {};

/** Names refused tool calls in a failure message, so the record survives the failed attempt. */
const refusedNote = (refused: RefusedToolCall[]): string =>
  refused.length ? ` (refused tool calls: ${refused.map((r) => r.tool).join(', ')})` : '';

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

/** A step's line in a report's references: its agent, question and sources. */
function referenceLine(s: SynthesisStep, given: Source[]): string {
  const sources = given.map((src) => (src.url ? `[${src.title}](${src.url})` : src.title)).join('; ');
  return `- **[step:${s.id}]** ${s.agent}: ${s.question}${sources ? `\n  Sources: ${sources}` : ''}`;
}

/** The step ids a text cites as [step:<id>], each once, in order. */
const citations = (text: string): string[] => [
  ...new Set([...text.matchAll(/\[step:([A-Za-z0-9_-]{1,32})\]/g)].map((m) => m[1]!)),
];

/** Builds the activities around one set of options (tests pass their own folders). */
export function createActivities(options: ActivityOptions = activityOptionsFromEnv()): Activities {
  const model = { apiKey: options.apiKey, baseURL: options.baseURL };
  const stores = openStores(options);
  const agentOf = snapshotAgents(stores.artifacts);
  const readContext = (items: { id: string; agent: string; result: ArtifactRef }[]): Promise<ContextItem[]> =>
    Promise.all(
      items.map(async (c) => ({
        id: c.id,
        agent: c.agent,
        text: await getArtifact(stores.artifacts, c.result.id),
      })),
    );

  /**
   * A step's sources: inline, or read from the JSON artifact a specialist stored them in (v12),
   * checked to be the list of sources a step keeps.
   */
  const sourcesOf = async (s: SynthesisStep): Promise<Source[]> => {
    if (!s.sourcesRef) return s.sources ?? [];
    const text = await getArtifact(stores.artifacts, s.sourcesRef.id);
    const bad = (why: string): never => {
      throw ApplicationFailure.nonRetryable(
        `the sources of step "${s.id}" (artifact ${s.sourcesRef!.id}) are not a list of sources: ${why}`,
        FailureTypes.ArtifactMissing,
      );
    };
    if (Buffer.byteLength(text, 'utf8') > MAX_SOURCE_BYTES_PER_STEP)
      bad(`over ${MAX_SOURCE_BYTES_PER_STEP} bytes`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      bad('not JSON');
    }
    const parsed = StoredSourcesSchema.safeParse(json);
    if (!parsed.success)
      bad(boundProblems(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).join('; '));
    return parsed.data!;
  };

  /**
   * What a synthesis call reads: the steps' findings, or the parts' summaries, and the reference
   * line of every step covered, by id.
   */
  const readMaterial = async (input: { steps: SynthesisStep[]; parts?: SynthesisPart[] }) => {
    const given = input.parts ?? [];
    const [results, sources, parts, partRefs] = await Promise.all([
      readContext(input.steps),
      Promise.all(input.steps.map(sourcesOf)),
      Promise.all(
        given.map(async (p) => ({ label: p.label, text: await getArtifact(stores.artifacts, p.notes.id) })),
      ),
      Promise.all(
        given.map(
          async (p) =>
            JSON.parse(await getArtifact(stores.artifacts, p.references.id)) as Record<string, string>,
        ),
      ),
    ]);
    const references = new Map<string, string>([
      ...input.steps.map((s, i): [string, string] => [s.id, referenceLine(s, sources[i]!)]),
      ...partRefs.flatMap((r) => Object.entries(r)),
    ]);
    return { results, parts, references };
  };

  return {
    ...taskStateActivities(stores.artifacts),

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
        }),
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
      const { summary, findings, sources } = safeFindings(answer.parsed.value);
      // The sources the step keeps, stored too, so that synthesis is given them by reference.
      const [result, sourcesRef] = await Promise.all([
        putArtifact(stores.artifacts, findings),
        putArtifact(stores.artifacts, JSON.stringify(boundSources(sources).sources)),
      ]);
      return {
        summary,
        sources,
        sourcesRef,
        result,
        usage: answer.usage,
        model: answer.model,
        ...refusals(answer),
      };
    },

    /**
     * The lead writes the report from the step results (or, for a plan too large to read at once,
     * from the summaries of their groups, appended to the report); citations are checked against
     * the steps. The prompt is measured against the lead's context window first.
     */
    async synthesizeReport(input: SynthesisInput): Promise<SynthesisResult> {
      const [lead, { results, parts, references }] = await Promise.all([
        agentOf(input.lead, 'lead'),
        readMaterial(input),
      ]);
      const answer = await callStructured({
        ...model,
        agent: lead,
        prompt: synthesisPrompt({ question: input.question, results, parts, change: input.change }),
        answer: { name: 'submit_report', schema: ReportSchema },
        measure: true,
      });
      if (!answer.parsed.ok) {
        throw ApplicationFailure.create({
          message: `synthesis (agent "${input.lead.id}"): malformed report: ${safeText(boundProblems(answer.parsed.problems).join('; '))}${refusedNote(answer.refusedToolCalls)}`,
          type: FailureTypes.ModelOutputInvalid,
        });
      }
      const { title, summary, markdown } = safeReport(answer.parsed.value);
      const byPart = parts.length
        ? [`## Findings by part\n\n${parts.map((p) => `### Steps ${p.label}\n\n${p.text}`).join('\n\n')}`]
        : [];
      const cited = citations([markdown, ...byPart].join('\n'));
      const unresolved = cited.filter((id) => !references.has(id));
      const lines = cited.flatMap((id) => (references.has(id) ? [references.get(id)!] : []));
      const assembled = [
        `# ${title}`,
        `**Summary.** ${summary}`,
        markdown,
        ...byPart,
        `## References\n${lines.length ? lines.join('\n') : '_The report cites no step._'}`,
        ...(input.skipped?.length
          ? [
              `## Gaps\nThese steps did not complete (they failed and were skipped, or the token budget ran out), so the report does not cover them:\n${input.skipped
                .map((g) => `- **${g.id}** (${g.agent}): ${g.question} — ${g.reason}`)
                .join('\n')}`,
            ]
          : []),
        ...(unresolved.length
          ? [`> Warning: the report cites steps that do not exist: ${unresolved.join(', ')}.`]
          : []),
      ].join('\n\n');
      // Model text throughout (title, summary, report, step questions and sources): no marker, no label line.
      const body = neutraliseModelText(assembled);
      const report = await putArtifact(stores.artifacts, body);
      return {
        title,
        summary,
        report,
        cited: cited.filter((id) => references.has(id)),
        usage: answer.usage,
        model: answer.model,
        ...refusals(answer),
      };
    },

    /**
     * One part of a hierarchical synthesis: the lead's summary of a group of steps (or of parts),
     * citing them, stored with the reference lines of every step it covers.
     */
    async summarizeSteps(input: SummaryInput): Promise<SummaryResult> {
      const [lead, { results, parts, references }] = await Promise.all([
        agentOf(input.lead, 'lead'),
        readMaterial(input),
      ]);
      const answer = await callStructured({
        ...model,
        agent: lead,
        prompt: summaryPrompt({ question: input.question, results, parts }),
        answer: { name: 'submit_report', schema: ReportSchema },
        measure: true,
      });
      if (!answer.parsed.ok) {
        throw ApplicationFailure.create({
          message: `synthesis of a part (agent "${input.lead.id}"): malformed summary: ${safeText(boundProblems(answer.parsed.problems).join('; '))}${refusedNote(answer.refusedToolCalls)}`,
          type: FailureTypes.ModelOutputInvalid,
        });
      }
      const { title, summary, markdown } = safeReport(answer.parsed.value);
      const steps = [...references.keys()];
      const [notes, refs] = await Promise.all([
        putArtifact(stores.artifacts, neutraliseModelText(`**${title}.** ${summary}\n\n${markdown}`)),
        putArtifact(stores.artifacts, JSON.stringify(Object.fromEntries(references))),
      ]);
      return {
        part: {
          label: `${steps[0]}…${steps.at(-1)} (${steps.length} steps)`,
          notes,
          references: refs,
          steps,
        },
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
      return { path: location, contentHash };
    },
  };
}
