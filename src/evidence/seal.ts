/**
 * The seal binds manifest.json and custody.json; optionally signed with Ed25519.
 *
 * @module
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { ConfigError } from '../errors.js';

/** The exact bytes an Ed25519 seal signature covers. */
export function sealPayload(acquisitionId: string, manifestSha256: string, custodySha256: string): Buffer {
  return Buffer.from(
    `eks-forensics-seal-v1\nacquisition ${JSON.stringify(acquisitionId)}\nmanifest.json ${manifestSha256}\ncustody.json ${custodySha256}\n`,
    'utf8',
  );
}

/** Parses a private key and checks it is Ed25519. @throws ConfigError */
export function toEd25519PrivateKey(key: KeyObject | string): KeyObject {
  let k: KeyObject;
  try {
    k = typeof key === 'string' ? createPrivateKey(key) : key;
  } catch (cause) {
    throw new ConfigError('signingKey is not a readable private key; pass an Ed25519 KeyObject or PEM', {
      cause,
    });
  }
  if (k.type !== 'private' || k.asymmetricKeyType !== 'ed25519') {
    throw new ConfigError(
      `signingKey must be an Ed25519 private key (got ${k.asymmetricKeyType ?? k.type}); create one with crypto.generateKeyPairSync('ed25519')`,
    );
  }
  return k;
}

/** Parses a public key (or derives it from a private key) and checks it is Ed25519. @throws ConfigError */
export function toEd25519PublicKey(key: KeyObject | string): KeyObject {
  let k: KeyObject;
  try {
    k = typeof key === 'string' ? createPublicKey(key) : key.type === 'private' ? createPublicKey(key) : key;
  } catch (cause) {
    throw new ConfigError('publicKey is not a readable public key; pass an Ed25519 KeyObject or PEM', {
      cause,
    });
  }
  if (k.asymmetricKeyType !== 'ed25519') {
    throw new ConfigError(`publicKey must be an Ed25519 key (got ${k.asymmetricKeyType ?? k.type})`);
  }
  return k;
}

/** SHA-256 (hex) of a public key's SPKI DER encoding. */
export function publicKeyFingerprint(key: KeyObject): string {
  return createHash('sha256')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

/** Signs the seal payload. */
export function signSeal(key: KeyObject, payload: Buffer): { publicKeySha256: string; value: string } {
  return {
    publicKeySha256: publicKeyFingerprint(createPublicKey(key)),
    value: sign(null, payload, key).toString('base64'),
  };
}

/** Checks a seal signature. */
export function verifySeal(key: KeyObject, payload: Buffer, signatureB64: string): boolean {
  try {
    return verify(null, payload, key, Buffer.from(signatureB64, 'base64'));
  } catch {
    return false;
  }
}
