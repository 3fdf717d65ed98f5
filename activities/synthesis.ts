/**
 * The synthesis activities: the lead writes the report from the finished steps' findings (or, for a
 * plan too large to read at once, from the summaries of their groups), and summarizes a group of
 * steps for a synthesis in parts (workflows/synthesis.ts). Citations are checked against the steps.
 */
import { ApplicationFailure } from '@temporalio/common';
import {
  MAX_SOURCE_BYTES_PER_STEP,
  ReportSchema,
  StoredSourcesSchema,
  type SummaryInput,
  type SummaryResult,
  type SynthesisInput,
  type SynthesisPart,
  type SynthesisResult,
  type SynthesisStep,
} from '../contract/activities';
import { boundProblems } from '../contract/bounds';
import { FailureTypes } from '../contract/failures';
import type { ArtifactRef, Source } from '../contract/messages';
import { safeText } from '../contract/text';
import { refusals, refusedNote } from './answers';
import { getArtifact, putArtifact } from './artifacts';
import type { snapshotAgents } from './config';
import { callStructured } from './model';
import { safeReport, summaryPrompt, synthesisPrompt, type ContextItem } from './prompts';
import { neutraliseModelText } from './report';
import type { ObjectStore } from './store';

/** A step's line in a report's references: its agent, question and sources. */
function referenceLine(s: SynthesisStep, given: Source[]): string {
  const sources = given.map((src) => (src.url ? `[${src.title}](${src.url})` : src.title)).join('; ');
  return `- **[step:${s.id}]** ${s.agent}: ${s.question}${sources ? `\n  Sources: ${sources}` : ''}`;
}

/** The step ids a text cites as [step:<id>], each once, in order. */
const citations = (text: string): string[] => [
  ...new Set([...text.matchAll(/\[step:([A-Za-z0-9_-]{1,32})\]/g)].map((m) => m[1]!)),
];

/** What the synthesis activities work with: the model's key and URL, the store, agents by reference. */
export interface SynthesisDeps {
  model: { apiKey: string | undefined; baseURL: string | undefined };
  store: ObjectStore;
  agentOf: ReturnType<typeof snapshotAgents>;
  readContext: (items: { id: string; agent: string; result: ArtifactRef }[]) => Promise<ContextItem[]>;
}

export function synthesisActivities({ model, store, agentOf, readContext }: SynthesisDeps) {
  /**
   * A step's sources: inline, or read from the JSON artifact a specialist stored them in (v12),
   * checked to be the list of sources a step keeps.
   */
  const sourcesOf = async (s: SynthesisStep): Promise<Source[]> => {
    if (!s.sourcesRef) return s.sources ?? [];
    const text = await getArtifact(store, s.sourcesRef.id);
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
      Promise.all(given.map(async (p) => ({ label: p.label, text: await getArtifact(store, p.notes.id) }))),
      Promise.all(
        given.map(
          async (p) => JSON.parse(await getArtifact(store, p.references.id)) as Record<string, string>,
        ),
      ),
    ]);
    const references = new Map<string, string>([
      ...input.steps.map((s, i): [string, string] => [s.id, referenceLine(s, sources[i]!)]),
      ...partRefs.flatMap((r) => Object.entries(r)),
    ]);
    return { results, parts, references };
  };

  /**
   * The lead's report-shaped answer over a synthesis call's material (read first): asked with the
   * prompt measured against its context window, and refused, retryably, when it is not in shape.
   */
  const leadReport = async (
    input: SynthesisInput | SummaryInput,
    prompt: (material: Awaited<ReturnType<typeof readMaterial>>) => string,
    what: string,
    noun: string,
  ) => {
    const [lead, material] = await Promise.all([agentOf(input.lead, 'lead'), readMaterial(input)]);
    const answer = await callStructured({
      ...model,
      agent: lead,
      prompt: prompt(material),
      answer: { name: 'submit_report', schema: ReportSchema },
      measure: true,
    });
    if (!answer.parsed.ok) {
      throw ApplicationFailure.create({
        message: `${what} (agent "${input.lead.id}"): malformed ${noun}: ${safeText(boundProblems(answer.parsed.problems).join('; '))}${refusedNote(answer.refusedToolCalls)}`,
        type: FailureTypes.ModelOutputInvalid,
      });
    }
    return { material, answer, report: safeReport(answer.parsed.value) };
  };

  return {
    /**
     * The lead writes the report from the step results (or, for a plan too large to read at once,
     * from the summaries of their groups, appended to the report); citations are checked against
     * the steps. The prompt is measured against the lead's context window first.
     */
    async synthesizeReport(input: SynthesisInput): Promise<SynthesisResult> {
      const {
        material,
        answer,
        report: written,
      } = await leadReport(
        input,
        ({ results, parts }) =>
          synthesisPrompt({ question: input.question, results, parts, change: input.change }),
        'synthesis',
        'report',
      );
      const { parts, references } = material;
      const { title, summary, markdown } = written;
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
      const report = await putArtifact(store, body);
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
      const { material, answer, report } = await leadReport(
        input,
        ({ results, parts }) => summaryPrompt({ question: input.question, results, parts }),
        'synthesis of a part',
        'summary',
      );
      const { references } = material;
      const { title, summary, markdown } = report;
      const steps = [...references.keys()];
      const [notes, refs] = await Promise.all([
        putArtifact(store, neutraliseModelText(`**${title}.** ${summary}\n\n${markdown}`)),
        putArtifact(store, JSON.stringify(Object.fromEntries(references))),
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
  };
}
