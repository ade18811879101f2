import { createHash, randomBytes } from 'node:crypto';

/** Opaque secrets handed to users: `berth_<kind>_<43 chars>`; only their SHA-256 is stored. */
export function newSecret(kind: 'pat' | 'ses' | 'boot' | 'shr'): {
  secret: string;
  hash: Buffer;
  prefix: string;
} {
  const secret = `berth_${kind}_${randomBytes(32).toString('base64url')}`;
  return { secret, hash: sha256(secret), prefix: secret.slice(0, 14) };
}

export function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
