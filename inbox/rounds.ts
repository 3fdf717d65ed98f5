/**
 * Research rounds on the task page (workflows/rounds.ts): the lead's reviews after the plan, each
 * with its reason, the steps it added and the decision; and, at the plan gate, a delta as what it
 * adds to the plan. Every string goes through the inbox's sanitizing `html` tag (./views.ts).
 */
import type { RoundStatus, TaskStatus } from '../contract/messages';
import { badge, html, plural, time, type Html } from './views';

/** A round's decision as a badge kind (./inbox.css). */
const KIND: Record<RoundStatus['decision'], string> = {
  done: 'done',
  pending: 'waiting',
  approved: 'done',
  'no-approval-needed': 'done',
  rejected: 'failed',
  refused: 'failed',
  failed: 'failed',
  'no-room': 'skipped',
};

/** One round: its number and decision, the lead's reason, the steps it added, why the rounds ended. */
function roundItem(r: RoundStatus): Html {
  return html`<li class="round" id="round-${r.n}">
    <p>
      <strong>Round ${r.n}</strong> · ${badge(KIND[r.decision], r.decision)}
      ${r.by?.length ? html` · <small>by ${r.by.join(', ')}</small>` : ''}
      ${r.steps.length ? html` · <small>${plural(r.steps.length, 'step')}: ${r.steps.join(', ')}</small>` : ''}
      · <small>${time(r.at)}</small>
    </p>
    ${r.reason ? html`<p class="round-reason">${r.reason}</p>` : ''}
    ${r.problems ? html`<p class="notice-refused">${r.problems}</p>` : ''}
  </li>`;
}

/** The task's rounds after its plan, or nothing when it had none. */
export function roundsSection(s: TaskStatus): Html | string {
  if (!s.rounds?.length) return '';
  return html`<section>
    <h2>Research rounds</h2>
    <p>
      <small>After the plan's steps, the lead reviewed the findings and answered done or more steps.</small>
    </p>
    <ol class="rounds">
      ${s.rounds.map(roundItem)}
    </ol>
  </section>`;
}

/**
 * At the plan gate, a delta the lead asks for: what is decided on is the plan as it stands (its
 * steps, run already, below) with these steps added, pending in the plan below.
 */
export function deltaAtGate(s: TaskStatus): Html | string {
  const round = s.rounds?.at(-1);
  if (s.pendingGate?.gate !== 'plan' || round?.decision !== 'pending') return '';
  const added = s.steps.filter((x) => x.round === round.n);
  return html`<section class="delta">
    <h3>Round ${round.n}: the lead asks to add ${plural(added.length, 'step')} to the plan</h3>
    <p class="round-reason">${round.reason}</p>
    <ul>
      ${added.map(
        (x) =>
          html`<li>
            <strong>${x.id}</strong> · ${x.agent}
            ${x.dependsOn.length ? html` · <small>after ${x.dependsOn.join(', ')}</small>` : ''}:
            ${x.question}
          </li>`,
      )}
    </ul>
    <p>
      <small
        >Approving runs these after the ${plural(s.steps.length - added.length, 'step')} already in the plan;
        rejecting ends the rounds, and the report is written from what exists.</small
      >
    </p>
  </section>`;
}
