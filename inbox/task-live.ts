/**
 * What changes on the task page while the task runs: progress, the plan tree with each step's
 * results (and the child tasks of decomposed steps), the live words of the model calls in flight
 * under their running steps, token spend, the report and the audit trail.
 */
import { shownLocation } from '../activities/report';
import { childrenBelow, dependencyOrder, stepsOf } from '../client';
import type { LiveWords } from '../contract/live';
import type { AuditEntry, StepStatus, TaskStatus } from '../contract/messages';
import { roundsSection } from './rounds';
import { renderedReport, type Draft, type TaskView } from './task-page';
import {
  badge,
  FINAL_PHASES,
  html,
  number,
  phaseBadge,
  plural,
  sourceLink,
  taskUrl,
  time,
  type Html,
} from './views';

/** The live words of the model calls in flight (contract/live.ts), by the workflow id running them. */
export type LiveByWorkflow = ReadonlyMap<string, readonly LiveWords[]>;

/**
 * A call's live words, as text (escaped like all text here): the tail of what the model has
 * written so far. Never part of the task's history: read from the server while the call runs.
 */
const liveWords = (words: LiveWords | undefined): Html | string =>
  words?.words
    ? html`<p class="live-words" aria-live="off"><small>${words.agent} is writing:</small> ${words.words}</p>`
    : '';

/**
 * Everything that changes while the task runs: progress, plan tree with results and live words,
 * tokens, report (rendered once the task has ended with one), audit.
 */
export function taskLive(view: TaskView, published?: Draft, live: LiveByWorkflow = new Map()): Html {
  const s = view.status;
  const lead = FINAL_PHASES.includes(s.phase) ? undefined : live.get(s.workflowId)?.find((w) => !w.step);
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
      ${liveWords(lead)}
    </section>
    <section>
      <h2>Plan</h2>
      ${planTree(s, view.children, live)}
    </section>
    ${roundsSection(s)}
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
                  ? html`Published: <code>${shownLocation(s.report.path)}</code>`
                  : s.report.draftPath
                    ? html`Draft awaiting sign-off: <code>${shownLocation(s.report.draftPath)}</code>`
                    : html`Draft <code>${s.report.artifact.id}</code>`
              }
            </p>
            ${
              !published
                ? ''
                : 'text' in published
                  ? html`<details class="published" open>
                      <summary>The published report</summary>
                      ${renderedReport(published.text)}
                    </details>`
                  : html`<p class="warning">The published report cannot be read here: ${published.error}.</p>`
            }
          </section>`
        : ''
    }
    <section>
      <h2>Decision history</h2>
      ${auditTable(s.audit)}
    </section>`;
}

/**
 * The plan as a tree, in dependency order; a decomposed step holds its child task's tree. Steps
 * are identified by their path (`step-s2/c1` inside the child of s2): ids repeat across levels.
 */
function planTree(s: TaskStatus, children: TaskView['children'], live: LiveByWorkflow, prefix = ''): Html {
  const steps = stepsOf(s);
  // A child task's lead writing its plan or its summary (the task's own lead is shown above).
  const lead =
    prefix && !FINAL_PHASES.includes(s.phase) ? live.get(s.workflowId)?.find((w) => !w.step) : undefined;
  if (!s.plan && !steps.length)
    return html`<p>No plan yet: the lead is ${s.phase === 'planning' ? 'planning' : 'not done'}.</p>
      ${liveWords(lead)}`;
  return html`${s.plan ? html`<p class="rationale">${s.plan.rationale}</p>` : ''} ${liveWords(lead)}
    <ol class="tree" data-depth="${s.depth}">
      ${dependencyOrder(steps).map((step) => stepItem(step, s, children, live, prefix))}
    </ol>`;
}

function stepItem(
  step: StepStatus,
  task: TaskStatus,
  children: TaskView['children'],
  live: LiveByWorkflow,
  prefix: string,
): Html {
  const { depth } = task;
  const words =
    step.state === 'running' ? live.get(task.workflowId)?.find((w) => w.step === step.id) : undefined;
  const child = step.childWorkflowId ? children.get(step.childWorkflowId) : undefined;
  const tokens = step.usage ? step.usage.inputTokens + step.usage.outputTokens : 0;
  return html`<li class="step" id="step-${prefix}${step.id}" data-state="${step.state}">
    <p class="step-head">
      <strong>${step.id}</strong> · ${step.agent} · ${badge(step.state, step.state)}
      ${step.dependsOn.length ? html` · <small>after ${step.dependsOn.join(', ')}</small>` : ''}
      ${step.round ? html` · <small>added in round ${step.round}</small>` : ''}
      ${tokens ? html` · <small>${number(tokens)} tokens</small>` : ''}
      ${step.revision ? html` · <small>re-run ${plural(step.revision, 'time')} at a reviewer's request</small>` : ''}
      ${step.attempt && step.attempt > 1 ? html` · <small>attempt ${step.attempt}</small>` : ''}
      <small class="depth">depth ${depth}</small>
    </p>
    <p class="step-question">${step.question}</p>
    ${step.summary ? html`<p class="step-summary">${step.summary}</p>` : liveWords(words)}
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
                        : 'phase' in child
                          ? planTree(
                              child,
                              childrenBelow(children, step.childWorkflowId),
                              live,
                              `${prefix}${step.id}/`,
                            )
                          : html`<p><small>${child.error}</small></p>`
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
                ${e.event === 'decision' && e.accepted && e.signed !== undefined ? html` <small>${e.signed ? 'signed' : 'unsigned'}</small>` : ''}
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
