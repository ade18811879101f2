import { randomUUID } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, type JWK, type SignJWT } from 'jose';
import { z } from 'zod';

const PrivateJwk = z
  .object({
    kty: z.literal('OKP'),
    crv: z.literal('Ed25519'),
    x: z.string(),
    d: z.string(),
    kid: z.string().min(1),
  })
  .passthrough();
const KeyList = z.array(PrivateJwk).min(1);

/** What jose signs with (a WebCrypto key); named without the DOM lib. */
export type PrivateKey = Parameters<SignJWT['sign']>[0];

export interface SigningKey {
  kid: string;
  privateKey: PrivateKey;
  publicJwk: JWK;
}

export interface KeySet {
  /** Signs new tokens: the first key of the list. */
  active: SigningKey;
  /** All published in the JWKS, so tokens signed by a retiring key still verify. */
  all: SigningKey[];
}

export async function newPrivateJwk(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  return { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: 'EdDSA', use: 'sig' };
}

async function toSigningKey(jwk: z.infer<typeof PrivateJwk>): Promise<SigningKey> {
  const privateKey = await importJWK({ ...jwk, alg: 'EdDSA' }, 'EdDSA');
  const { d: _d, ...pub } = jwk;
  return {
    kid: jwk.kid,
    privateKey,
    publicJwk: { kty: pub.kty, crv: pub.crv, x: pub.x, kid: jwk.kid, alg: 'EdDSA', use: 'sig' },
  };
}

/**
 * The control plane's signing keys: from BERTH_SIGNING_KEYS when the operator provides them
 * (required for several replicas), else from a 0600 file under the data dir, created with one
 * fresh Ed25519 key on first start. Rotation: put a new key first, keep the old one after it
 * until tokens it signed have expired (minutes), then drop it.
 */
export async function loadKeys(opts: { inline?: string; file?: string; dataDir: string }): Promise<KeySet> {
  let list: z.infer<typeof KeyList>;
  if (opts.inline) {
    const parsed = KeyList.safeParse(JSON.parse(opts.inline));
    if (!parsed.success)
      throw new Error('BERTH_SIGNING_KEYS must be a JSON array of Ed25519 private JWKs with a kid');
    list = parsed.data;
  } else {
    const file = opts.file ?? join(opts.dataDir, 'keys', 'signing-keys.json');
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      text = undefined;
    }
    if (text === undefined) {
      list = KeyList.parse([await newPrivateJwk()]);
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(list, null, 2), { mode: 0o600 });
      await chmod(tmp, 0o600);
      await rename(tmp, file);
    } else {
      const parsed = KeyList.safeParse(JSON.parse(text));
      if (!parsed.success) throw new Error(`${file} is not a JSON array of Ed25519 private JWKs`);
      list = parsed.data;
    }
  }
  const all = await Promise.all(list.map(toSigningKey));
  return { active: all[0]!, all };
}
