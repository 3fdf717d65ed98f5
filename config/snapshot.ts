/** What a task carries from config: the parts it needs, frozen at its start. */
import type { SnapshotAgent } from './agents';
import type { Passkey } from './approvers';
import type { McpServers } from './mcp';
import type { Playbook, ResolvedGate } from './playbook';

/** Everything a task needs from config, frozen at its start. Small enough to live in workflow history. */
export interface ConfigSnapshot {
  /** sha256 over the canonical form of agents, approvers and playbooks, as `sha256:<hex>`. */
  digest: string;
  playbook: Playbook;
  lead: SnapshotAgent;
  /** The specialists the playbook allows, by id. */
  specialists: Record<string, SnapshotAgent>;
  /** The playbook's gates with approvers resolved to people at the task's start. */
  gates: { plan: ResolvedGate; report: ResolvedGate };
  /**
   * The MCP servers the lead and the specialists use, each with only the tools they name (URL, the
   * token's variable name, pins, approval): what the MCP activities check against. Absent when they
   * use none, and from snapshots taken before MCP.
   */
  mcpServers?: McpServers;
  /** Whether the task keeps Baton's search attributes current: a worker setting, fixed at start. */
  searchAttributes: boolean;
  /**
   * The raw Ed25519 public keys (hex, 64 digits) of each person the gates name who lists keys in
   * approvers.yaml (everyone's, when a gate admits `"*"`): what signed decisions are verified
   * against (contract/decision.ts). Absent from snapshots taken before decisions were signed.
   */
  approverKeys?: Record<string, string[]>;
  /**
   * The passkeys of the same people (approvers.yaml `passkeys:`), for decisions made in the inbox.
   * Present only when someone lists one; absent from snapshots taken before passkeys.
   */
  approverPasskeys?: Record<string, Passkey[]>;
  /**
   * The loading worker's Ed25519 signature over the rest of the snapshot (contract/children.ts,
   * `sealedText`), made with its publisher key: how a child workflow knows its input is a snapshot a
   * worker loaded. Absent when that worker has no publisher key, and from snapshots taken before.
   */
  seal?: SnapshotSeal;
}

/** A worker's seal on a config snapshot. */
export interface SnapshotSeal {
  alg: 'ed25519';
  /** The signing key's fingerprint as `ssh-keygen -l` prints it: `SHA256:<base64>`. */
  keyId: string;
  /** The signature, base64. */
  value: string;
}
