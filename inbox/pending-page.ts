/** The pending list: the tasks waiting for a decision, mine or all, refreshed while it is open. */
import { who } from '../client';
import type { TaskStatus } from '../contract/messages';
import { badge, html, layout, live, taskUrl, time, type Html, type Viewer } from './views';

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
            ${
              gate?.call
                ? html`<br /><small
                      ><code>${gate.call.server} · ${gate.call.tool} ${gate.call.arguments}</code></small
                    >`
                : ''
            }
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
