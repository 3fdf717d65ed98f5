/*
 * The inbox's passkey script (served as /assets/passkey.js; no build step, no inline script):
 *
 * - on the enrolment page, "Create a passkey" makes a WebAuthn credential for this host (the
 *   relying party id) and posts its public key to /passkey/enrol, which answers with the line for
 *   approvers.yaml;
 * - on a task whose gate needs signed decisions, the decision form asks /task/statement for the
 *   statement to sign and its challenge, has the passkey sign it (navigator.credentials.get), and
 *   posts the assertion with the statement to /task/decide; the task verifies it.
 *
 * Answers are HTML the server rendered (escaped and sanitized there); errors here are set as text.
 */
/* global document, navigator, fetch, location, crypto, htmx, URLSearchParams, FormData, btoa, atob */
'use strict';

const toBase64url = (buffer) =>
  btoa(String.fromCharCode(...new Uint8Array(buffer)))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');

const fromBase64url = (text) =>
  Uint8Array.from(atob(text.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));

function showError(target, message) {
  const p = document.createElement('p');
  p.className = 'notice-refused';
  p.setAttribute('role', 'alert');
  p.textContent = message;
  target.replaceChildren(p);
}

async function enrol(button) {
  const out = document.getElementById('passkey-enrolment');
  try {
    const credential = await navigator.credentials.create({
      publicKey: {
        rp: { id: location.hostname, name: 'Baton inbox' },
        user: {
          id: crypto.getRandomValues(new Uint8Array(16)),
          name: button.dataset.approver,
          displayName: button.dataset.approver,
        },
        // Nothing is verified against it: the line is reviewed before any task trusts the key.
        challenge: crypto.getRandomValues(new Uint8Array(32)),
        pubKeyCredParams: [
          { type: 'public-key', alg: -7 },
          { type: 'public-key', alg: -8 },
        ],
        authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
        attestation: 'none',
      },
    });
    const response = credential.response;
    const body = new URLSearchParams({
      _csrf: button.dataset.csrf,
      credential: toBase64url(credential.rawId),
      publicKey: toBase64url(response.getPublicKey()),
      alg: String(response.getPublicKeyAlgorithm()),
      clientDataJSON: toBase64url(response.clientDataJSON),
    });
    const answer = await fetch('/passkey/enrol', { method: 'POST', body });
    out.innerHTML = await answer.text();
  } catch (err) {
    showError(out, `No passkey was created: ${err.message}`);
  }
}

async function decideWithPasskey(form, submitter) {
  const out = document.getElementById('decision-result');
  try {
    const fields = new URLSearchParams(new FormData(form));
    fields.set('decision', submitter.value);
    const asked = await fetch('/task/statement', { method: 'POST', body: fields });
    const { statement, challenge, error } = await asked.json();
    if (error) return showError(out, `Nothing was sent: ${error}`);
    const assertion = await navigator.credentials.get({
      publicKey: {
        challenge: fromBase64url(challenge),
        rpId: location.hostname,
        userVerification: 'preferred',
      },
    });
    const response = assertion.response;
    fields.set('statement', JSON.stringify(statement));
    fields.set('credential', toBase64url(assertion.rawId));
    fields.set('authenticatorData', toBase64url(response.authenticatorData));
    fields.set('clientDataJSON', toBase64url(response.clientDataJSON));
    fields.set('signature', toBase64url(response.signature));
    const answer = await fetch('/task/decide', {
      method: 'POST',
      body: fields,
      headers: { 'HX-Request': 'true' },
    });
    out.innerHTML = await answer.text();
    htmx.trigger(document.body, 'baton-refresh');
  } catch (err) {
    showError(out, `Nothing was sent: the passkey did not sign (${err.message})`);
  }
}

document.addEventListener('click', (event) => {
  if (event.target.id === 'passkey-create') void enrol(event.target);
});

document.addEventListener('submit', (event) => {
  const form = event.target;
  if (!form.matches('form[data-sign="passkey"]')) return;
  event.preventDefault();
  void decideWithPasskey(form, event.submitter);
});
