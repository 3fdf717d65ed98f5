/**
 * Passkeys in the inbox (docs/approvals.md, "Passkeys"): the enrolment page, which prints the
 * approvers.yaml line for a new passkey (the inbox never writes config: a reviewer commits the
 * line), and the statement a passkey signs for a decision at a signed playbook's gate. The browser
 * side is ./passkey.js; the assertion goes to the task with the decision (./routes.ts), and the
 * workflow verifies it (contract/decision.ts).
 */
import { createPublicKey } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Hono } from 'hono';
import { statementFor } from '../client';
import {
  MAX_CREDENTIAL_ID_BYTES,
  passkeyLine,
  passkeyPublicKey,
  readPasskeyLine,
  type Passkey,
} from '../config/schema';
import { statementChallenge } from '../contract/decision';
import {
  DecideRequestSchema,
  DECISIONS,
  GATES,
  type DecideRequest,
  type Decision,
  type Gate,
} from '../contract/messages';
import type { Env } from './session';
import { html, layout, type Html, type Viewer } from './views';

/** COSE algorithm numbers of the passkeys Baton verifies. */
const COSE: Record<number, Passkey['alg']> = { [-7]: 'es256', [-8]: 'ed25519' };

/** A form body as Hono parses it. */
export type FormBody = Record<string, string | File | (string | File)[]>;

const textOf = (body: FormBody, name: string): string | undefined => {
  const value = body[name];
  return typeof value === 'string' ? value : undefined;
};

/**
 * The decision a form asks for, by the person signed in (whatever the form says), or undefined
 * when the form is incomplete. The workflow judges the rest.
 */
export function requestFromForm(
  body: FormBody,
  viewer: Viewer,
): { id: string; request: DecideRequest } | undefined {
  const id = textOf(body, 'id');
  const decision = textOf(body, 'decision');
  const gate = textOf(body, 'gate');
  const comment = textOf(body, 'comment')?.trim();
  const rerun = ([] as unknown[]).concat(body.rerun ?? []).filter((v): v is string => typeof v === 'string');
  if (
    !id ||
    id.length > 1000 ||
    !(DECISIONS as readonly string[]).includes(decision ?? '') ||
    (gate && !(GATES as readonly string[]).includes(gate))
  )
    return undefined;
  return {
    id,
    request: {
      decision: decision as Decision,
      by: viewer.approver,
      ...(gate ? { gate: gate as Gate } : {}),
      ...(comment ? { comment } : {}),
      ...(decision === 'requestChanges' && rerun.length ? { rerunSteps: rerun } : {}),
    },
  };
}

/** The assertion fields ./passkey.js posts with a decision. */
const ASSERTION_FIELDS = ['credential', 'authenticatorData', 'clientDataJSON', 'signature'] as const;

/** Whether the form carries a passkey's assertion (its statement and the assertion's fields). */
export const carriesAssertion = (body: FormBody): boolean => textOf(body, 'statement') !== undefined;

/**
 * The signed decision a passkey form posts: the statement the inbox gave it to sign, with the
 * assertion as its signature; or why it cannot be sent. The statement must be the signed-in
 * person's and for the task the form names; everything else is the workflow's to verify.
 */
export function passkeyRequest(
  body: FormBody,
  viewer: Viewer,
): { id: string; request: DecideRequest } | { error: string } {
  const id = textOf(body, 'id');
  const text = textOf(body, 'statement') ?? '';
  let statement: unknown;
  try {
    statement = JSON.parse(text);
  } catch {
    return { error: 'the decision statement sent with the passkey was not JSON' };
  }
  const [credential, authenticatorData, clientDataJSON, value] = ASSERTION_FIELDS.map((f) => textOf(body, f));
  const parsed = DecideRequestSchema.safeParse({
    ...(statement as object),
    signature: { alg: 'webauthn', credential, authenticatorData, clientDataJSON, value },
  });
  if (!parsed.success)
    return {
      error: `the passkey decision is malformed: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    };
  if (parsed.data.by !== viewer.approver)
    return {
      error: `the statement is by "${parsed.data.by}", but you are signed in as "${viewer.approver}"`,
    };
  if (!id || parsed.data.workflowId !== id)
    return { error: 'the statement is for another task than the form' };
  return { id, request: parsed.data };
}

/**
 * The approvers.yaml line for a passkey the browser just created, from what ./passkey.js posts:
 * its credential id, public key (SPKI, as `getPublicKey()` gives it), COSE algorithm and client
 * data. The relying party is the host the passkey was created on (the client data's origin).
 */
export function enrolmentLine(
  body: FormBody,
  viewer: Viewer,
  today: string,
): { line: string } | { error: string } {
  const credential = textOf(body, 'credential') ?? '';
  const alg = COSE[Number(textOf(body, 'alg'))];
  if (!alg) return { error: 'the passkey uses an algorithm Baton does not verify (ES256 or Ed25519 only)' };
  let client: { type?: unknown; origin?: unknown };
  let jwk: { x?: string; y?: string };
  try {
    client = JSON.parse(
      Buffer.from(textOf(body, 'clientDataJSON') ?? '', 'base64url').toString('utf8'),
    ) as typeof client;
    const spki = Buffer.from(textOf(body, 'publicKey') ?? '', 'base64url');
    jwk = createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ format: 'jwk' });
  } catch {
    return { error: 'the browser sent a passkey this page cannot read (client data or public key)' };
  }
  if (client.type !== 'webauthn.create') return { error: 'the browser did not send a new passkey' };
  let rpId: string;
  try {
    rpId = new URL(String(client.origin)).hostname;
  } catch {
    return { error: 'the passkey was made for no origin this page can read' };
  }
  const raw =
    alg === 'es256'
      ? Buffer.concat([
          Buffer.from([4]),
          Buffer.from(jwk.x ?? '', 'base64url'),
          Buffer.from(jwk.y ?? '', 'base64url'),
        ])
      : Buffer.from(jwk.x ?? '', 'base64url');
  const publicKey = passkeyPublicKey(alg, new Uint8Array(raw));
  if (!publicKey || Buffer.from(credential, 'base64url').length > MAX_CREDENTIAL_ID_BYTES)
    return { error: 'the passkey is not one approvers.yaml can list' };
  const line = passkeyLine({ alg, rpId, credential, publicKey }, `${viewer.approver}-${today}`);
  const read = readPasskeyLine(line);
  return 'passkey' in read
    ? { line }
    : { error: `the passkey is not one approvers.yaml can list: ${read.error}` };
}

function enrolmentPage(viewer: Viewer): Html {
  return layout(
    'Passkeys',
    viewer,
    html`<article>
      <hgroup>
        <h1>Enrol a passkey</h1>
        <p>
          At gates of playbooks that require signed decisions, you decide with a passkey: your device signs
          the decision, and the task verifies it against the passkeys <code>approvers.yaml</code> lists for
          you.
        </p>
      </hgroup>
      <p>
        Create one here, then give the line this page prints to whoever reviews Baton's config: once committed
        under your entry (<code>passkeys:</code>) and deployed, tasks started after that accept it. The inbox
        never changes config itself.
      </p>
      <button type="button" id="passkey-create" data-csrf="${viewer.csrf}" data-approver="${viewer.approver}">
        Create a passkey
      </button>
      <div id="passkey-enrolment" aria-live="polite"></div>
    </article>`,
  );
}

/** What the enrolment page shows once the passkey is made: the line and where it goes. */
function enrolmentResult(viewer: Viewer, line: string): Html {
  return html`<article class="notice-accepted" role="status">
    <p><strong>Passkey created.</strong> Add this line under your entry in <code>approvers.yaml</code>:</p>
    <pre><code id="passkey-line">${line}</code></pre>
    <p>
      <small
        >As in: <code>- id: ${viewer.approver}</code> … <code>passkeys: ['…']</code>. Check it with
        <code>npm run config:check</code>.</small
      >
    </p>
  </article>`;
}

/** Adds the enrolment page and the statement route to `app`. */
export function usePasskeys(
  app: Hono<Env>,
  options: { client: Client; workerTimeoutMs: number; log: (line: string) => void },
): void {
  app.get('/passkey', (c) => c.html(enrolmentPage(c.get('viewer'))));

  app.post('/passkey/enrol', async (c) => {
    const viewer = c.get('viewer');
    const made = enrolmentLine(await c.req.parseBody(), viewer, new Date().toISOString().slice(0, 10));
    if ('error' in made) return c.html(html`<p class="notice-refused" role="alert">${made.error}</p>`, 400);
    options.log(`inbox: ${viewer.approver} enrolled a passkey (line printed for review)`);
    return c.html(enrolmentResult(viewer, made.line));
  });

  // The statement a passkey signs for a decision, and its challenge: the gate opening pending now.
  app.post('/task/statement', async (c) => {
    const form = requestFromForm(await c.req.parseBody({ all: true }), c.get('viewer'));
    if (!form) return c.json({ error: 'The decision form was incomplete.' }, 400);
    try {
      const statement = await statementFor(options.client, form.id, form.request, options.workerTimeoutMs);
      return c.json({ statement, challenge: statementChallenge(statement) });
    } catch (err) {
      return c.json({ error: (err as Error).message }, 409);
    }
  });
}
