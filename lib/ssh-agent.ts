/**
 * Signing through ssh-agent, so a passphrase-protected key never has to be decrypted on disk: the
 * agent protocol's REQUEST_IDENTITIES and SIGN_REQUEST over the agent's unix socket
 * (`SSH_AUTH_SOCK`; draft-miller-ssh-agent). For Ed25519 the agent signs the message bytes
 * themselves, as a key file would.
 */
import { createConnection } from 'node:net';
import { readString, sshString } from './ssh-key';

const FAILURE = 5;
const REQUEST_IDENTITIES = 11;
const IDENTITIES_ANSWER = 12;
const SIGN_REQUEST = 13;
const SIGN_RESPONSE = 14;

/** An Ed25519 key the agent holds: its OpenSSH blob (how the agent names it) and raw public key. */
export interface AgentKey {
  blob: Uint8Array;
  publicKey: Uint8Array;
}

/** Sends one request to the agent at `socket` and returns its answer's body (type byte first). */
function request(socket: string, type: number, body: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket);
    let received = Buffer.alloc(0);
    conn.on('error', (err) => reject(new Error(`ssh-agent at ${socket}: ${err.message}`, { cause: err })));
    conn.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 4 && received.length >= 4 + received.readUInt32BE(0)) {
        conn.end();
        resolve(received.subarray(4, 4 + received.readUInt32BE(0)));
      }
    });
    conn.on('end', () => reject(new Error(`ssh-agent at ${socket} closed the connection`)));
    conn.write(sshString(Buffer.concat([Buffer.from([type]), body])));
  });
}

/** The Ed25519 keys the agent at `socket` holds. */
export async function agentKeys(socket: string): Promise<AgentKey[]> {
  const answer = await request(socket, REQUEST_IDENTITIES, Buffer.alloc(0));
  if (answer[0] !== IDENTITIES_ANSWER) throw new Error('ssh-agent refused to list its keys');
  const keys: AgentKey[] = [];
  let at = 5;
  for (let n = answer.readUInt32BE(1); n > 0; n--) {
    let blob: Buffer;
    [blob, at] = readString(answer, at);
    [, at] = readString(answer, at); // comment
    const [type, next] = readString(blob, 0);
    const [raw] = readString(blob, next);
    if (type.toString() === 'ssh-ed25519' && raw.length === 32) keys.push({ blob, publicKey: raw });
  }
  return keys;
}

/** The agent's Ed25519 signature of `message` with the key `blob`. */
export async function agentSign(socket: string, blob: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
  const body = Buffer.concat([sshString(blob), sshString(message), Buffer.alloc(4)]); // flags: 0
  const answer = await request(socket, SIGN_REQUEST, body);
  if (answer[0] === FAILURE) throw new Error('ssh-agent refused to sign (a confirmation declined?)');
  if (answer[0] !== SIGN_RESPONSE) throw new Error(`ssh-agent: unexpected answer ${answer[0]}`);
  const [signature] = readString(answer, 1);
  const [type, at] = readString(signature, 0);
  const [value] = readString(signature, at);
  if (type.toString() !== 'ssh-ed25519' || value.length !== 64)
    throw new Error('ssh-agent: not an Ed25519 signature');
  return new Uint8Array(value);
}
