/**
 * The audit export's fallback source: a task's event history, walked without a worker. It is what an
 * old task, or a task whose worker is gone, still has; and beside the task's own answers (the
 * `status` query, the workflow result) it is the independent record of what was delivered and run.
 *
 * One small handler per event type ({@link ON_EVENT}), one per completed activity type
 * ({@link ON_ACTIVITY_RESULT}), and one per local activity type ({@link ON_LOCAL_RESULT}: bookkeeping
 * since v18, whose marker holds its result but not its input). Payloads and failures are decoded
 * with the client's data converter (so with payload encryption on, they read as the worker wrote
 * them), through public SDK APIs only.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { arrayFromPayloads, type LoadedDataConverter, type Payload } from '@temporalio/common';
import type { google, temporal } from '@temporalio/proto';
import type { Activities, PublishResult } from '../contract/activities';
import type { ConfigSnapshot } from '../config/schema';
import type { ReportKind, SubtaskInput, SubtaskResult, TokenUsage } from '../contract/messages';
import { addAgentUsageInto } from '../contract/usage';
import { localActivityIn, runsOf } from '../client/history';
import type { HistoryFacts, StepRun } from './audit-record';

const STEP_CHILD = /\/step-([^/]+)(?:\/rev-\d+)?(?:\/attempt-\d+)?$/;

/** The step id a child workflow id belongs to (`<parent>/step-<id>[/rev-n][/attempt-n]`). */
export function stepOfChild(parentId: string, childId: string): string | undefined {
  if (!childId.startsWith(`${parentId}/`)) return undefined;
  return STEP_CHILD.exec(childId.slice(parentId.length))?.[1];
}

/** Reads what the event history holds about the task (every run of it); needs only the server. */
export async function readHistory(client: Client, handle: WorkflowHandle): Promise<HistoryFacts> {
  const events = (await runsOf(client, handle)).flat();
  const walk = new HistoryWalk(handle.workflowId, client.options.loadedDataConverter, events.length);
  for (const event of events) {
    const key = EVENT_KEYS.find((k) => event[k]);
    if (!key) continue;
    const at = event.eventTime ? timestampToIso(event.eventTime) : '';
    // Each handler takes its own event's attributes; TypeScript cannot pair a key with its handler here.
    const handler = ON_EVENT[key] as Handler<typeof key>;
    await handler(walk, event[key]!, { at, id: String(event.eventId), event });
  }
  return walk.facts;
}

// ---------------------------------------------------------------------------------------------------------
// The walk's state

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
type Failure = temporal.api.failure.v1.IFailure;

/** An activity the history scheduled, until it closes; a specialist's also has its step run. */
interface ScheduledActivity {
  type: string;
  input: unknown;
  run?: StepRun;
}

class HistoryWalk {
  readonly facts: HistoryFacts;
  /** By the event id of their scheduled / initiated / accepted event. */
  readonly activities = new Map<string, ScheduledActivity>();
  readonly children = new Map<string, StepRun>();
  readonly updates = new Map<string, HistoryFacts['updates'][number]>();

  constructor(
    readonly workflowId: string,
    private readonly converter: LoadedDataConverter,
    events: number,
  ) {
    this.facts = {
      events,
      input: null,
      config: null,
      plans: [],
      usage: { inputTokens: 0, outputTokens: 0, byAgent: {} },
      modelsAnswered: {},
      signals: [],
      updates: [],
      stepRuns: [],
      publications: [],
      close: null,
    };
  }

  /** The first value of a payload list, decoded as the worker encoded it (codecs run last to first). */
  async first(payloads: Payload[] | null | undefined): Promise<unknown> {
    if (!payloads?.length) return undefined;
    let decoded = payloads;
    for (const codec of [...this.converter.payloadCodecs].reverse()) decoded = await codec.decode(decoded);
    return arrayFromPayloads(this.converter.payloadConverter, decoded)[0];
  }

  /** A failure's message and its causes', joined by ": " (decoded: with encryption, messages are too). */
  async failureText(failure: Failure | null | undefined): Promise<string | null> {
    const parts: string[] = [];
    for (let cur = failure; cur; cur = cur.cause) {
      const encoded = cur.encodedAttributes
        ? ((await this.first([cur.encodedAttributes])) as { message?: string } | undefined)
        : undefined;
      parts.push(encoded?.message ?? cur.message ?? '');
    }
    return parts.length ? parts.join(': ') : null;
  }

  /** Counts a model call's (or a child's) usage for an agent, as the workflow sums it. */
  spent(agent: string, usage: TokenUsage | undefined): void {
    if (usage) addAgentUsageInto(this.facts.usage, agent, usage);
  }

  /** Notes the model name the API reported for an agent's call. */
  answered(agent: string, model: string | undefined): void {
    if (!model) return;
    const list = (this.facts.modelsAnswered[agent] ??= []);
    if (!list.includes(model)) list.push(model);
  }

  /** Starts a step run (a specialist activity or a child task) in the record. */
  startRun(
    run: Pick<StepRun, 'step' | 'agent' | 'question' | 'via' | 'childWorkflowId' | 'scheduledAt'>,
  ): StepRun {
    const started: StepRun = {
      ...run,
      closedAt: null,
      outcome: 'running',
      summary: null,
      sources: null,
      usage: null,
      model: null,
      error: null,
    };
    this.facts.stepRuns.push(started);
    return started;
  }
}

const timestampToIso = (ts: google.protobuf.ITimestamp): string =>
  new Date(Number(ts.seconds ?? 0) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6)).toISOString();

function configFacts(c: ConfigSnapshot): NonNullable<HistoryFacts['config']> {
  return {
    digest: c.digest,
    playbook: c.playbook.id,
    lead: c.lead.id,
    agents: [c.lead, ...Object.values(c.specialists)].map((a) => ({
      id: a.id,
      model: a.model,
      role: a.role,
    })),
    gates: c.gates,
    fixedPlan: c.playbook.fixedPlan ?? null,
  };
}

// ---------------------------------------------------------------------------------------------------------
// One handler per event type

type EventKey = Extract<keyof HistoryEvent, `${string}EventAttributes`>;
type Attributes<K extends EventKey> = NonNullable<HistoryEvent[K]>;
type Handler<K extends EventKey> = (
  walk: HistoryWalk,
  attributes: Attributes<K>,
  event: { at: string; id: string; event: HistoryEvent },
) => Promise<void> | void;

/** A closed activity's step run: how it ended and why. */
const activityClosed =
  (outcome: 'failed' | 'timed-out' | 'cancelled') =>
  async (
    walk: HistoryWalk,
    a: { scheduledEventId?: unknown; failure?: Failure | null },
    { at }: { at: string },
  ): Promise<void> => {
    const run = walk.activities.get(String(a.scheduledEventId))?.run;
    if (!run) return;
    Object.assign(run, { closedAt: at, outcome, error: (await walk.failureText(a.failure)) ?? outcome });
  };

/** A closed child task's step run: how it ended and why. */
const childClosed =
  (outcome: 'failed' | 'timed-out' | 'cancelled' | 'terminated') =>
  async (
    walk: HistoryWalk,
    a: { initiatedEventId?: unknown; failure?: Failure | null },
    { at }: { at: string },
  ): Promise<void> => {
    const run = walk.children.get(String(a.initiatedEventId));
    if (!run) return;
    Object.assign(run, { closedAt: at, outcome, error: (await walk.failureText(a.failure)) ?? outcome });
  };

/** How the run ended. */
const closed =
  (event: string, failure: string | null): Handler<EventKey> =>
  (walk, _a, { at }) => {
    walk.facts.close = { at, event, failure };
  };

const ON_EVENT: { [K in EventKey]?: Handler<K> } = {
  async workflowExecutionStartedEventAttributes(walk, a) {
    const input = (await walk.first(a.input?.payloads)) as
      (Partial<SubtaskInput> & { playbook?: unknown }) | undefined;
    // A run that continued from another says what the first said: the first run's input is the task's.
    if (walk.facts.input) return;
    const question = typeof input?.question === 'string' ? input.question : null;
    walk.facts.input = {
      question,
      // The workflow's default, as its input schema applies it; a child runs its parent's playbook.
      playbook:
        typeof input?.playbook === 'string'
          ? input.playbook
          : (input?.config?.playbook.id ?? (question !== null ? 'research-brief' : null)),
    };
    if (input?.config) walk.facts.config = configFacts(input.config);
  },

  async activityTaskScheduledEventAttributes(walk, a, { at, id }) {
    const type = a.activityType?.name ?? '';
    const entry: ScheduledActivity = { type, input: await walk.first(a.input?.payloads) };
    if (type === 'runSpecialist') {
      const { step } = entry.input as ActivityInput<'runSpecialist'>;
      entry.run = walk.startRun({
        step: step.id,
        agent: step.agent,
        question: step.question,
        via: 'activity',
        childWorkflowId: null,
        scheduledAt: at,
      });
    }
    walk.activities.set(id, entry);
  },

  async activityTaskCompletedEventAttributes(walk, a, { at }) {
    const entry = walk.activities.get(String(a.scheduledEventId));
    // The decoded input and result are what an activity of this type takes and returns.
    const onResult =
      entry && (ON_ACTIVITY_RESULT[entry.type as ActivityName] as ActivityResultHandler<ActivityName>);
    if (!entry || !onResult) return;
    const result = await walk.first(a.result?.payloads);
    onResult(
      walk,
      entry.input as ActivityInput<ActivityName>,
      result as ActivityResult<ActivityName>,
      at,
      entry.run,
    );
  },
  activityTaskFailedEventAttributes: activityClosed('failed'),
  activityTaskTimedOutEventAttributes: activityClosed('timed-out'),
  activityTaskCanceledEventAttributes: activityClosed('cancelled'),

  async startChildWorkflowExecutionInitiatedEventAttributes(walk, a, { at, id, event }) {
    const childId = a.workflowId ?? '';
    const input = (await walk.first(a.input?.payloads)) as Partial<SubtaskInput> | undefined;
    // A decomposed step's child is summarized "<step> · <agent>: <question>" ("<agent>: <question>"
    // before v3); a batch of a large plan "batch <n>: steps …", which names no agent.
    const summary = event.userMetadata?.summary ? await walk.first([event.userMetadata.summary]) : undefined;
    const head = typeof summary === 'string' && summary.includes(': ') ? summary.split(': ')[0]! : undefined;
    const agent = head === undefined || head.startsWith('batch ') ? null : head.split(' · ').at(-1)!;
    const run = walk.startRun({
      step: stepOfChild(walk.workflowId, childId) ?? childId,
      agent,
      question: typeof input?.question === 'string' ? input.question : null,
      via: 'child workflow',
      childWorkflowId: childId,
      scheduledAt: at,
    });
    walk.children.set(id, run);
  },
  startChildWorkflowExecutionFailedEventAttributes(walk, a, { at }) {
    const run = walk.children.get(String(a.initiatedEventId));
    if (run)
      Object.assign(run, { closedAt: at, outcome: 'failed', error: `could not start: ${String(a.cause)}` });
  },
  async childWorkflowExecutionCompletedEventAttributes(walk, a, { at }) {
    const run = walk.children.get(String(a.initiatedEventId));
    const r = (await walk.first(a.result?.payloads)) as SubtaskResult | undefined;
    for (const [agent, usage] of Object.entries(r?.usage.byAgent ?? {})) walk.spent(agent, usage);
    if (run && r) {
      Object.assign(run, {
        closedAt: at,
        outcome: 'completed',
        summary: r.summary,
        sources: r.sources,
        usage: { inputTokens: r.usage.inputTokens, outputTokens: r.usage.outputTokens },
      });
    }
  },
  childWorkflowExecutionFailedEventAttributes: childClosed('failed'),
  childWorkflowExecutionCanceledEventAttributes: childClosed('cancelled'),
  childWorkflowExecutionTimedOutEventAttributes: childClosed('timed-out'),
  childWorkflowExecutionTerminatedEventAttributes: childClosed('terminated'),

  async workflowExecutionSignaledEventAttributes(walk, a, { at }) {
    walk.facts.signals.push({
      at,
      name: a.signalName ?? '',
      payload: (await walk.first(a.input?.payloads)) ?? null,
      identity: a.identity || null,
    });
  },
  async workflowExecutionUpdateAcceptedEventAttributes(walk, a, { at }) {
    const request = a.acceptedRequest;
    const update = {
      at,
      name: request?.input?.name ?? '',
      updateId: request?.meta?.updateId ?? '',
      identity: request?.meta?.identity || null,
      request: (await walk.first(request?.input?.args?.payloads)) ?? null,
      result: null as unknown,
      failure: null as string | null,
    };
    walk.facts.updates.push(update);
    walk.updates.set(update.updateId, update);
  },
  async workflowExecutionUpdateCompletedEventAttributes(walk, a) {
    const update = walk.updates.get(a.meta?.updateId ?? '');
    if (!update) return;
    update.result = (await walk.first(a.outcome?.success?.payloads)) ?? null;
    update.failure = await walk.failureText(a.outcome?.failure);
  },

  async markerRecordedEventAttributes(walk, _a, { at, event }) {
    const local = await localActivityIn(event, (payloads) => walk.first(payloads));
    const onResult =
      local && (ON_LOCAL_RESULT[local.type as ActivityName] as LocalResultHandler<ActivityName>);
    if (!local?.result || !onResult) return;
    onResult(walk, (await walk.first(local.result)) as ActivityResult<ActivityName>, at);
  },

  workflowExecutionCompletedEventAttributes: closed('completed', null),
  async workflowExecutionFailedEventAttributes(walk, a, { at }) {
    walk.facts.close = { at, event: 'failed', failure: await walk.failureText(a.failure) };
  },
  workflowExecutionCanceledEventAttributes: closed('cancelled', 'the task was cancelled'),
  workflowExecutionTerminatedEventAttributes(walk, a, { at }) {
    walk.facts.close = { at, event: 'terminated', failure: `terminated${a.reason ? `: ${a.reason}` : ''}` };
  },
  workflowExecutionTimedOutEventAttributes: closed('timed-out', 'the task timed out'),
  workflowExecutionContinuedAsNewEventAttributes: closed('continued-as-new', null),
};

/** The event types the walk reads, in the order {@link ON_EVENT} lists them. */
const EVENT_KEYS = Object.keys(ON_EVENT) as EventKey[];

// ---------------------------------------------------------------------------------------------------------
// One handler per completed activity type

type ActivityName = keyof Activities;
type ActivityInput<K extends ActivityName> = Parameters<Activities[K]>[0];
type ActivityResult<K extends ActivityName> = Awaited<ReturnType<Activities[K]>>;
type ActivityResultHandler<K extends ActivityName> = (
  walk: HistoryWalk,
  input: ActivityInput<K>,
  result: ActivityResult<K>,
  at: string,
  run: StepRun | undefined,
) => void;

const ON_ACTIVITY_RESULT: { [K in ActivityName]?: ActivityResultHandler<K> } = {
  loadConfigSnapshot(walk, _playbook, snapshot) {
    walk.facts.config = configFacts(snapshot);
  },
  planTask(walk, input, r, at) {
    walk.spent(input.lead.id, r.usage);
    walk.answered(input.lead.id, r.model);
    walk.facts.plans.push({
      at,
      valid: r.valid,
      plan: r.valid ? r.plan : null,
      problems: r.valid ? null : r.problems,
      model: r.model ?? null,
      usage: r.usage ?? null,
    });
  },
  runSpecialist(walk, input, r, at, run) {
    walk.spent(input.agent.id, r.usage);
    walk.answered(input.agent.id, r.model);
    if (run) {
      Object.assign(run, {
        closedAt: at,
        outcome: 'completed',
        summary: r.summary,
        sources: r.sources,
        usage: r.usage,
        model: r.model ?? null,
      });
    }
  },
  synthesizeReport(walk, input, r) {
    walk.spent(input.lead.id, r.usage);
    walk.answered(input.lead.id, r.model);
  },
  publishReport(walk, input, r, at) {
    published(walk, input.kind ?? 'final', r, at);
  },
};

/** A report the task published, as its `publishReport` records it. */
const published = (walk: HistoryWalk, kind: ReportKind, r: PublishResult, at: string): void => {
  walk.facts.publications.push({ at, kind, path: r.path, contentHash: r.contentHash });
};

type LocalResultHandler<K extends ActivityName> = (
  walk: HistoryWalk,
  result: ActivityResult<K>,
  at: string,
) => void;

/** Bookkeeping run as local activities (v18): history holds their results, which say what the walk needs. */
const ON_LOCAL_RESULT: { [K in ActivityName]?: LocalResultHandler<K> } = {
  loadConfigSnapshot(walk, snapshot) {
    walk.facts.config = configFacts(snapshot);
  },
  publishReport(walk, r, at) {
    published(walk, r.kind ?? 'final', r, at);
  },
};
