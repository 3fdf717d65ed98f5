/**
 * Signed decisions, tried as an attacker would first: a claimed name without a key, a wrong key, a
 * decision replayed from another task, gate or older opening of the gate, one on a superseded plan,
 * a changed comment, an unsigned one — each refused by `verifyDecision` with a reason that says
 * which. Then the keys people really have: made by `ssh-keygen -t ed25519`, read from the file or
 * through ssh-agent, fingerprinted as `ssh-keygen -l` prints, listed in approvers.yaml (a bad line
 * is refused with its file and line), and `npm run baton -- sign` printing what verifies.
 */
import type { Client } from '@temporalio/client';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, snapshotFor } from '../activities/config';
import { PROJECT_ROOT } from '../activities/options';
import { runCli } from '../cli/baton';
import { signDecision, signedJson, signerFrom, type Signer } from '../cli/baton-sign';
import { readEd25519PublicKeyLine } from '../config/schema';
import {
  keyFingerprint,
  planSubject,
  statementBytes,
  verifyDecision,
  type DecisionStatement,
  type OpenGate,
  type SignedDecision,
} from '../contract/decision';
import { DecideRequestSchema, DecisionPayloadSchema, type TaskStatus } from '../contract/messages';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** A key pair made with node:crypto: a signer and its raw public key in hex. */
function nodeKey(): Signer & { hex: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = new Uint8Array(Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'));
  return {
    publicKey: raw,
    hex: hex(raw),
    sign: (message) => Promise.resolve(new Uint8Array(sign(null, message, privateKey))),
  };
}

const alice = nodeKey();
const bob = nodeKey();
const mallory = nodeKey();
const KEYS = { 'alice@example.com': [alice.hex], 'bob@example.com': [bob.hex] };

const PLAN = {
  rationale: 'Two angles.',
  steps: [{ id: 's1', agent: 'web', question: 'Q?', dependsOn: [], decompose: false }],
};
const OPEN: OpenGate = { workflowId: 'task-1', gate: 'plan', instance: 2, subject: planSubject(PLAN) };

/** `statement` (over {@link OPEN} unless overridden) signed by `key`. */
async function signed(key: Signer, statement: Partial<DecisionStatement> = {}): Promise<SignedDecision> {
  const s: DecisionStatement = {
    ...OPEN,
    decision: 'approve',
    by: 'alice@example.com',
    comment: 'Looks right.',
    at: '2026-12-06T12:00:00.000Z',
    ...statement,
  };
  const value = Buffer.from(await key.sign(statementBytes(s))).toString('base64');
  return { ...s, signature: { alg: 'ed25519', key: keyFingerprint(key.publicKey), value } };
}

describe('verifyDecision refuses what an attacker sends', () => {
  test('a claimed name whose person has no key in config', async () => {
    const d = await signed(mallory, { by: 'carol@example.com' });
    expect(verifyDecision(d, OPEN, KEYS)).toEqual({
      ok: false,
      reason: 'no key of "carol@example.com" matches: config lists none',
    });
  });

  test("a name that is an Object.prototype member finds no key (not Object's)", async () => {
    const d = await signed(mallory, { by: 'constructor' });
    expect(verifyDecision(d, OPEN, KEYS)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^no key of "constructor"/),
    });
  });

  test("someone else's key, naming alice", async () => {
    const d = await signed(mallory);
    expect(verifyDecision(d, OPEN, KEYS)).toEqual({
      ok: false,
      reason: `no key of "alice@example.com" matches: the signing key ${keyFingerprint(mallory.publicKey)} is not one of them`,
    });
  });

  test("alice's key fingerprint on someone else's signature", async () => {
    const d = await signed(mallory);
    const forged = { ...d, signature: { ...d.signature, key: keyFingerprint(alice.publicKey) } };
    expect(verifyDecision(forged, OPEN, KEYS)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^bad signature/),
    });
  });

  test.each([
    ['the comment', { comment: 'Approved, and also run rm -rf.' }],
    ['the decision', { decision: 'reject' as const }],
    ['the signer', { by: 'bob@example.com' }],
    ['the opening of the gate', { instance: 3 }],
  ])('a signed decision with %s changed after signing', async (_what, change) => {
    const d = await signed(alice);
    expect(verifyDecision({ ...d, ...change }, { ...OPEN, ...change }, KEYS)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^(bad signature|no key of "bob@example.com")/),
    });
  });

  test('a decision signed for another task', async () => {
    const d = await signed(alice, { workflowId: 'task-0' });
    expect(verifyDecision(d, OPEN, KEYS)).toEqual({
      ok: false,
      reason: 'signed for another task (task-0), not task-1',
    });
  });

  test('a decision signed for another gate', async () => {
    const d = await signed(alice, { gate: 'report' });
    expect(verifyDecision(d, OPEN, KEYS)).toEqual({
      ok: false,
      reason: 'signed for another gate (report); the pending gate is plan',
    });
  });

  test('a decision signed for an older opening of the gate', async () => {
    const d = await signed(alice, { instance: 1 });
    expect(verifyDecision(d, OPEN, KEYS)).toEqual({
      ok: false,
      reason: 'signed for an older instance of the plan gate (1; open now: 2)',
    });
  });

  test('a decision on a superseded plan', async () => {
    const old = planSubject({ ...PLAN, rationale: 'One angle.' });
    const d = await signed(alice, { subject: old });
    expect(verifyDecision(d, OPEN, KEYS)).toEqual({
      ok: false,
      reason: `signed for another plan (superseded): ${old}, while the plan open for decision is ${OPEN.subject}`,
    });
  });

  test('an unsigned decision, and a signature without the statement it signs', async () => {
    expect(verifyDecision({ decision: 'approve', by: 'alice@example.com' }, OPEN, KEYS)).toEqual({
      ok: false,
      reason: 'unsigned: the decision by "alice@example.com" carries no signature',
    });
    const partial = { ...(await signed(alice)), instance: undefined, subject: undefined };
    expect(verifyDecision(partial, OPEN, KEYS)).toMatchObject({
      ok: false,
      reason: 'the signed decision does not say instance, subject: not a decision statement',
    });
  });

  test('a garbled signature value is a bad signature, not a crash', async () => {
    const d = await signed(alice);
    const garbled = { ...d, signature: { ...d.signature, value: '!!not base64!!' } };
    expect(verifyDecision(garbled, OPEN, KEYS)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^bad signature/),
    });
  });

  test('accepts a decision signed by the person it names, for the gate opening now pending', async () => {
    expect(verifyDecision(await signed(alice), OPEN, KEYS)).toEqual({
      ok: true,
      person: 'alice@example.com',
    });
    const byBob = await signed(bob, {
      by: 'bob@example.com',
      comment: undefined,
      decision: 'requestChanges',
    });
    expect(verifyDecision(byBob, OPEN, KEYS)).toEqual({ ok: true, person: 'bob@example.com' });
  });
});

describe('the decision statement', () => {
  test('is the prefix and the canonical JSON of exactly its fields, absent ones left out', () => {
    const s: DecisionStatement & { extra?: string } = {
      by: 'alice@example.com',
      at: '2026-12-06T12:00:00.000Z',
      workflowId: 'task-1',
      gate: 'report',
      instance: 3,
      subject: `sha256:${'ab'.repeat(32)}`,
      decision: 'requestChanges',
      comment: 'More on B',
      rerunSteps: ['s2'],
      extra: 'not signed',
    };
    expect(Buffer.from(statementBytes(s)).toString('utf8')).toBe(
      'baton-decision-v1\n{"at":"2026-12-06T12:00:00.000Z","by":"alice@example.com","comment":"More on B",' +
        `"decision":"requestChanges","gate":"report","instance":3,"rerunSteps":["s2"],"subject":"sha256:${'ab'.repeat(32)}","workflowId":"task-1"}`,
    );
  });

  test("planSubject is sha256 of the plan's canonical JSON, whatever the key order", () => {
    const reordered = { steps: PLAN.steps, rationale: PLAN.rationale };
    expect(planSubject(reordered)).toBe(OPEN.subject);
    expect(OPEN.subject).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  test("the payload schemas accept a signed decision, and today's unsigned payloads still", async () => {
    const d = await signed(alice);
    expect(DecideRequestSchema.parse(d)).toEqual(d);
    const payload: unknown = JSON.parse(signedJson(d, true));
    expect(payload).not.toHaveProperty('decision');
    expect(DecisionPayloadSchema.parse(payload)).toEqual(payload);
    expect(DecisionPayloadSchema.parse({ by: 'alice' })).toEqual({ by: 'alice' });
    const wrong = { ...(payload as object), signature: { ...d.signature, alg: 'rsa' } };
    expect(DecisionPayloadSchema.safeParse(wrong).success).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Real keys: ssh-keygen, ssh-agent, approvers.yaml, the CLI

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-keys-'));
});
afterAll(() => fs.rm(tmp, { recursive: true, force: true }));

/** `ssh-keygen -t ed25519` into `<tmp>/<name>` (passphrase: none unless given); the path. */
function sshKeygen(name: string, passphrase = ''): string {
  const file = path.join(tmp, name);
  const r = spawnSync('ssh-keygen', [
    '-q',
    '-t',
    'ed25519',
    '-N',
    passphrase,
    '-C',
    `${name}@test`,
    '-f',
    file,
  ]);
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr.toString()}`);
  return file;
}

describe('keys made by ssh-keygen', () => {
  test('the private key signs, its .pub line reads to the same key, and fingerprints match ssh-keygen -l', async () => {
    const file = sshKeygen('alice');
    const line = await fs.readFile(`${file}.pub`, 'utf8');
    const read = readEd25519PublicKeyLine(line);
    if (!('key' in read)) throw new Error(read.error);
    const printed = spawnSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${file}.pub`]).stdout.toString();
    expect(keyFingerprint(read.key)).toBe(printed.split(' ')[1]);

    const signer = await signerFrom({ key: file }, {})!;
    expect(hex(signer.publicKey)).toBe(hex(read.key));
    const d = await signed(signer);
    expect(verifyDecision(d, OPEN, { 'alice@example.com': [hex(read.key)] })).toEqual({
      ok: true,
      person: 'alice@example.com',
    });
  });

  test('BATON_APPROVER_KEY names the key when --key does not', async () => {
    const file = sshKeygen('env-key');
    const signer = await signerFrom({}, { BATON_APPROVER_KEY: file })!;
    expect(signer.publicKey).toHaveLength(32);
    expect(signerFrom({}, {})).toBeUndefined();
  });

  test('an encrypted key is refused with what to do instead; a missing file and an RSA key say so', async () => {
    const file = sshKeygen('locked', 'a passphrase');
    await expect(signerFrom({ key: file }, {})!).rejects.toThrow(
      /encrypted .*ssh-agent.*ssh-keygen -p -N ''/,
    );
    await expect(signerFrom({ key: path.join(tmp, 'nowhere') }, {})!).rejects.toThrow(/cannot read the key/);
    const rsa = path.join(tmp, 'rsa');
    spawnSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-f', rsa]);
    await expect(signerFrom({ key: rsa }, {})!).rejects.toThrow(/a ssh-rsa key, not ssh-ed25519/);
  });

  test('ssh-agent signs with a key it holds (a passphrase-protected one too)', async () => {
    const file = sshKeygen('agent-key', 'a passphrase');
    const socket = path.join(tmp, 'agent.sock');
    const agent: ChildProcess = spawn('ssh-agent', ['-D', '-a', socket], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      // ssh-agent prints its environment once it listens; the socket file exists a moment earlier
      // (bound, not yet listening), when a connection is still refused.
      await new Promise<void>((resolve, reject) => {
        let out = '';
        agent.stdout!.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('SSH_AUTH_SOCK=')) resolve();
        });
        agent.once('exit', (code) => reject(new Error(`ssh-agent exited (code ${code}) before it listened`)));
      });
      const env = { SSH_AUTH_SOCK: socket };
      await expect(signerFrom({ agent: true }, env)!).rejects.toThrow(/holds no Ed25519 key/);
      // ssh-add reads the passphrase from SSH_ASKPASS when it has no terminal.
      const askpass = path.join(tmp, 'askpass.sh');
      await fs.writeFile(askpass, "#!/bin/sh\necho 'a passphrase'\n", { mode: 0o700 });
      const added = spawnSync('ssh-add', [file], {
        env: { ...process.env, ...env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      expect(added.stderr.toString()).toMatch(/Identity added/);
      const signer = await signerFrom({ agent: true, key: file }, env)!;
      const pub = readEd25519PublicKeyLine(await fs.readFile(`${file}.pub`, 'utf8'));
      if (!('key' in pub)) throw new Error(pub.error);
      expect(hex(signer.publicKey)).toBe(hex(pub.key));
      expect(verifyDecision(await signed(signer), OPEN, { 'alice@example.com': [hex(pub.key)] })).toEqual({
        ok: true,
        person: 'alice@example.com',
      });
      const other = sshKeygen('not-in-agent');
      await expect(signerFrom({ agent: true, key: `${other}.pub` }, env)!).rejects.toThrow(
        /does not hold the key/,
      );
    } finally {
      agent.kill();
    }
  });
});

describe('keys in approvers.yaml', () => {
  async function configWith(approvers: string): Promise<string> {
    const dir = path.join(await fs.mkdtemp(path.join(tmp, 'cfg-')), 'config');
    await fs.cp(path.join(PROJECT_ROOT, 'config'), dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'approvers.yaml'), approvers);
    return dir;
  }
  const people = (alicesKeys: string[], bobsKeys: string[] = []): string =>
    [
      'people:',
      '  - id: alice@example.com',
      '    name: Alice',
      ...(alicesKeys.length ? ['    keys:', ...alicesKeys.map((k) => `      - ${JSON.stringify(k)}`)] : []),
      '  - id: bob@example.com',
      '    name: Bob',
      ...(bobsKeys.length ? ['    keys:', ...bobsKeys.map((k) => `      - ${JSON.stringify(k)}`)] : []),
      '  - id: carol@example.com',
      '    name: Carol',
      'groups:',
      '  - id: editors',
      '    members: [alice@example.com, bob@example.com]',
      '  - id: research-leads',
      '    members: [carol@example.com]',
      '',
    ].join('\n');

  test('a line that is not an Ed25519 OpenSSH key is refused with its file and line', async () => {
    const good = (await fs.readFile(`${sshKeygen('cfg-good')}.pub`, 'utf8')).trim();
    const rsa = path.join(tmp, 'cfg-rsa');
    spawnSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-f', rsa]);
    const rsaLine = (await fs.readFile(`${rsa}.pub`, 'utf8')).trim();
    const [type, data] = good.split(' ');
    const cases: [string, RegExp][] = [
      ['ssh-ed25519 not-base64!', /not valid base64/],
      [`${type} ${data!.slice(0, 40)}`, /not an Ed25519 public key|not valid base64/],
      [`ssh-ed25519 ${rsaLine.split(' ')[1]}`, /not an Ed25519 public key/],
      [rsaLine, /must be an Ed25519 public key in OpenSSH format/],
    ];
    for (const [line, reason] of cases) {
      const dir = await configWith(people([good, line]));
      const err = await loadConfig(dir).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      const message = (err as ConfigError).message;
      expect(message).toMatch(reason);
      expect(message).toContain('people[0].keys[1]');
      expect(message).toContain('(config/approvers.yaml:6:9)');
    }
  });

  test('one key listed for two people is refused: its holder could decide as both', async () => {
    const line = (await fs.readFile(`${sshKeygen('shared')}.pub`, 'utf8')).trim();
    await expect(loadConfig(await configWith(people([line], [line])))).rejects.toThrow(
      /people\[1\]\.keys\[0\]: this key is already listed for "alice@example.com"/,
    );
  });

  test("a task's snapshot carries the raw keys (hex) of the people its gates name", async () => {
    const file = sshKeygen('snap');
    const line = (await fs.readFile(`${file}.pub`, 'utf8')).trim();
    const config = await loadConfig(await configWith(people([line])));
    const read = readEd25519PublicKeyLine(line);
    if (!('key' in read)) throw new Error(read.error);
    expect(snapshotFor(config, 'team-review')?.approverKeys).toEqual({
      'alice@example.com': [hex(read.key)],
    });
  });
});

describe('npm run baton -- sign', () => {
  /** A client whose task answers `status` with `pendingGate` (enough for signing; nothing is sent). */
  const clientWith = (pendingGate: TaskStatus['pendingGate']): Client =>
    ({
      withDeadline: (_deadline: number, fn: () => unknown) => fn(),
      options: { namespace: 'default' },
      workflow: {
        getHandle: () => ({ query: () => Promise.resolve({ phase: 'awaiting-plan-approval', pendingGate }) }),
      },
    }) as unknown as Client;
  const gate = {
    gate: 'plan' as const,
    since: '2026-12-06T12:00:00.000Z',
    stage: 'primary' as const,
    approvers: ['alice@example.com'],
    quorum: 1,
    approvals: [],
    reminders: [],
  };

  async function run(argv: string[], client: Client, env: NodeJS.ProcessEnv = {}) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(argv, { client, out: (l) => out.push(l), err: (l) => err.push(l), env });
    return { code, out, err };
  }

  test('prints JSON that verifies for the open gate, for the Update and (with --signal) for a signal', async () => {
    const file = sshKeygen('cli');
    const pub = readEd25519PublicKeyLine(await fs.readFile(`${file}.pub`, 'utf8'));
    if (!('key' in pub)) throw new Error(pub.error);
    const client = clientWith({ ...gate, instance: 2, subject: OPEN.subject });
    const comment = 'Fine — ship it ‮evil';
    const r = await run(
      ['sign', 'task-1', '--decision', 'request-changes', '--comment', comment, '--key', file],
      client,
      { BATON_APPROVER: 'alice@example.com' },
    );
    expect(r).toMatchObject({ code: 0, err: [] });
    expect(r.out).toHaveLength(1);
    expect(r.out[0]).toMatch(/^[\x20-\x7e]+$/);
    const payload = DecideRequestSchema.parse(JSON.parse(r.out[0]!));
    expect(payload).toMatchObject({
      decision: 'requestChanges',
      comment,
      by: 'alice@example.com',
      instance: 2,
    });
    const keys = { 'alice@example.com': [hex(pub.key)] };
    expect(verifyDecision(payload, OPEN, keys)).toEqual({ ok: true, person: 'alice@example.com' });

    const s = await run(
      ['sign', 'task-1', '--decision', 'approve', '--signal', '--key', file, '--as', 'alice@example.com'],
      client,
    );
    const signal = DecisionPayloadSchema.parse(JSON.parse(s.out[0]!));
    expect(signal).not.toHaveProperty('decision');
    expect(verifyDecision({ ...signal, decision: 'approve' }, OPEN, keys)).toEqual({
      ok: true,
      person: 'alice@example.com',
    });
    expect(verifyDecision({ ...signal, decision: 'reject' }, OPEN, keys)).toMatchObject({ ok: false });
  });

  test('needs a key and a decision; refuses clearly when the task cannot say which gate opening is pending', async () => {
    const file = sshKeygen('cli-old');
    const old = clientWith(gate);
    expect(await run(['sign', 'task-1', '--decision', 'approve'], old)).toMatchObject({
      code: 2,
      err: expect.arrayContaining([
        'error: sign needs a key: --key <private key file>, $BATON_APPROVER_KEY or --agent',
      ]),
    });
    expect((await run(['sign', 'task-1', '--key', file], old)).code).toBe(2);
    expect((await run(['sign', 'task-1', '--decision', 'veto', '--key', file], old)).code).toBe(2);
    const r = await run(['approve', 'task-1', '--key', file], old);
    expect(r.code).toBe(1);
    expect(r.err.join('\n')).toMatch(
      /does not say which opening of its plan gate is pending.*predates signed decisions/,
    );
    const other = await run(
      ['approve', 'task-1', '--gate', 'report', '--key', file],
      clientWith({ ...gate, instance: 1, subject: OPEN.subject }),
    );
    expect(other.err.join('\n')).toMatch(/the report gate is not pending; the pending gate is plan/);
  });

  test('signDecision signs the trimmed name the workflow will read', async () => {
    const d = await signDecision(
      clientWith({ ...gate, instance: 2, subject: OPEN.subject }),
      'task-1',
      { decision: 'approve', by: ' alice@example.com ' },
      alice,
    );
    expect(d.by).toBe('alice@example.com');
    expect(verifyDecision(DecideRequestSchema.parse(JSON.parse(signedJson(d, false))), OPEN, KEYS)).toEqual({
      ok: true,
      person: 'alice@example.com',
    });
  });
});
