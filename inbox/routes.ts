/**
 * The inbox's pages: the pending list, a task, and a decision. Statuses, pending lists and
 * decisions go through the approvals client (client/); each live region is polled with a digest of
 * what it shows and answered 204 while that holds.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { createHash } from 'node:crypto';
import type { Context, Hono } from 'hono';
import { LRUCache } from 'lru-cache';
import { getArtifact } from '../activities/artifacts';
import { readDraft, readPublished } from '../activities/report';
import type { Stores } from '../activities/store';
import {
  decideTask,
  listPending,
  planDelta,
  previousOf,
  queryStatus,
  queryTaskTree,
  textDiff,
  versionsOf,
  type DecisionOutcome,
} from '../client';
import { liveWordsIn } from '../client/live';
import type { LiveWords } from '../contract/live';
import { BATON_AWAITING, BATON_PENDING_GATE, BATON_PHASE, type TaskStatus } from '../contract/messages';
import { safeText } from '../contract/text';
import { carriesAssertion, passkeyRequest, requestFromForm } from './passkeys';
import { pendingFragment, pendingPage, type PendingRow } from './pending-page';
import type { Env } from './session';
import { taskLive, type LiveByWorkflow } from './task-live';
import {
  decisionPanel,
  decisionResult,
  taskPage,
  type Changes,
  type Draft,
  type TaskView,
} from './task-page';
import {
  clearDecisionResult,
  FINAL_PHASES,
  html,
  live,
  messagePage,
  pollUrl,
  type Html,
  type Viewer,
} from './views';

export interface RouteOptions {
  client: Client;
  /** The workers' store, where drafts are read. */
  stores: Stores;
  /** How often live regions refresh. */
  refreshMs: number;
  /** How long to wait for a task's worker to answer a query or an Update. */
  workerTimeoutMs: number;
  log: (line: string) => void;
}

const MAX_LISTED = 100;
const MAX_DRAFT_CHARS = 512 * 1024;

/** A text read through the store, cut at {@link MAX_DRAFT_CHARS}. */
const bounded = (text: string): string =>
  text.length > MAX_DRAFT_CHARS
    ? `${text.slice(0, MAX_DRAFT_CHARS)}\n\n[… cut at ${MAX_DRAFT_CHARS} characters]`
    : text;

/** A short digest of rendered HTML: a live region's poll carries it, and gets 204 while it holds. */
const digest = async (content: Html): Promise<string> =>
  createHash('sha256')
    .update((await content).toString())
    .digest('base64url')
    .slice(0, 16);

/** Which gate a decision panel shows (and since when): a new one clears the last decision's answer. */
const gateKey = (status: TaskStatus): string =>
  status.pendingGate ? `${status.pendingGate.gate}@${status.pendingGate.since}` : '';

/**
 * The draft approvers read at the report gate, through the workers' store, or why it cannot be read
 * (then it cannot be approved here: ./task-page.ts).
 */
async function draftOf(stores: Stores, status: TaskStatus): Promise<Draft | undefined> {
  if (status.pendingGate?.gate !== 'report' || !status.report) return undefined;
  try {
    return { text: bounded(await readDraft(stores, status.report)) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** The published report of a finished task, through the store, or why it cannot be read. */
async function publishedOf(stores: Stores, status: TaskStatus): Promise<Draft | undefined> {
  if (!status.report?.path || !FINAL_PHASES.includes(status.phase)) return undefined;
  return readPublished(stores.reports, status.report.path).then(
    (text) => ({ text: bounded(text) }),
    (err: Error) => ({ error: err.message }),
  );
}

/**
 * What changed at a gate that re-opened after a request for changes, against the version it showed
 * before (client/drafts.ts reads them from the task's history); cached by the version shown, so a
 * panel refreshing itself reads the history once per version.
 */
function changeFinder(client: Client, stores: Stores): (status: TaskStatus) => Promise<Changes | undefined> {
  const cache = new LRUCache<string, Changes | 'none'>({ max: 200 });
  const find = async (status: TaskStatus): Promise<Changes | undefined> => {
    const gate = status.pendingGate?.gate;
    if (!gate || gate === 'tool' || !status.revisions[gate]) return undefined;
    const { drafts, plans } = await versionsOf(client, status.workflowId);
    if (gate === 'report' && status.report) {
      const previous = previousOf(drafts, status.report.artifact, (a, b) => a.id === b.id);
      if (!previous) return undefined;
      const [before, after] = await Promise.all(
        [previous, status.report.artifact].map((ref) => getArtifact(stores.artifacts, ref.id)),
      );
      return { draft: textDiff(bounded(before!), bounded(after!)) };
    }
    if (gate === 'plan' && status.plan) {
      const same = (a: object, b: object) => JSON.stringify(a) === JSON.stringify(b);
      const previous = previousOf(plans, status.plan, same);
      return previous ? { plan: planDelta(previous, status.plan) } : undefined;
    }
    return undefined;
  };
  return async (status) => {
    const gate = status.pendingGate?.gate;
    const shown = gate === 'report' ? status.report?.artifact.id : JSON.stringify(status.plan ?? null);
    const key = `${status.workflowId}\n${gate}\n${gate === 'tool' ? 0 : status.revisions[gate ?? 'plan']}\n${shown}`;
    const cached = cache.get(key);
    if (cached) return cached === 'none' ? undefined : cached;
    const changes = await find(status).catch((err: Error): Changes => ({ error: err.message }));
    // An error is not kept: the next refresh tries again.
    if (!changes || !('error' in changes)) cache.set(key, changes ?? 'none');
    return changes;
  };
}

/** How long the live words of a workflow's calls in flight are kept for the pages asking: a second. */
const LIVE_WORDS_TTL_MS = 1000;

/**
 * The live words of the model calls in flight (client/live.ts) in a task and its open children,
 * by workflow id: read from the server (a `describe` each), at most once a second per workflow
 * however many pages ask. None for a task that has ended.
 */
function liveWordsFinder(client: Client): (view: TaskView) => Promise<LiveByWorkflow> {
  const cache = new LRUCache<string, LiveWords[]>({ max: 1000, ttl: LIVE_WORDS_TTL_MS });
  const read = async (workflowId: string): Promise<[string, LiveWords[]]> => {
    const words = cache.get(workflowId) ?? (await liveWordsIn(client, [workflowId]));
    if (!cache.has(workflowId)) cache.set(workflowId, words);
    return [workflowId, words];
  };
  return async ({ status, children }) => {
    if (FINAL_PHASES.includes(status.phase)) return new Map();
    const open = [...children].filter(([, c]) => 'phase' in c && !FINAL_PHASES.includes(c.phase));
    return new Map(await Promise.all([status.workflowId, ...open.map(([id]) => id)].map(read)));
  };
}

/** Adds the pending list, the task page, its live regions and the decision route to `app`. */
export function useRoutes(app: Hono<Env>, options: RouteOptions): void {
  const { client, refreshMs, workerTimeoutMs, log } = options;
  const changesOf = changeFinder(client, options.stores);
  const liveWordsOf = liveWordsFinder(client);

  // ---------------------------------------------------------------------------------------------------------
  // The pending list

  async function pendingRows(viewer: Viewer, all: boolean): Promise<PendingRow[]> {
    const tasks = (await listPending(client, all ? undefined : viewer.approver)).slice(0, MAX_LISTED);
    // The question and the approvals so far come from each task's status; a task whose worker does
    // not answer quickly is still listed, by id.
    return Promise.all(
      tasks.map(async (t): Promise<PendingRow> => {
        const attrs = t.typedSearchAttributes;
        const status = await queryStatus(client, t.workflowId, Math.min(workerTimeoutMs, 3000)).catch(
          () => undefined,
        );
        return {
          workflowId: t.workflowId,
          gate: attrs.get(BATON_PENDING_GATE) ?? '?',
          awaiting: attrs.get(BATON_AWAITING) ?? [],
          startTime: t.startTime,
          phase: attrs.get(BATON_PHASE),
          status,
        };
      }),
    );
  }

  async function pendingRegion(
    c: Context<Env>,
    all: boolean,
  ): Promise<{ content: Html; poll: string; v: string }> {
    const content = pendingFragment(await pendingRows(c.get('viewer'), all), all, c.get('viewer'));
    const v = await digest(content);
    return { content, poll: pollUrl('/pending', { all: all ? '1' : '0', v }), v };
  }

  app.get('/', async (c) => {
    const all = c.req.query('all') === '1';
    const { content, poll } = await pendingRegion(c, all);
    return c.html(pendingPage(content, all, c.get('viewer'), poll, refreshMs));
  });
  app.get('/pending', async (c) => {
    const { content, poll, v } = await pendingRegion(c, c.req.query('all') === '1');
    if (v === c.req.query('v')) return c.body(null, 204);
    return c.html(live('pending', poll, refreshMs, content));
  });

  // ---------------------------------------------------------------------------------------------------------
  // A task

  const query = (workflowId: string): Promise<TaskStatus> => queryStatus(client, workflowId, workerTimeoutMs);

  /** The task's status and, for its decomposed steps, their child tasks', level by level. */
  const taskView = (workflowId: string): Promise<TaskView> =>
    queryTaskTree(client, workflowId, workerTimeoutMs);

  async function decisionRegion(status: TaskStatus, viewer: Viewer): Promise<{ region: Html; v: string }> {
    const [draft, changes] = await Promise.all([draftOf(options.stores, status), changesOf(status)]);
    const content = decisionPanel(status, viewer, draft, changes);
    const v = await digest(content);
    const final = FINAL_PHASES.includes(status.phase);
    const poll = final
      ? undefined
      : pollUrl('/task/decision', { id: status.workflowId, g: gateKey(status), v });
    return { region: live('decision', poll, refreshMs, content), v };
  }

  async function liveRegion(view: TaskView): Promise<{ region: Html; v: string }> {
    const [published, words] = await Promise.all([
      publishedOf(options.stores, view.status),
      liveWordsOf(view),
    ]);
    const content = taskLive(view, published, words);
    const v = await digest(content);
    const final = FINAL_PHASES.includes(view.status.phase);
    const poll = final ? undefined : pollUrl('/task/live', { id: view.status.workflowId, v });
    return { region: live('live', poll, refreshMs, content), v };
  }

  async function renderTask(
    c: Context<Env>,
    workflowId: string,
    result?: DecisionOutcome,
  ): Promise<Response> {
    const viewer = c.get('viewer');
    let view: TaskView;
    try {
      view = await taskView(workflowId);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        return c.html(
          messagePage(
            'No such task',
            `There is no task with workflow id "${workflowId}" on this namespace.`,
            viewer,
          ),
          404,
        );
      }
      throw err;
    }
    const decision = await decisionRegion(view.status, viewer);
    const liveView = await liveRegion(view);
    return c.html(taskPage(view.status, viewer, decision.region, liveView.region, result));
  }

  const workflowIdOf = (c: Context<Env>): string | undefined => {
    const id = c.req.query('id');
    return id && id.length <= 1000 ? id : undefined;
  };

  app.get('/task', async (c) => {
    const id = workflowIdOf(c);
    if (!id) return c.redirect('/', 303);
    return renderTask(c, id);
  });

  app.get('/task/decision', async (c) => {
    const id = workflowIdOf(c);
    if (!id) return c.body(null, 400);
    const status = await query(id);
    const { region, v } = await decisionRegion(status, c.get('viewer'));
    if (v === c.req.query('v')) return c.body(null, 204);
    const opened = status.pendingGate !== undefined && gateKey(status) !== c.req.query('g');
    return c.html(opened ? html`${region}${clearDecisionResult()}` : region);
  });

  app.get('/task/live', async (c) => {
    const id = workflowIdOf(c);
    if (!id) return c.body(null, 400);
    const { region, v } = await liveRegion(await taskView(id));
    return v === c.req.query('v') ? c.body(null, 204) : c.html(region);
  });

  app.post('/task/decide', async (c) => {
    const viewer = c.get('viewer');
    const body = await c.req.parseBody({ all: true });
    // A passkey's assertion comes with the statement it signed (./passkey.js); otherwise the form.
    const form = carriesAssertion(body) ? passkeyRequest(body, viewer) : requestFromForm(body, viewer);
    if (!form) return c.html(messagePage('Bad request', 'The decision form was incomplete.', viewer), 400);
    if ('error' in form) {
      const refused: DecisionOutcome = { accepted: false, reason: `not sent: ${form.error}` };
      return c.html(decisionResult(refused), 400);
    }
    const { id, request } = form;
    let outcome: DecisionOutcome;
    try {
      outcome = await decideTask(client, id, request, workerTimeoutMs);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      outcome = { accepted: false, reason: `there is no task with workflow id "${id}"` };
    }
    log(
      safeText(
        `inbox: ${viewer.approver} ${request.decision} ${request.gate ?? ''}${request.signature ? ' with a passkey' : ''} on ${id}: ${outcome.accepted ? outcome.result.outcome : `refused (${outcome.reason})`}`,
      ),
    );
    if (c.req.header('HX-Request')) {
      // The live regions refresh at once rather than at their next tick.
      return c.html(decisionResult(outcome), 200, { 'HX-Trigger': 'baton-refresh' });
    }
    return renderTask(c, id, outcome);
  });
}
