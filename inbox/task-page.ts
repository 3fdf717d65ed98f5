/** The task page: the task's header, the pending gate with the decision form, and the answer to a decision. */
import {
  formatDecideResult,
  who,
  type DecisionOutcome,
  type DiffPart,
  type PlanDelta,
  type TextDiff,
} from '../client';
import type { Approval, PendingGate, StepStatus, TaskStatus } from '../contract/messages';
import {
  badge,
  FINAL_PHASES,
  html,
  layout,
  plural,
  taskUrl,
  time,
  verbatim,
  type Html,
  type Viewer,
} from './views';
import { renderMarkdown, reportParts } from './markdown';
import { deltaAtGate } from './rounds';

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

/** The draft at the report gate as read from the store, or why it could not be read. */
export type Draft = { text: string } | { error: string };

/**
 * What changed since the version the gate showed before (the one the reviewer who asked for
 * changes last saw): the draft's diff at the report gate, the plan's delta at the plan gate, or why
 * it cannot be told.
 */
export type Changes = { draft: TextDiff } | { plan: PlanDelta } | { error: string };

/** The pending gate and the decision form, or why there is nothing to decide. */
export function decisionPanel(
  status: TaskStatus,
  viewer: Viewer,
  draft: Draft | undefined,
  changes?: Changes,
): Html {
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
    ${deltaAtGate(status)} ${changes ? changesSection(gate.gate, changes) : ''}
    ${gate.gate === 'report' ? draftReport(draft) : ''} ${signingNote(gate)}
    ${gate.signed ? passkeyForm(status, viewer, gate, draft) : plainForm(status, viewer, gate, draft)}
  </article>`;
}

/** How decisions are taken at this gate: signed with a passkey, or unsigned (names taken as given). */
function signingNote(gate: PendingGate): Html {
  if (gate.signed === undefined) return html``;
  return gate.signed
    ? html`<p class="signing">
        <strong>Signed decisions:</strong> your passkey signs what you decide, and the task checks it against
        the passkeys approvers.yaml lists for you. No passkey yet? <a href="/passkey">Enrol one</a>.
      </p>`
    : html`<p class="signing">
        <strong>Unsigned:</strong> this playbook takes decisions unsigned; the task takes the name you are
        signed in with as given.
      </p>`;
}

/** The decision form posted by htmx: unsigned decisions. */
function plainForm(status: TaskStatus, viewer: Viewer, gate: PendingGate, draft: Draft | undefined): Html {
  return html`<form
    method="post"
    action="/task/decide"
    hx-post="/task/decide"
    hx-target="#decision-result"
    hx-swap="innerHTML"
  >
    ${formFields(status, viewer, gate, draft)}
  </form>`;
}

/** The decision form ./passkey.js posts, with the passkey's assertion over the decision statement. */
function passkeyForm(status: TaskStatus, viewer: Viewer, gate: PendingGate, draft: Draft | undefined): Html {
  return html`<form method="post" action="/task/decide" data-sign="passkey">
    ${formFields(status, viewer, gate, draft)}
  </form>`;
}

/** The form's fields; no Approve button at a report gate whose draft could not be read. */
function formFields(status: TaskStatus, viewer: Viewer, gate: PendingGate, draft: Draft | undefined): Html {
  return html` <input type="hidden" name="_csrf" value="${viewer.csrf}" />
    <input type="hidden" name="id" value="${verbatim(status.workflowId)}" />
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
      ${draft && 'error' in draft ? '' : html`<button type="submit" name="decision" value="approve">Approve</button>`}
      <button type="submit" name="decision" value="requestChanges" class="secondary">Request changes</button>
      <button type="submit" name="decision" value="reject" class="contrast">Reject</button>
    </div>`;
}

/** How an approval was signed, as the inbox says it: ` (passkey)`, ` (signed)`, ` (unsigned)`. */
export const signingOf = (a: Approval): string =>
  a.signed === undefined
    ? ''
    : !a.signed
      ? ' (unsigned)'
      : a.statement?.signature.alg === 'webauthn'
        ? ' (signed with a passkey)'
        : ' (signed)';

function gateSummary(gate: PendingGate): Html {
  const soFar = gate.approvals.length
    ? `approved so far by ${gate.approvals.map((a) => `${a.by}${signingOf(a)}`).join(', ')}`
    : 'none so far';
  const waiting = `Waiting for ${plural(gate.quorum, 'approval')} from ${who(gate.approvers)}; ${soFar}.`;
  const reminders = gate.reminders.length ? `; ${plural(gate.reminders.length, 'reminder')} sent` : '';
  const call = gate.call
    ? html`<strong>The tool call:</strong> <code>${gate.call.server} · ${gate.call.tool}</code> in step
        <code>${gate.call.step}</code>, arguments <code>${gate.call.arguments}</code><br />`
    : '';
  return html`<p>
    ${call}${waiting}<br />
    <small
      >Open since
      ${time(gate.since)}${gate.deadline ? html`; deadline ${time(gate.deadline)}` : ''}${reminders}</small
    >
  </p>`;
}

function draftReport(draft: Draft | undefined): Html {
  return html`<details class="draft" open>
    <summary>The draft report</summary>
    ${
      draft && 'text' in draft
        ? renderedReport(draft.text)
        : html`<p class="warning">
            The draft cannot be read here, so it cannot be approved here:
            ${draft?.error ?? 'no draft was published'}.
          </p>`
    }
  </details>`;
}

/**
 * A published report rendered (./markdown.ts): its label, its body, and below them, folded, the
 * label with the content hash and the provenance record.
 */
export function renderedReport(text: string): Html {
  const { label, body, tail } = reportParts(text);
  return html`<div class="report">
    ${label ? renderMarkdown(label) : ''} ${renderMarkdown(body)}
    ${
      tail
        ? html`<details class="provenance">
            <summary>Content hash and provenance</summary>
            ${renderMarkdown(tail)}
          </details>`
        : ''
    }
  </div>`;
}

/** What changed since the version the gate showed before, above the draft (or the plan). */
function changesSection(gate: PendingGate['gate'], changes: Changes): Html {
  const heading =
    gate === 'report' ? 'What changed since the previous draft' : 'What changed since the previous plan';
  return html`<details class="changes" open>
    <summary>${heading}</summary>
    ${
      'error' in changes
        ? html`<p class="warning">The previous version cannot be compared here: ${changes.error}.</p>`
        : 'draft' in changes
          ? draftDiff(changes.draft)
          : planChanges(changes.plan)
    }
  </details>`;
}

function draftDiff(diff: TextDiff): Html {
  if (!diff.added && !diff.removed) return html`<p>The text is the same as the previous draft's.</p>`;
  return html`<p class="diff-stats">
      <ins>${plural(diff.added, 'line')} added</ins>, <del>${plural(diff.removed, 'line')} removed</del>
      (changed words marked)
    </p>
    <pre class="diff">${diff.parts.map(diffPart)}</pre>`;
}

function diffPart(part: DiffPart): Html {
  if (part.kind === 'same') return html`<span class="same">${part.text}</span>`;
  if (part.kind === 'folded')
    return html`<span class="folded">⋯ ${plural(part.lines, 'unchanged line')} ⋯ </span>`;
  return html`${part.words.map((w) =>
    w.op === '+' ? html`<ins>${w.text}</ins>` : w.op === '-' ? html`<del>${w.text}</del>` : w.text,
  )}`;
}

function planChanges(delta: PlanDelta): Html {
  const items = [
    ...(delta.rationale
      ? [html`<li>Rationale: <del>${delta.rationale.before}</del> <ins>${delta.rationale.after}</ins></li>`]
      : []),
    ...delta.added.map(
      (s) =>
        html`<li>
          <ins>Added step <strong>${s.id}</strong> (${s.agent}): ${s.question}</ins>
        </li>`,
    ),
    ...delta.removed.map(
      (s) =>
        html`<li>
          <del>Removed step <strong>${s.id}</strong> (${s.agent}): ${s.question}</del>
        </li>`,
    ),
    ...delta.changed.map(
      (c) =>
        html`<li>
          Step <strong>${c.id}</strong>:
          ${c.fields.map((f) => html` ${f.field} <del>${f.before}</del> <ins>${f.after}</ins>`)}
        </li>`,
    ),
  ];
  return items.length
    ? html`<ul class="plan-delta">
        ${items}
      </ul>`
    : html`<p>The plan is the same as the previous one.</p>`;
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
