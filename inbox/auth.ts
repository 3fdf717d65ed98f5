/**
 * Who is deciding: approver tokens and sessions, the trusted-proxy header, and CSRF tokens.
 *
 * Design notes:
 * 1. Tokens are 32 random bytes; the file holds only their sha256, so a leaked file signs nobody
 *    in. A token is looked up by its hash (a map lookup reveals timing about the hash, never about
 *    a token, and a 256-bit token cannot be guessed anyway).
 * 2. Sessions live in memory: a restart signs everyone out, which is the safe direction. A session
 *    remembers the hash it was opened with and ends when that token leaves the file (revocation
 *    takes effect on the next request, without a restart).
 * 3. CSRF: cookies are SameSite=Strict and Hono's origin check runs on every form POST; on top, each
 *    form carries a token that is an HMAC of the session (or, behind a proxy, of the identity) under
 *    a key made at start, checked on every POST.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ApproversFileSchema } from '../config/schema';

/** Approver ids as config/approvers.yaml has them (ApproversFileSchema): no spaces, `*` or `:`. */
export const IDENTITY_PATTERN = /^[^\s*:]{1,200}$/;

const TOKEN_PREFIX = 'bti_';

/** A new random approver token (`bti_` and 43 base64url characters). */
export function newToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

/** How a token is stored in the tokens file: `sha256:<hex>`. */
export function hashToken(token: string): string {
  return `sha256:${createHash('sha256').update(token.trim(), 'utf8').digest('hex')}`;
}

const TokensFileSchema = z.record(
  z.string().regex(IDENTITY_PATTERN, 'must be an approver id (no spaces, "*" or ":")'),
  z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be "sha256:" and 64 lower-case hex digits'),
);

/**
 * The tokens file: approver id → `sha256:<hex>` of their token, as YAML (or JSON). Re-read when it
 * changes, so adding or revoking a token needs no restart; a file that became invalid keeps the
 * last valid contents and says why on the error log.
 */
export class TokenStore {
  #byHash = new Map<string, string>();
  #mtimeMs = -1;

  constructor(
    readonly file: string,
    private readonly warn: (line: string) => void = (line) => console.error(line),
  ) {
    this.#load(true);
  }

  /** Approver ids with a token. */
  get approvers(): string[] {
    return [...this.#byHash.values()];
  }

  /** The approver whose token has this hash, if it is (still) in the file. */
  approverOfHash(hash: string): string | undefined {
    this.#reloadIfChanged();
    return this.#byHash.get(hash);
  }

  #reloadIfChanged(): void {
    let mtimeMs: number;
    try {
      mtimeMs = statSync(this.file).mtimeMs;
    } catch (err) {
      // A file that disappeared revokes every token.
      if (this.#byHash.size)
        this.warn(`inbox: ${this.where()} cannot be read (${(err as Error).message}); nobody can sign in`);
      this.#byHash = new Map();
      this.#mtimeMs = -1;
      return;
    }
    if (mtimeMs === this.#mtimeMs) return;
    try {
      this.#load(false);
    } catch (err) {
      this.warn(`inbox: ${(err as Error).message}; keeping the tokens read before`);
      this.#mtimeMs = mtimeMs;
    }
  }

  where(): string {
    return `BATON_INBOX_TOKENS_FILE=${this.file}`;
  }

  #load(atStart: boolean): void {
    let text: string;
    let mtimeMs: number;
    try {
      mtimeMs = statSync(this.file).mtimeMs;
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      throw new Error(`${this.where()} cannot be read: ${(err as Error).message}`, { cause: err });
    }
    let data: unknown;
    try {
      data = parseYaml(text);
    } catch {
      // The parser's message may quote the file: say only what is wrong.
      throw new Error(
        `${this.where()} is not valid YAML or JSON; expected lines "<approver id>: sha256:<hex>"`,
      );
    }
    const parsed = TokensFileSchema.safeParse(data ?? {});
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`);
      throw new Error(`${this.where()}: ${problems.join('; ')}`);
    }
    const byHash = new Map<string, string>();
    for (const [approver, hash] of Object.entries(parsed.data)) {
      const other = byHash.get(hash);
      if (other !== undefined) {
        throw new Error(`${this.where()}: ${other} and ${approver} have the same token; give each their own`);
      }
      byHash.set(hash, approver);
    }
    if (atStart && byHash.size === 0) {
      throw new Error(
        `${this.where()} names no approver; add one with: npm run inbox -- new-token <approver id>`,
      );
    }
    this.#byHash = byHash;
    this.#mtimeMs = mtimeMs;
  }
}

/** Whether `file` lies inside `dir` (the tokens file must live outside the repository). */
export function isInside(file: string, dir: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

export interface Session {
  approver: string;
  tokenHash: string;
  expiresAt: number;
}

/** Sessions by id, in memory; ids are 32 random bytes. */
export class SessionStore {
  readonly #sessions = new Map<string, Session>();

  constructor(
    readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  open(approver: string, tokenHash: string): string {
    this.#sweep();
    const id = randomBytes(32).toString('base64url');
    this.#sessions.set(id, { approver, tokenHash, expiresAt: this.now() + this.ttlMs });
    return id;
  }

  get(id: string | undefined): Session | undefined {
    if (id === undefined) return undefined;
    const session = this.#sessions.get(id);
    if (session && session.expiresAt <= this.now()) {
      this.#sessions.delete(id);
      return undefined;
    }
    return session;
  }

  close(id: string | undefined): void {
    if (id !== undefined) this.#sessions.delete(id);
  }

  #sweep(): void {
    const now = this.now();
    for (const [id, s] of this.#sessions) if (s.expiresAt <= now) this.#sessions.delete(id);
  }
}

/** Constant-time equality of two strings (false when lengths differ). */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** CSRF tokens: an HMAC of what identifies the requester (session id, or identity behind a proxy). */
export class CsrfTokens {
  readonly #key = randomBytes(32);

  tokenFor(subject: string): string {
    return createHmac('sha256', this.#key).update(subject, 'utf8').digest('base64url');
  }

  check(subject: string, token: string | undefined): boolean {
    return token !== undefined && safeEqual(this.tokenFor(subject), token);
  }
}

/** Display names by approver id from `<configDir>/approvers.yaml`; empty when it cannot be read. */
export function loadPeople(configDir: string, warn: (line: string) => void): Map<string, string> {
  const file = path.join(configDir, 'approvers.yaml');
  try {
    const parsed = ApproversFileSchema.safeParse(parseYaml(readFileSync(file, 'utf8')));
    if (!parsed.success) {
      warn(`inbox: ${file} is invalid (npm run config:check says why); showing approver ids only`);
      return new Map();
    }
    return new Map(parsed.data.people.map((p) => [p.id, p.name]));
  } catch (err) {
    warn(`inbox: ${file} cannot be read (${(err as Error).message}); showing approver ids only`);
    return new Map();
  }
}
