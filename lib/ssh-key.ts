/**
 * Ed25519 private keys as people have them: the files `ssh-keygen -t ed25519` writes (the
 * `openssh-key-v1` format, which node:crypto cannot read) or PKCS#8 PEM, read into a node:crypto
 * key that signs. Used by `npm run baton` to sign decisions (cli/baton-sign.ts).
 *
 * The OpenSSH format is read here rather than with a package: the one that reads it, `sshpk`, brings
 * nine dependencies (tweetnacl, jsbn, asn1…) for what is, unencrypted, a few length-prefixed fields
 * (OpenSSH's PROTOCOL.key). Encrypted keys are refused with what to do instead.
 */
import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';

/** A private key that signs, and its raw 32-byte public key. */
export interface SigningKey {
  privateKey: KeyObject;
  publicKey: Uint8Array;
}

const MAGIC = 'openssh-key-v1\0';

/** `bytes` as an SSH wire-format string: a 4-byte big-endian length, then the bytes (RFC 4251). */
export function sshString(bytes: Uint8Array): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** Reads one SSH wire-format string at `at`: its bytes, and where the next field starts. */
export function readString(buf: Buffer, at: number): [Buffer, number] {
  if (at + 4 > buf.length) throw new Error('truncated');
  const end = at + 4 + buf.readUInt32BE(at);
  if (end > buf.length) throw new Error('truncated');
  return [buf.subarray(at + 4, end), end];
}

/** The Ed25519 key of an unencrypted `openssh-key-v1` file. @throws Error saying what is wrong */
function openSshPrivateKey(text: string): KeyObject {
  const body = text.replace(/-----(BEGIN|END) OPENSSH PRIVATE KEY-----/g, '').replace(/\s+/g, '');
  const buf = Buffer.from(body, 'base64');
  if (buf.subarray(0, MAGIC.length).toString('latin1') !== MAGIC)
    throw new Error('not an OpenSSH private key');
  const [cipher, afterCipher] = readString(buf, MAGIC.length);
  if (cipher.toString() !== 'none') {
    throw new Error(
      "the key is encrypted (it has a passphrase): sign through ssh-agent (--agent), or use an unencrypted copy (cp <key> <copy> && ssh-keygen -p -N '' -f <copy>)",
    );
  }
  const [, afterKdf] = readString(buf, afterCipher); // kdf name
  const [, afterKdfOptions] = readString(buf, afterKdf); // kdf options
  if (buf.readUInt32BE(afterKdfOptions) !== 1) throw new Error('expected exactly one key in the file');
  const [, afterPublic] = readString(buf, afterKdfOptions + 4); // the public key blob
  const [secrets] = readString(buf, afterPublic);
  // Two equal check integers (they differ when a passphrase was wrong), then type, public, private.
  if (secrets.readUInt32BE(0) !== secrets.readUInt32BE(4))
    throw new Error('corrupt key (check integers differ)');
  const [type, afterType] = readString(secrets, 8);
  if (type.toString() !== 'ssh-ed25519') throw new Error(`a ${type.toString()} key, not ssh-ed25519`);
  const [pub, afterPub] = readString(secrets, afterType);
  const [secret] = readString(secrets, afterPub); // the 32-byte seed followed by the public key
  if (pub.length !== 32 || secret.length !== 64) throw new Error('malformed Ed25519 key');
  return createPrivateKey({
    format: 'jwk',
    key: {
      kty: 'OKP',
      crv: 'Ed25519',
      d: secret.subarray(0, 32).toString('base64url'),
      x: pub.toString('base64url'),
    },
  });
}

/**
 * Reads an Ed25519 private key's text: OpenSSH (`-----BEGIN OPENSSH PRIVATE KEY-----`, unencrypted)
 * or PKCS#8 PEM. `where` names the key in errors; its content never appears in them.
 * @throws Error saying what is wrong
 */
export function readSigningKey(text: string, where: string): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = text.includes('OPENSSH PRIVATE KEY') ? openSshPrivateKey(text) : createPrivateKey(text);
  } catch (err) {
    throw new Error(`${where}: not a usable private key: ${(err as Error).message}`, { cause: err });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new Error(
      `${where}: a ${privateKey.asymmetricKeyType ?? 'unknown'} key; it must be Ed25519 (ssh-keygen -t ed25519)`,
    );
  }
  const x = createPublicKey(privateKey).export({ format: 'jwk' }).x ?? '';
  return { privateKey, publicKey: new Uint8Array(Buffer.from(x, 'base64url')) };
}

/** The Ed25519 signature of `message` by `key`. */
export const signWith = (key: SigningKey, message: Uint8Array): Uint8Array =>
  new Uint8Array(sign(null, message, key.privateKey));
