/**
 * The stand-in model's default answers: plausible, deterministic output for any question.
 *
 * Keyed by the answer's name (the structured-output schema's title, or a forced tool's name), they
 * read the prompts Baton's activities send (simple regexes over the tagged user text) and fill the
 * answer. Everything written here says it comes from an
 * offline stand-in, and every source it invents is obviously not real (`Stand-in source:` titles,
 * `https://example.invalid/` URLs), so no stand-in output can be mistaken for research.
 */
import { withDocumentSources } from './documents';
import type { JsonSchema, MessagesRequestBody, StandInReply, StandInRequest } from './server';

/** Prefix of every summary the stand-in writes. */
export const STAND_IN_LABEL = '[offline stand-in model]';

/** The sentence every findings or report body carries. */
export const STAND_IN_NOTICE =
  "This text was written by Baton's offline stand-in model, not a real model: it contains no real research.";

/** Baton's answers, which the stand-in knows how to fill. */
const ANSWER_TOOLS = ['submit_plan', 'submit_findings', 'submit_report'];

/**
 * The answer the stand-in will give. With structured output (what Baton sends), the output schema's
 * `title`: Baton titles it with the answer's name (`submit_plan`, `submit_findings`,
 * `submit_report`); `structured_output` when untitled. Otherwise a tool call: the forced one for
 * `tool_choice: {type: "tool"}`; for `{type: "any"}`, an answer tool if offered, else the last
 * tool. Undefined when no answer is required.
 */
export function answerToolName(body: MessagesRequestBody): string | undefined {
  const format = body.output_config?.format;
  if (format) return typeof format.schema.title === 'string' ? format.schema.title : 'structured_output';
  const choice = body.tool_choice;
  if (choice?.type === 'tool') return choice.name;
  if (choice?.type !== 'any' || !body.tools?.length) return undefined;
  return (body.tools.find((t) => ANSWER_TOOLS.includes(t.name)) ?? body.tools[body.tools.length - 1])?.name;
}

/** The default reply to a request, by the tool to call: plan, findings, report, or a best effort from the schema. */
export function defaultReply(req: StandInRequest): StandInReply {
  const name = req.toolName;
  const schema =
    req.body.output_config?.format?.schema ?? req.body.tools?.find((t) => t.name === name)?.input_schema;
  if (name === undefined || schema === undefined) {
    return {
      kind: 'text',
      text: `${STAND_IN_LABEL} This is Baton's offline stand-in model, not a real model. You wrote: "${clip(req.userText, 200)}"`,
    };
  }
  switch (name) {
    case 'submit_plan':
      return { kind: 'tool', input: planInput(req.userText, schema) };
    case 'submit_findings':
      return { kind: 'tool', input: withDocumentSources(findingsInput(req.userText), req.body.messages) };
    case 'submit_report':
      return { kind: 'tool', input: reportInput(req.userText) };
    case 'submit_round':
      return { kind: 'tool', input: roundInput(req.userText, schema) };
    default:
      return { kind: 'tool', input: exampleFromSchema(schema, schema, name, 0) };
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reading the prompt

function unescapeXml(text: string): string {
  // Baton may escape text it puts between tags; undo the five standard entities (&amp; last).
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

/** `name="value"` pairs of a tag's attribute text. */
function attributes(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const m of text.matchAll(/([\w-]+)\s*=\s*"([^"]*)"/g)) result[m[1]!] = unescapeXml(m[2]!);
  return result;
}

interface Tagged {
  attrs: Record<string, string>;
  content: string;
}

/** Every `<tag ...>content</tag>` in the text, in order. */
function allTags(text: string, tag: string): Tagged[] {
  const pattern = new RegExp(`<${tag}\\b([^>]*)>([\\s\\S]*?)</${tag}\\s*>`, 'g');
  return [...text.matchAll(pattern)].map((m) => ({
    // Both groups are non-optional, so they are always captured (possibly as "").
    attrs: attributes(m[1]!),
    content: unescapeXml(m[2]!.trim()),
  }));
}

function firstTag(text: string, tag: string): Tagged | undefined {
  return allTags(text, tag)[0];
}

/** The text with every `<tag ...>...</tag>` block removed: keeps untrusted context from posing as the prompt. */
function withoutBlocks(text: string, tag: string): string {
  return text.replace(new RegExp(`<${tag}\\b[^>]*>[\\s\\S]*?</${tag}\\s*>`, 'g'), '');
}

/** One line, at most `max` characters. */
function clip(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, max - 1).trimEnd()}…`;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

// ---------------------------------------------------------------------------------------------------------
// Searching a JSON schema

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `Array.isArray` typed `unknown[]` rather than `any[]`. */
function isArray(value: unknown): value is unknown[] {
  return Array.isArray(value);
}

/** Resolves a local `$ref` such as `#/$defs/Step` against the root schema. */
function resolveRef(root: JsonSchema, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = root;
  for (const part of ref.slice(2).split('/')) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    node = isRecord(node) ? node[key] : undefined;
  }
  return node;
}

/** Calls `visit` on every object in the schema tree, following local `$ref`s, each object once. */
function walk(root: JsonSchema, start: unknown, visit: (node: Record<string, unknown>) => void): void {
  const seen = new Set<unknown>();
  const stack: unknown[] = [start];
  while (stack.length > 0) {
    const node = stack.pop();
    if (seen.has(node)) continue;
    seen.add(node);
    if (isArray(node)) stack.push(...node);
    if (!isRecord(node)) continue;
    visit(node);
    if (typeof node.$ref === 'string') stack.push(resolveRef(root, node.$ref));
    stack.push(...Object.values(node));
  }
}

/**
 * Finds a keyword under a named property anywhere in the schema, however it is wrapped
 * (`anyOf`, `$defs` + `$ref`, nesting): e.g. the `enum` under `agent` or the `maxItems` under `steps`.
 */
function findUnderProperty<T>(
  root: JsonSchema,
  property: string,
  pick: (node: Record<string, unknown>) => T | undefined,
): T | undefined {
  let found: T | undefined;
  walk(root, root, (node) => {
    const props = node.properties;
    if (found !== undefined || !isRecord(props) || props[property] === undefined) return;
    walk(root, props[property], (inner) => {
      found ??= pick(inner);
    });
  });
  return found;
}

/** A value that fits the schema: the first enum value, one array element, every object property. */
function exampleFromSchema(root: JsonSchema, schema: unknown, name: string, depth: number): unknown {
  if (!isRecord(schema) || depth > 8) return null;
  if (typeof schema.$ref === 'string')
    return exampleFromSchema(root, resolveRef(root, schema.$ref), name, depth + 1);
  if ('const' in schema) return schema.const;
  if (isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  if (schema.default !== undefined) return schema.default;
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    const options = schema[key];
    if (isArray(options)) {
      const usable = options.find((o) => !(isRecord(o) && o.type === 'null')) ?? options[0];
      return exampleFromSchema(root, usable, name, depth + 1);
    }
  }
  const type = isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  switch (type) {
    case 'string':
      return schema.format === 'uri' || /url|uri/i.test(name)
        ? `https://example.invalid/standin/${encodeURIComponent(name)}`
        : `${STAND_IN_LABEL} ${name}`;
    case 'integer':
    case 'number':
      return typeof schema.minimum === 'number' ? schema.minimum : 1;
    case 'boolean':
      return false;
    case 'array':
      return schema.maxItems === 0 ? [] : [exampleFromSchema(root, schema.items, name, depth + 1)];
    case 'null':
      return null;
    default: {
      // An object, or a schema that names no type but has properties.
      const props = isRecord(schema.properties) ? schema.properties : {};
      return Object.fromEntries(
        Object.entries(props).map(([key, sub]) => [key, exampleFromSchema(root, sub, key, depth + 1)]),
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Planning (submit_plan)

interface PlanStepInput {
  id: string;
  agent: string;
  question: string;
  dependsOn: string[];
  decompose: boolean;
}

type Role = 'gather' | 'analyse' | 'verify' | 'write';

const ROLE_PATTERNS: Record<Role, RegExp> = {
  gather: /research|source|search|gather/i,
  analyse: /analy/i,
  verify: /fact|check|verif/i,
  write: /writ|edit/i,
};

const GATHER_ANGLES = [
  'background, definitions and key facts',
  'recent evidence and data',
  'differing viewpoints and open questions',
];

type Effort = { kind: 'fact' } | { kind: 'comparison'; items: string[] } | { kind: 'focused' };

/**
 * How big a question is, by its wording: a short "what/who/when/where is" question is a simple
 * fact; a comparison naming four or more things is broad (each thing gets its own step).
 */
export function effortFor(question: string): Effort {
  const q = question.trim();
  const comparing = /\b(compare|comparison|versus|vs\.?|differ|trade-?offs?)\b/i.test(q);
  const open = /\b(impacts?|effects?|why|how|should|best|pros|cons|future|trends?|causes?|risks?)\b/i.test(q);
  if (
    !comparing &&
    !open &&
    q.length <= 100 &&
    /^(what|who|when|where|which)\s+(is|was|are|were)\b/i.test(q)
  ) {
    return { kind: 'fact' };
  }
  if (comparing) {
    // The things compared: the list after "compare"/"of"/"between", split on commas, "and", "vs".
    const list = /\b(?:compare|comparison of|between|of)\s+(?:the\s+)?(.+)$/i.exec(q)?.[1] ?? q;
    const items = list
      .replace(/[?.!]+$/, '')
      .replace(/\s+(?:on|in|for|across|by)\s+.*$/i, '')
      .split(/\s*,\s*(?:and\s+)?|\s+(?:and|vs\.?|versus|with)\s+/i)
      .map((i) => i.trim())
      .filter(Boolean);
    if (items.length >= 4) return { kind: 'comparison', items };
  }
  return { kind: 'focused' };
}

function planInput(userText: string, schema: JsonSchema): { rationale: string; steps: PlanStepInput[] } {
  const prompt = withoutBlocks(userText, 'validation_errors');
  const question = clip(firstTag(prompt, 'question')?.content ?? userText, 400) || 'the question';
  const limits = attributes(/<limits\b([^>]*)>/.exec(prompt)?.[1] ?? '');
  const depth = Number(limits.depth ?? 0);
  const maxDepth = Number(limits.max_depth ?? 0);
  const described = allTags(firstTag(prompt, 'agents')?.content ?? '', 'agent').flatMap((a) =>
    a.attrs.id ? [{ id: a.attrs.id, description: a.content }] : [],
  );

  // The schema's enum is what Baton will accept; the <agents> list only adds descriptions.
  const enumIds = findUnderProperty(schema, 'agent', (n) =>
    isArray(n.enum) && n.enum.every((v) => typeof v === 'string') ? n.enum : undefined,
  );
  const allowed =
    enumIds && enumIds.length > 0
      ? enumIds
      : described.length > 0
        ? described.map((a) => a.id)
        : ['researcher'];
  const descriptions = new Map(described.map((a) => [a.id, a.description]));
  /** The first agent fitting one of the roles, in order of preference; round-robin when none fits. */
  const pick = (roles: Role[], position: number): string => {
    for (const role of roles) {
      // An id match beats a description match: a researcher's description may well mention "the analyst".
      const match =
        allowed.find((id) => ROLE_PATTERNS[role].test(id)) ??
        allowed.find((id) => ROLE_PATTERNS[role].test(descriptions.get(id) ?? ''));
      if (match !== undefined) return match;
    }
    // `allowed` is never empty, so the fallback is never used.
    return allowed[position % allowed.length] ?? 'researcher';
  };

  const schemaMax = findUnderProperty(schema, 'steps', (n) =>
    typeof n.maxItems === 'number' ? n.maxItems : undefined,
  );
  const limitMax = limits.max_steps === undefined ? undefined : Number(limits.max_steps);
  const candidates = [schemaMax, limitMax].filter((v): v is number => v !== undefined && Number.isFinite(v));
  const maxSteps = Math.max(1, Math.floor(candidates.length > 0 ? Math.min(...candidates) : 5));

  // Effort scaling, as the lead's effortRule in config/agents.yaml asks: one step for a simple
  // fact; one gathering step per thing compared in a broad comparison; otherwise a focused shape.
  // Always within the limits: gathering steps in parallel, then analysis on all of them, then
  // verification.
  const effort = effortFor(question);
  const compared = effort.kind === 'comparison' ? effort.items.slice(0, Math.max(1, maxSteps - 2)) : [];
  const size = effort.kind === 'fact' ? 1 : Math.min(maxSteps, compared.length ? compared.length + 2 : 5);
  const gatherCount = compared.length || (size >= 5 ? 3 : size >= 3 ? 2 : 1);
  const steps: PlanStepInput[] = [];
  for (let i = 0; i < gatherCount; i++) {
    const item = compared[i];
    steps.push({
      id: `s${i + 1}`,
      agent: pick(['gather'], i),
      question:
        effort.kind === 'fact'
          ? `Find the answer to "${question}", with its source.`
          : item !== undefined
            ? `Gather evidence on ${item} for "${question}".`
            : `Gather evidence on "${question}": ${GATHER_ANGLES[i]}.`,
      dependsOn: [],
      decompose: i === 0 && depth < maxDepth && effort.kind === 'focused',
    });
  }
  const gatherIds = steps.map((s) => s.id);
  if (size >= 2) {
    steps.push({
      id: `s${steps.length + 1}`,
      agent: pick(['analyse'], steps.length),
      question: `Compare and analyse the findings of ${gatherIds.join(', ')} on "${question}": where do they agree, where do they differ?`,
      dependsOn: gatherIds,
      decompose: false,
    });
  }
  const analysis = steps.at(-1)?.id;
  if (size >= 4 && analysis !== undefined) {
    steps.push({
      id: `s${steps.length + 1}`,
      agent: pick(['verify'], steps.length),
      question: `Check the claims of the analysis (${analysis}) on "${question}" against the gathered sources; flag anything unsupported.`,
      dependsOn: [analysis],
      decompose: false,
    });
  }

  const changes = allTags(prompt, 'change_request');
  const change = changes[changes.length - 1];
  let rationale =
    `${STAND_IN_LABEL} ${effort.kind === 'fact' ? 'A simple fact: ' : effort.kind === 'comparison' ? `A broad comparison of ${compared.length} things: ` : ''}${gatherCount} independent gathering step(s) run in parallel` +
    (size >= 2 ? ', then an analysis step compares them' : '') +
    (size >= 4 ? ', then a verification step checks the analysis' : '') +
    ". This plan is a fixed template, not a real model's reasoning.";
  if (/<validation_errors\b/.test(userText)) {
    rationale += ' Revised after the previous plan failed validation.';
  }

  if (change) {
    // Only the latest change request is acted on; it is quoted verbatim (within the step's 2000 characters).
    const by = change.attrs.by ?? 'a reviewer';
    const comment = change.content.length > 1500 ? `${change.content.slice(0, 1499)}…` : change.content;
    if (steps.length >= maxSteps) steps.pop();
    // It comes last: it depends on every step that nothing else depends on, so it sees all the results.
    const sinks = steps
      .filter((s) => !steps.some((other) => other.dependsOn.includes(s.id)))
      .map((s) => s.id);
    steps.push({
      id: `s${steps.length + 1}`,
      agent: pick(['write', 'analyse'], steps.length),
      question: `Address the change request from ${clip(by, 100)}: "${comment}" (overall question: "${clip(question, 200)}")`,
      dependsOn: sinks,
      decompose: false,
    });
    rationale += ` A final step addresses the change request from ${clip(by, 100)}: "${clip(change.content, 1000)}".`;
  }
  return { rationale, steps };
}

// ---------------------------------------------------------------------------------------------------------
// Specialist steps (submit_findings)

interface StepResult {
  id: string;
  agent: string;
  content: string;
}

function stepResults(text: string): StepResult[] {
  return allTags(text, 'step_result').flatMap((r) =>
    r.attrs.id ? [{ id: r.attrs.id, agent: r.attrs.agent ?? 'unknown', content: r.content }] : [],
  );
}

/** Safe for a URL path segment whatever the (untrusted) id contains. */
function slug(text: string): string {
  return (
    text
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 40) || 'x'
  );
}

function findingsInput(userText: string): {
  summary: string;
  findings: string;
  sources: Array<{ title: string; url: string }>;
} {
  const context = stepResults(userText);
  const prompt = withoutBlocks(userText, 'context');
  // Only the opening tag is read: whether <task> wraps the rest or stands alone does not matter.
  const taskAttrs = attributes(/<task\b([^>]*)>/.exec(prompt)?.[1] ?? '');
  const step = taskAttrs.step ?? 'step';
  const agent = taskAttrs.agent ?? 'specialist';
  const question = clip(firstTag(prompt, 'question')?.content ?? userText, 300) || 'the question';
  const overall = firstTag(prompt, 'overall_question')?.content;
  const builtOn = unique(context.map((r) => r.id));

  const paragraphs = [
    STAND_IN_NOTICE,
    `**Question (step ${step}, ${agent}).** ${question}`,
    overall ? `This step serves the overall question: "${clip(overall, 300)}".` : '',
    builtOn.length > 0
      ? `It builds on the results of earlier steps ${builtOn.map((id) => `\`${id}\``).join(', ')}, taken as given.`
      : 'No earlier step results were provided; it starts from scratch.',
    '- Placeholder observation one, attributed to the first stand-in source.\n' +
      '- Placeholder observation two, attributed to the second stand-in source.\n' +
      '- A real model would weigh the evidence here; the stand-in only shows the shape of the output.',
  ];
  const base = `https://example.invalid/standin/${slug(step)}`;
  return {
    summary: clip(`${STAND_IN_LABEL} Placeholder findings for step ${step} (${agent}): ${question}`, 300),
    findings: paragraphs.filter((p) => p !== '').join('\n\n'),
    sources: [
      { title: `Stand-in source: overview of ${clip(question, 80)}`, url: `${base}/overview` },
      { title: `Stand-in source: data on ${clip(question, 80)}`, url: `${base}/data` },
    ],
  };
}

// ---------------------------------------------------------------------------------------------------------
// Synthesis (submit_report)

function reportInput(userText: string): { title: string; summary: string; markdown: string } {
  const results = stepResults(userText);
  const prompt = withoutBlocks(withoutBlocks(userText, 'step_results'), 'step_result');
  const question = clip(firstTag(prompt, 'question')?.content ?? 'the question', 500);
  const changes = allTags(prompt, 'change_request');

  const ids = unique(results.map((r) => r.id));
  const sections = results.map(
    (r) => `### Step ${r.id} (${r.agent})\n\n${clip(r.content, 300) || '(empty result)'} [step:${r.id}]`,
  );
  const parts = [
    STAND_IN_NOTICE,
    `## Question\n\n${question}`,
    `## Findings by step\n\n${sections.length > 0 ? sections.join('\n\n') : 'No step results were provided.'}`,
    `## Conclusion\n\n${
      ids.length > 0
        ? `Taken together, ${ids.map((id) => `[step:${id}]`).join(', ')} would answer the question; a real model would reconcile them here.`
        : 'There is nothing to conclude from.'
    }`,
  ];
  if (changes.length > 0) {
    const quoted = changes.map(
      (c) => `${c.content.replace(/^/gm, '> ')}\n>\n> — ${c.attrs.by ?? 'a reviewer'}`,
    );
    parts.push(
      `## Changes requested\n\n${quoted.join('\n\n')}\n\nThe stand-in notes the request; a real model would act on it.`,
    );
  }
  return {
    title: `Stand-in report: ${clip(question, 80)}`,
    summary: clip(
      `${STAND_IN_LABEL} Placeholder synthesis of ${ids.length} step result(s) for: ${question}`,
      300,
    ),
    markdown: parts.join('\n\n'),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Research rounds (submit_round)

/** What a finding says to make the stand-in lead ask for another round: a gap in it. */
export const GAP_MARKER = '[gap]';

/**
 * The lead's review of a round: done, unless a step's findings mention {@link GAP_MARKER} and no
 * step depends on that one yet; then one new step per such gap (as many as `max_new_steps` allows),
 * each depending on the step that found it, for a gathering agent the schema allows.
 */
function roundInput(
  userText: string,
  schema: JsonSchema,
): { done: boolean; reason: string; steps: PlanStepInput[] } {
  const prompt = withoutBlocks(userText, 'validation_errors');
  const limits = attributes(/<limits\b([^>]*)>/.exec(prompt)?.[1] ?? '');
  const round = Number(limits.round ?? 2);
  const room = Math.max(0, Number(limits.max_new_steps ?? 1));
  const question = clip(firstTag(prompt, 'question')?.content ?? 'the question', 300);
  const steps = allTags(prompt, 'step').map((t) => ({
    id: t.attrs.id ?? '',
    dependsOn: (t.attrs.depends_on ?? '').split(/\s+/).filter(Boolean),
    gap: t.content.includes(GAP_MARKER),
  }));
  const open = steps.filter((s) => s.gap && !steps.some((o) => o.dependsOn.includes(s.id))).slice(0, room);
  if (!open.length)
    return {
      done: true,
      reason: `${STAND_IN_LABEL} The findings cover the question: no step reports an open gap (${GAP_MARKER}), so no further round is needed.`,
      steps: [],
    };
  const agents =
    findUnderProperty(schema, 'agent', (n) =>
      isArray(n.enum) && n.enum.every((v) => typeof v === 'string') ? n.enum : undefined,
    ) ?? [];
  const agent = agents.find((id) => ROLE_PATTERNS.gather.test(id)) ?? agents[0] ?? 'researcher';
  return {
    done: false,
    reason: `${STAND_IN_LABEL} Step(s) ${open.map((s) => s.id).join(', ')} report a gap (${GAP_MARKER}): round ${round} fills it.`,
    steps: open.map((s, i) => ({
      id: `r${round}-${i + 1}`,
      agent,
      question: `Fill the gap step ${s.id} reported for "${question}".`,
      dependsOn: [s.id],
      decompose: false,
    })),
  };
}
