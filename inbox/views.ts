/**
 * The inbox's pages, rendered on the server as HTML with {@link html}, Hono's `html` template tag
 * behind the one sanitizer: every string interpolated is first made safe to read (contract/text.ts:
 * no bidi override, tag, zero-width or control character reaches the page; each is shown as
 * `⟨U+XXXX⟩`) and then escaped, so text from models (summaries, sources, reports) and from people
 * (comments, names) stays text and reads as it is. Pico CSS styles the plain elements; htmx attributes keep the live parts
 * current. Nothing here does I/O: the routes (./routes.ts) fetch, these functions render. This file
 * has the layout and what every page shares; ./pending-page.ts, ./task-page.ts and ./task-live.ts
 * the pages.
 */
import { html as honoHtml } from 'hono/html';
import type { Phase } from '../contract/messages';
import { safeBlock } from '../contract/text';

export type Html = ReturnType<typeof honoHtml>;

/** A value to interpolate, with its strings (in arrays too) through the sanitizer; rendered HTML as it is. */
const shown = (value: unknown): unknown =>
  typeof value === 'string' ? safeBlock(value) : Array.isArray(value) ? value.map(shown) : value;

/**
 * Hono's `html` tag with every interpolated string sanitized (contract/text.ts) before it is escaped.
 * Every page of the inbox is written with this tag, never with Hono's own.
 */
export const html = (strings: TemplateStringsArray, ...values: unknown[]): Html =>
  honoHtml(strings, ...values.map(shown));

/**
 * `value` escaped but not sanitized: only for a form's hidden value that must go back exactly as it
 * came (a workflow id), never for text a person reads.
 */
export const verbatim = (value: string): Html => honoHtml`${value}`;

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

export const pollUrl = (route: string, params: Record<string, string>): string =>
  `${route}?${new URLSearchParams(params).toString()}`;

/** `2026-11-24T10:00:00.000Z` as `2026-11-24 10:00:00 UTC`, in a `<time>` element. */
export function time(iso: string | undefined): Html {
  if (!iso) return html``;
  const shown = iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC');
  return html`<time datetime="${iso}">${shown}</time>`;
}

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

export const number = (n: number): string => n.toLocaleString('en-US');

/** A state or phase as a small labelled badge. */
export const badge = (kind: string, text: string): Html =>
  html`<span class="badge badge-${kind}">${text}</span>`;

export const phaseBadge = (phase: Phase): Html => {
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
export function sourceLink(source: { title: string; url?: string }): Html {
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
        <script src="/assets/passkey.js" defer></script>
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
                    <li><a href="/passkey">Passkeys</a></li>
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
// Live regions

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

/** Empties the decision answer shown (an out-of-band swap): sent when a new gate opens. */
export const clearDecisionResult = (): Html =>
  html`<div id="decision-result" aria-live="polite" hx-swap-oob="true"></div>`;
