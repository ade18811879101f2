import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
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

export const defaultKeyFile = (dataDir: string): string => join(dataDir, 'keys', 'signing-keys.json');

/** The keys are missing where a process must share them rather than make its own (`berth worker`). */
export class MissingKeysError extends Error {
  constructor(readonly file: string) {
    super(`no signing keys: BERTH_SIGNING_KEYS is not set and ${file} does not exist`);
  }
}

/**
 * The control plane's signing keys: from BERTH_SIGNING_KEYS when the operator provides them
 * (required for several replicas), else from a 0600 file under the data dir, created with one
 * fresh Ed25519 key on first start. Rotation: put a new key first, keep the old one after it
 * until tokens it signed have expired (minutes), then drop it. With `create: false` a missing
 * file is a MissingKeysError instead. Creation is exclusive: two processes starting together on
 * one data dir end up with the same key (the loser reads the winner's file).
 */
export async function loadKeys(opts: {
  inline?: string;
  file?: string;
  dataDir: string;
  create?: boolean;
}): Promise<KeySet> {
  let list: z.infer<typeof KeyList>;
  if (opts.inline) {
    const parsed = KeyList.safeParse(JSON.parse(opts.inline));
    if (!parsed.success)
      throw new Error('BERTH_SIGNING_KEYS must be a JSON array of Ed25519 private JWKs with a kid');
    list = parsed.data;
  } else {
    const file = opts.file ?? defaultKeyFile(opts.dataDir);
    let text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (text === undefined) {
      if (opts.create === false) throw new MissingKeysError(file);
      text = await createKeyFile(file);
    }
    const parsed = KeyList.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(`${file} is not a JSON array of Ed25519 private JWKs`);
    list = parsed.data;
  }
  const all = await Promise.all(list.map(toSigningKey));
  return { active: all[0]!, all };
}

/**
 * Writes a fresh key list to a private temp file, then hard-links it into place: the link fails
 * if the file exists (exclusive, like `wx`) and never exposes a half-written file. Returns the
 * file's text, the winner's when another process got there first.
 */
async function createKeyFile(file: string): Promise<string> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const text = JSON.stringify([await newPrivateJwk()], null, 2);
  const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  await writeFile(tmp, text, { mode: 0o600, flag: 'wx' });
  try {
    await link(tmp, file);
    return text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return readFile(file, 'utf8');
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}
