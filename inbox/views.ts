/**
 * The inbox's pages, rendered on the server as HTML with Hono's `html` template tag: every value
 * interpolated is escaped, so text from models (summaries, sources, reports) and from people
 * (comments) stays text. Pico CSS styles the plain elements; htmx attributes keep the live parts
 * current. Nothing here does I/O: the routes in ./app.ts fetch, these functions render.
 */
import { html } from 'hono/html';
import { dependencyOrder, formatDecideResult, who, type DecisionOutcome } from '../cli/baton';
import type { PlanStep } from '../config/schema';
import type { AuditEntry, PendingGate, Phase, StepStatus, TaskStatus } from '../contract/messages';

export type Html = ReturnType<typeof html>;

/** What every page needs to know about the person looking at it. */
export interface Viewer {
  approver: string;
  /** Display name from config/approvers.yaml, when listed there. */
  name?: string;
  /** Sent with every form; checked on every POST. */
  csrf: string;
  /** Token sign-in (a sign-out button) or a proxy's header (the proxy signs people out). */
  via: 'token' | 'proxy';
}

/** Phases after which nothing changes any more: pages stop refreshing. */
export const FINAL_PHASES: readonly Phase[] = ['completed', 'rejected', 'cancelled', 'failed'];

export const taskUrl = (workflowId: string): string =>
  `/task?${new URLSearchParams({ id: workflowId }).toString()}`;

const fragmentUrl = (route: string, params: Record<string, string>): string =>
  `${route}?${new URLSearchParams(params).toString()}`;

/** `2026-11-24T10:00:00.000Z` as `2026-11-24 10:00:00 UTC`, in a `<time>` element. */
function time(iso: string | undefined): Html {
  if (!iso) return html``;
  const shown = iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC');
  return html`<time datetime="${iso}">${shown}</time>`;
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

const number = (n: number): string => n.toLocaleString('en-US');

/** A state or phase as a small labelled badge. */
const badge = (kind: string, text: string): Html => html`<span class="badge badge-${kind}">${text}</span>`;

const phaseBadge = (phase: Phase): Html => {
  const kind = FINAL_PHASES.includes(phase)
    ? phase === 'completed'
      ? 'done'
      : 'failed'
    : phase.startsWith('awaiting')
      ? 'waiting'
      : 'running';
  return badge(kind, phase);
};

/** Only http(s) links are links: a model-written `javascript:` URL stays text. */
function sourceLink(source: { title: string; url?: string }): Html {
  const url = source.url && /^https?:\/\//i.test(source.url) ? source.url : undefined;
  return url
    ? html`<a href="${url}" rel="noopener noreferrer nofollow" target="_blank">${source.title}</a>`
    : html`${source.title}${source.url ? html` <small>(${source.url})</small>` : ''}`;
}

// ---------------------------------------------------------------------------------------------------------
// Layout

export function layout(title: string, viewer: Viewer | undefined, body: Html): Html {
  const signedIn = viewer?.name
    ? html`<strong>${viewer.name}</strong> <small>${viewer.approver}</small>`
    : html`<strong>${viewer?.approver}</strong>`;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="color-scheme" content="light dark" />
        <meta
          name="htmx-config"
          content='{"includeIndicatorStyles": false, "allowEval": false, "allowScriptTags": false, "historyCacheSize": 0}'
        />
        <title>${title} · Baton inbox</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href="/assets/pico.min.css" />
        <link rel="stylesheet" href="/assets/inbox.css" />
        <script src="/assets/htmx.min.js" defer></script>
      </head>
      <body>
        <header class="container">
          <nav>
            <ul>
              <li>
                <a href="/" class="brand"><strong>Baton</strong> approval inbox</a>
              </li>
            </ul>
            ${
              viewer
                ? html`<ul>
                    <li>Signed in as ${signedIn}</li>
                    ${
                      viewer.via === 'token'
                        ? html`<li>
                            <form method="post" action="/sign-out" class="inline">
                              <input type="hidden" name="_csrf" value="${viewer.csrf}" />
                              <button type="submit" class="secondary outline small">Sign out</button>
                            </form>
                          </li>`
                        : ''
                    }
                  </ul>`
                : ''
            }
          </nav>
        </header>
        <main class="container">${body}</main>
        <footer class="container">
          <small
            >Decisions go to the task's workflow (the <code>decide</code> Update), which checks who may decide
            and records every decision, accepted or refused, in the audit trail.</small
          >
        </footer>
      </body>
    </html>`;
}

/** A page for a refusal or an error: what happened, in the words that explain it. */
export function messagePage(title: string, message: string, viewer?: Viewer, link = true): Html {
  return layout(
    title,
    viewer,
    html`<article class="notice-refused" role="alert">
      <h1>${title}</h1>
      <p>${message}</p>
      ${link ? html`<p><a href="/">Back to the inbox</a></p>` : ''}
    </article>`,
  );
}

// ---------------------------------------------------------------------------------------------------------
// Sign-in

export function signInPage(options: { error?: string; next?: string }): Html {
  return layout(
    'Sign in',
    undefined,
    html`<article class="narrow">
      <hgroup>
        <h1>Sign in</h1>
        <p>With the personal approver token you were given. It identifies you to the tasks you decide on.</p>
      </hgroup>
      ${options.error ? html`<p class="notice-refused" role="alert">${options.error}</p>` : ''}
      <form method="post" action="/sign-in">
        <input type="hidden" name="next" value="${options.next ?? '/'}" />
        <label
          >Approver token
          <input
            type="password"
            name="token"
            autocomplete="current-password"
            required
            autofocus
            aria-invalid="${options.error ? 'true' : ''}"
          />
        </label>
        <button type="submit">Sign in</button>
      </form>
      <p>
        <small
          >No token? Ask whoever runs Baton:
          <code>npm run inbox -- new-token &lt;your approver id&gt;</code> makes one.</small
        >
      </p>
    </article>`,
  );
}

// ---------------------------------------------------------------------------------------------------------
// The pending list

export interface PendingRow {
  workflowId: string;
  gate: string;
  awaiting: string[];
  startTime: Date;
  phase?: string;
  /** From the task's status query, when its worker answered. */
  status?: Pick<TaskStatus, 'question' | 'pendingGate'>;
}

/** The list of tasks waiting for a decision, as the fragment that refreshes itself. */
export function pendingFragment(rows: PendingRow[], all: boolean, viewer: Viewer): Html {
  if (rows.length === 0) {
    return html`<p class="empty">
      ${all ? 'No task is waiting for a decision.' : 'Nothing is waiting for you.'}
      ${all ? '' : html`<a href="/?all=1">Show all tasks waiting</a>`}
    </p>`;
  }
  return html`<table class="striped">
    <thead>
      <tr>
        <th scope="col">Task</th>
        <th scope="col">Gate</th>
        <th scope="col">Waiting for</th>
        <th scope="col">Started</th>
      </tr>
    </thead>
    <tbody>
      ${rows.map((row) => {
        const gate = row.status?.pendingGate;
        const mine = row.awaiting.includes(viewer.approver) || row.awaiting.includes('*');
        return html`<tr>
          <td>
            <a href="${taskUrl(row.workflowId)}" class="task-link"
              >${row.status?.question ?? row.workflowId}</a
            >
            <br /><small><code>${row.workflowId}</code></small>
          </td>
          <td>
            ${badge('waiting', `${row.gate} gate`)}
            ${gate ? html`<br /><small>${gate.approvals.length} of ${gate.quorum} approvals</small>` : ''}
          </td>
          <td>${who(row.awaiting)}${mine ? html`<br /><small><ins>you may decide</ins></small>` : ''}</td>
          <td>${time(row.startTime.toISOString())}</td>
        </tr>`;
      })}
    </tbody>
  </table>`;
}

export function pendingPage(
  content: Html,
  all: boolean,
  viewer: Viewer,
  poll: string,
  refreshMs: number,
): Html {
  return layout(
    all ? 'All tasks waiting' : 'Waiting for you',
    viewer,
    html`<hgroup>
        <h1>${all ? 'All tasks waiting for a decision' : 'Waiting for your decision'}</h1>
        <p>
          ${
            all
              ? 'Every running task stopped at a gate, whoever may decide.'
              : html`Running tasks stopped at a gate where <strong>${viewer.approver}</strong> (or anyone) may
                  decide.`
          }
        </p>
      </hgroup>
      <div role="group" class="toggle" aria-label="Which tasks">
        <a
          href="/"
          role="button"
          class="${all ? 'outline secondary' : ''}"
          aria-current="${all ? 'false' : 'page'}"
          >Mine</a
        >
        <a
          href="/?all=1"
          role="button"
          class="${all ? '' : 'outline secondary'}"
          aria-current="${all ? 'page' : 'false'}"
          >All</a
        >
      </div>
      ${live('pending', poll, refreshMs, content)}`,
  );
}

/**
 * A region that refreshes itself: htmx asks `poll` (which carries a digest of what is shown) every
 * `refreshMs`, and on `baton-refresh` (sent after a decision); the server answers 204, and htmx
 * leaves the region alone, while nothing changed. With no `poll` the region is final.
 */
export function live(id: string, poll: string | undefined, refreshMs: number, content: Html): Html {
  if (!poll) return html`<div id="${id}">${content}</div>`;
  return html`<div
    id="${id}"
    hx-get="${poll}"
    hx-trigger="every ${refreshMs}ms, baton-refresh from:body"
    hx-swap="outerHTML"
  >
    ${content}
  </div>`;
}

export const pollUrl = fragmentUrl;

/** Empties the decision answer shown (an out-of-band swap): sent when a new gate opens. */
export const clearDecisionResult = (): Html =>
  html`<div id="decision-result" aria-live="polite" hx-swap-oob="true"></div>`;

// ---------------------------------------------------------------------------------------------------------
// The task page

/** A task and the child tasks of its decomposed steps (by child workflow id), as far as they answered. */
export interface TaskView {
  status: TaskStatus;
  children: Map<string, TaskStatus | { error: string }>;
}

export function taskPage(
  status: TaskStatus,
  viewer: Viewer,
  decisionRegion: Html,
  liveRegion: Html,
  result?: DecisionOutcome,
): Html {
  const parent = /^(.*)\/step-[^/]+$/.exec(status.workflowId)?.[1];
  return layout(
    status.question.slice(0, 80),
    viewer,
    html`<nav aria-label="breadcrumb">
        <ul>
          <li><a href="/">Inbox</a></li>
          ${parent ? html`<li><a href="${taskUrl(parent)}">${parent}</a></li>` : ''}
          <li>${status.workflowId}</li>
        </ul>
      </nav>
      <hgroup>
        <h1 class="question">${status.question}</h1>
        <p>
          <code>${status.workflowId}</code> · playbook <strong>${status.playbook}</strong>
          ${status.depth ? html` · child task at depth ${status.depth}` : ''}
        </p>
      </hgroup>
      <div id="decision-result" aria-live="polite">${result ? decisionResult(result) : ''}</div>
      ${decisionRegion} ${liveRegion}`,
  );
}

/** The answer to a decision: the workflow's acceptance, or its refusal in its own words. */
export function decisionResult(outcome: DecisionOutcome): Html {
  return outcome.accepted
    ? html`<article class="notice-accepted" role="status">
        <strong>Accepted.</strong> ${formatDecideResult(outcome.result).replace(/^accepted: /, '')}
      </article>`
    : html`<article class="notice-refused" role="alert">
        <strong>Refused:</strong> <span class="reason">${outcome.reason}</span>
      </article>`;
}

/** The pending gate and the decision form, or why there is nothing to decide. */
export function decisionPanel(status: TaskStatus, viewer: Viewer, draft: string | undefined): Html {
  const gate = status.pendingGate;
  if (!gate) {
    return html`<p class="no-decision">
      ${
        FINAL_PHASES.includes(status.phase)
          ? html`This task has ended (${status.phase}); nothing is left to decide.`
          : html`No decision is needed now: the task is ${status.phase}.`
      }
    </p>`;
  }
  const listed = gate.approvers.includes(viewer.approver) || gate.approvers.includes('*');
  const already = gate.approvals.some((a) => a.by === viewer.approver);
  return html`<article class="decision">
    <header>
      <h2>
        Decision needed: the ${gate.gate} gate
        ${gate.stage === 'escalated' ? badge('failed', 'escalated') : ''}
      </h2>
      ${gateSummary(gate)}
    </header>
    ${
      already
        ? html`<p><ins>You have approved this gate.</ins> It waits for the other approvals.</p>`
        : listed
          ? html`<p>You may decide at this gate.</p>`
          : html`<p class="warning">
              You (${viewer.approver}) are not listed as an approver of this gate now: the task will refuse
              your decision.
            </p>`
    }
    ${gate.gate === 'report' ? draftReport(status, draft) : ''}
    <form
      method="post"
      action="/task/decide"
      hx-post="/task/decide"
      hx-target="#decision-result"
      hx-swap="innerHTML"
    >
      <input type="hidden" name="_csrf" value="${viewer.csrf}" />
      <input type="hidden" name="id" value="${status.workflowId}" />
      <input type="hidden" name="gate" value="${gate.gate}" />
      <label
        >Comment
        <textarea
          name="comment"
          rows="3"
          placeholder="Kept in the audit trail. Required to request changes: say what to change."
        ></textarea>
      </label>
      ${gate.gate === 'report' && status.steps.length ? rerunChoices(status.steps) : ''}
      <div role="group" class="decide">
        <button type="submit" name="decision" value="approve">Approve</button>
        <button type="submit" name="decision" value="requestChanges" class="secondary">
          Request changes
        </button>
        <button type="submit" name="decision" value="reject" class="contrast">Reject</button>
      </div>
    </form>
  </article>`;
}

function gateSummary(gate: PendingGate): Html {
  const soFar = gate.approvals.length
    ? `approved so far by ${gate.approvals.map((a) => a.by).join(', ')}`
    : 'none so far';
  const waiting = `Waiting for ${plural(gate.quorum, 'approval')} from ${who(gate.approvers)}; ${soFar}.`;
  const reminders = gate.reminders.length ? `; ${plural(gate.reminders.length, 'reminder')} sent` : '';
  return html`<p>
    ${waiting}<br />
    <small
      >Open since
      ${time(gate.since)}${gate.deadline ? html`; deadline ${time(gate.deadline)}` : ''}${reminders}</small
    >
  </p>`;
}

function draftReport(status: TaskStatus, draft: string | undefined): Html {
  const path = status.report?.draftPath;
  return html`<details class="draft" open>
    <summary>The draft report${path ? html` <small><code>${path}</code></small>` : ''}</summary>
    ${
      draft !== undefined
        ? html`<pre class="report">${draft}</pre>`
        : html`<p>
            <small
              >The draft is not readable from this
              inbox${path ? html` (it is at <code>${path}</code> on the workers' report volume)` : ''}.</small
            >
          </p>`
    }
  </details>`;
}

function rerunChoices(steps: StepStatus[]): Html {
  return html`<fieldset>
    <legend>With <em>Request changes</em>: steps to run again first (optional)</legend>
    ${steps.map(
      (s) =>
        html`<label
          ><input type="checkbox" name="rerun" value="${s.id}" /> <strong>${s.id}</strong> (${s.agent}):
          ${s.question.length > 120 ? `${s.question.slice(0, 117)}…` : s.question}</label
        >`,
    )}
  </fieldset>`;
}

/** Everything that changes while the task runs: progress, plan tree with results, tokens, report, audit. */
export function taskLive(view: TaskView): Html {
  const s = view.status;
  const steps = stepsOf(s);
  const done = steps.filter((x) => x.state === 'done').length;
  return html`<section class="progress">
      <p>
        Phase ${phaseBadge(s.phase)}
        ${steps.length ? html` · ${done} of ${plural(steps.length, 'step')} done` : ''} ·
        ${number(s.usage.inputTokens + s.usage.outputTokens)} tokens
        ${FINAL_PHASES.includes(s.phase) ? '' : html` · <small>updates itself while the task runs</small>`}
      </p>
      ${steps.length ? html`<progress value="${done}" max="${steps.length}"></progress>` : ''}
      ${s.error ? html`<article class="notice-refused" role="alert"><strong>Error:</strong> ${s.error}</article>` : ''}
      ${s.budget?.stopped ? html`<p class="warning">Token budget: ${s.budget.stopped.reason}</p>` : ''}
    </section>
    <section>
      <h2>Plan</h2>
      ${planTree(s, view.children)}
    </section>
    <section>
      <h2>Token spend</h2>
      ${usageTable(s)}
    </section>
    ${
      s.report
        ? html`<section>
            <h2>Report</h2>
            <p>
              ${
                s.report.path
                  ? html`Published: <code>${s.report.path}</code>`
                  : s.report.draftPath
                    ? html`Draft awaiting sign-off: <code>${s.report.draftPath}</code>`
                    : html`Draft <code>${s.report.artifact.id}</code>`
              }
            </p>
          </section>`
        : ''
    }
    <section>
      <h2>Decision history</h2>
      ${auditTable(s.audit)}
    </section>`;
}

/** Before execution the status has the plan but no step states yet: the plan's steps are then pending. */
function stepsOf(s: TaskStatus): StepStatus[] {
  return s.steps.length
    ? s.steps
    : (s.plan?.steps ?? []).map((p: PlanStep) => ({ ...p, state: 'pending' as const }));
}

/**
 * The plan as a tree, in dependency order; a decomposed step holds its child task's tree. Steps
 * are identified by their path (`step-s2/c1` inside the child of s2): ids repeat across levels.
 */
function planTree(s: TaskStatus, children: TaskView['children'], prefix = ''): Html {
  const steps = stepsOf(s);
  if (!s.plan && !steps.length)
    return html`<p>No plan yet: the lead is ${s.phase === 'planning' ? 'planning' : 'not done'}.</p>`;
  return html`${s.plan ? html`<p class="rationale">${s.plan.rationale}</p>` : ''}
    <ol class="tree" data-depth="${s.depth}">
      ${dependencyOrder(steps).map((step) => stepItem(step, s.depth, children, prefix))}
    </ol>`;
}

function stepItem(step: StepStatus, depth: number, children: TaskView['children'], prefix: string): Html {
  const child = step.childWorkflowId ? children.get(step.childWorkflowId) : undefined;
  const tokens = step.usage ? step.usage.inputTokens + step.usage.outputTokens : 0;
  return html`<li class="step" id="step-${prefix}${step.id}" data-state="${step.state}">
    <p class="step-head">
      <strong>${step.id}</strong> · ${step.agent} · ${badge(step.state, step.state)}
      ${step.dependsOn.length ? html` · <small>after ${step.dependsOn.join(', ')}</small>` : ''}
      ${tokens ? html` · <small>${number(tokens)} tokens</small>` : ''}
      ${step.revision ? html` · <small>re-run ${plural(step.revision, 'time')} at a reviewer's request</small>` : ''}
      ${step.attempt && step.attempt > 1 ? html` · <small>attempt ${step.attempt}</small>` : ''}
      <small class="depth">depth ${depth}</small>
    </p>
    <p class="step-question">${step.question}</p>
    ${step.summary ? html`<p class="step-summary">${step.summary}</p>` : ''}
    ${step.error ? html`<p class="notice-refused">${step.error}</p>` : ''}
    ${
      step.sources?.length
        ? html`<ul class="sources">
            ${step.sources.map((src) => html`<li>${sourceLink(src)}</li>`)}
          </ul>`
        : ''
    }
    ${
      step.decompose
        ? html`<div class="child">
            ${
              step.childWorkflowId
                ? html`<p>
                      Decomposed into the child task
                      <a href="${taskUrl(step.childWorkflowId)}"><code>${step.childWorkflowId}</code></a
                      >, planned again at depth ${depth + 1}:
                    </p>
                    ${
                      child === undefined
                        ? ''
                        : 'error' in child
                          ? html`<p><small>${child.error}</small></p>`
                          : planTree(child, children, `${prefix}${step.id}/`)
                    }`
                : html`<p>
                    <small
                      >Will be planned again one level deeper (depth ${depth + 1}), as a child task.</small
                    >
                  </p>`
            }
          </div>`
        : ''
    }
  </li>`;
}

function usageTable(s: TaskStatus): Html {
  const agents = Object.entries(s.usage.byAgent);
  return html`<table>
      <thead>
        <tr>
          <th scope="col">Agent</th>
          <th scope="col" class="num">Input tokens</th>
          <th scope="col" class="num">Output tokens</th>
        </tr>
      </thead>
      <tbody>
        ${agents.map(
          ([agent, u]) =>
            html`<tr>
              <td>${agent}</td>
              <td class="num">${number(u.inputTokens)}</td>
              <td class="num">${number(u.outputTokens)}</td>
            </tr>`,
        )}
      </tbody>
      <tfoot>
        <tr>
          <th scope="row">Total${s.steps.some((x) => x.decompose) ? ' (child tasks included)' : ''}</th>
          <td class="num">${number(s.usage.inputTokens)}</td>
          <td class="num">${number(s.usage.outputTokens)}</td>
        </tr>
      </tfoot>
    </table>
    ${
      s.budget?.maxTokensPerTask
        ? html`<p>
            <small
              >Budget: ${number(s.budget.maxTokensPerTask)} tokens for the
              task${s.budget.maxTokensPerStep ? `, ${number(s.budget.maxTokensPerStep)} per step` : ''}.</small
            >
          </p>`
        : ''
    }`;
}

function auditTable(audit: AuditEntry[]): Html {
  if (!audit.length) return html`<p>Nothing yet.</p>`;
  return html`<div class="overflow-auto">
    <table class="audit">
      <thead>
        <tr>
          <th scope="col">When</th>
          <th scope="col">Gate</th>
          <th scope="col">Event</th>
          <th scope="col">By</th>
          <th scope="col">Outcome</th>
        </tr>
      </thead>
      <tbody>
        ${audit.map(
          (e) =>
            html`<tr class="${e.event === 'decision' && !e.accepted ? 'refused' : ''}">
              <td>${time(e.at)}</td>
              <td>${e.gate ?? '–'}</td>
              <td>${e.event === 'decision' ? html`<strong>${e.decision}</strong>` : e.event}</td>
              <td>${e.by ?? ''}${e.via ? html` <small>via ${e.via}</small>` : ''}</td>
              <td>
                ${e.event === 'decision' ? (e.accepted ? html`<ins>accepted</ins>` : html`<del>refused</del>`) : ''}
                ${e.reason ? html` <small>${e.reason}</small>` : ''}
                ${e.comment ? html`<br /><q>${e.comment}</q>` : ''}
                ${e.step ? html` <small>step ${e.step}</small>` : ''}${e.agent ? html` <small>agent ${e.agent}</small>` : ''}${
                  e.tool ? html` <small>tool ${e.tool}</small>` : ''
                }
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}
