import { VaultClient, type VaultClientOptions, kvDataPath } from './client.js';
import { VaultError } from './errors.js';

/** Where Berth logs in: a user's own Vault and the JWT role that trusts Berth. */
export interface VaultTarget extends VaultClientOptions {
  /** JWT auth mount path; default `jwt`. */
  authMount?: string;
  role: string;
  /** KV v2 mount used by refs that name none; default `secret`. */
  kvMount?: string;
}

/** One env var taken from one key of a KV v2 secret. */
export interface SecretRef {
  env: string;
  /** Path inside the KV mount, e.g. `users/user:42/github`. */
  path: string;
  key: string;
  /** KV v2 mount; defaults to the target's `kvMount`. */
  mount?: string;
  version?: number;
}

export interface FetchedSecrets {
  values: Record<string, string>;
  /** Seconds the Vault token is valid for, as granted at login. */
  leaseDuration: number;
  /** Revokes the Vault token (idempotent). Call it as soon as the values are handed over. */
  revoke(): Promise<void>;
}

/**
 * Logs in with Berth's workload-identity JWT, reads every referenced KV v2 secret once and maps
 * keys to env vars. On any failure after login the token is revoked before the error is thrown,
 * so a failed launch leaves no live token behind.
 */
export async function fetchSecrets(params: {
  vault: VaultTarget;
  jwt: string;
  refs: SecretRef[];
}): Promise<FetchedSecrets> {
  const { vault, jwt, refs } = params;
  const seenEnv = new Set<string>();
  for (const ref of refs) {
    if (seenEnv.has(ref.env)) throw new Error(`secret ref: env var ${ref.env} is mapped twice`);
    seenEnv.add(ref.env);
  }
  const base = new VaultClient(vault);
  const auth = await base
    .loginJwt({ mount: vault.authMount, role: vault.role, jwt })
    .catch(async (err: unknown) => {
      await base.close();
      throw err;
    });
  const client = base.withToken(auth.clientToken);
  let revoked = false;
  const revoke = async (): Promise<void> => {
    if (revoked) return;
    revoked = true;
    try {
      await client.revokeSelf();
    } finally {
      await base.close();
    }
  };

  try {
    const defaultMount = vault.kvMount ?? 'secret';
    const reads = new Map<string, { mount: string; path: string; version: number | undefined }>();
    for (const ref of refs) {
      const mount = ref.mount ?? defaultMount;
      const key = `${kvDataPath(mount, ref.path)}@${ref.version ?? 'latest'}`;
      reads.set(key, { mount, path: ref.path, version: ref.version });
    }
    const results = new Map<string, Record<string, unknown>>();
    await Promise.all(
      [...reads].map(async ([key, r]) => {
        const secret = await client.readKv(r.mount, r.path, { version: r.version });
        results.set(key, secret.data);
      }),
    );
    const values: Record<string, string> = {};
    for (const ref of refs) {
      const mount = ref.mount ?? defaultMount;
      const apiPath = kvDataPath(mount, ref.path);
      const data = results.get(`${apiPath}@${ref.version ?? 'latest'}`) ?? {};
      if (!Object.hasOwn(data, ref.key)) {
        throw new VaultError({
          message: `Vault secret ${apiPath} has no key "${ref.key}" (needed for ${ref.env}); keys present: ${Object.keys(data).join(', ') || 'none'}`,
          path: apiPath,
          hint: `Add the key with: vault kv patch -mount=${mount} ${ref.path} ${ref.key}=...  or fix the key name in Berth.`,
        });
      }
      values[ref.env] = toEnvValue(data[ref.key]);
    }
    return { values, leaseDuration: auth.leaseDuration, revoke };
  } catch (err) {
    await revoke().catch(() => undefined);
    throw err;
  }
}

export interface UnwrappedSecrets {
  /** The wrapped data: for a wrapped KV v2 read, the secret's key/value map. */
  values: Record<string, string>;
  creationPath: string;
}

/**
 * Checks a response-wrapping token before consuming it: lookup must succeed (a token that was
 * already unwrapped or has expired fails here) and its creation_path must be the one expected
 * (so a token wrapping something else cannot be substituted). Then unwraps it.
 *
 * `expectedCreationPath` is exact, or a prefix when it ends with `*` (e.g. `secret/data/ci/*`);
 * a list accepts any of its entries.
 */
export async function unwrapSecrets(params: {
  vault: VaultClientOptions;
  wrappingToken: string;
  expectedCreationPath: string | string[];
}): Promise<UnwrappedSecrets> {
  const expected = Array.isArray(params.expectedCreationPath)
    ? params.expectedCreationPath
    : [params.expectedCreationPath];
  const client = new VaultClient({ ...params.vault, token: undefined });
  try {
    const lookup = await client.lookupWrapping(params.wrappingToken).catch((err: unknown) => {
      throw usedOrExpired(err);
    });
    if (!expected.some((e) => creationPathMatches(lookup.creation_path, e))) {
      throw new VaultError({
        message: `Wrapping token was created at "${lookup.creation_path}", expected ${expected.map((e) => `"${e}"`).join(' or ')}: refusing to unwrap it (it may have been substituted)`,
        path: 'sys/wrapping/lookup',
        hint: 'Wrap the response of the expected path, e.g. vault kv get -wrap-ttl=5m -mount=secret <path>.',
      });
    }
    // Someone may still unwrap it between our lookup and unwrap: same meaning, same error.
    const res = await client.unwrap<Record<string, unknown>>(params.wrappingToken).catch((err: unknown) => {
      throw usedOrExpired(err);
    });
    const data = isKvV2Response(lookup.creation_path, res.data)
      ? (res.data.data as Record<string, unknown>)
      : res.data;
    const values: Record<string, string> = {};
    for (const [k, v] of Object.entries(data ?? {})) values[k] = toEnvValue(v);
    return { values, creationPath: lookup.creation_path };
  } finally {
    await client.close();
  }
}

/** A 400 on a wrapping token means Vault no longer knows it; say what that may mean. */
function usedOrExpired(err: unknown): unknown {
  if (!(err instanceof VaultError) || err.status !== 400) return err;
  return new VaultError({
    message:
      'Vault does not know this wrapping token: it was already used (unwrapped) or it expired. ' +
      'If nobody here unwrapped it, this may mean it was intercepted: treat the wrapped secret as compromised and rotate it. ' +
      `(Vault said: ${err.vaultErrors.join('; ') || 'nothing'})`,
    path: err.path,
    status: err.status,
    vaultErrors: err.vaultErrors,
    hint: 'Create a new wrapping token (e.g. vault kv get -wrap-ttl=5m ...) and pass it once; check who else could have seen the old one.',
    cause: err,
  });
}

function creationPathMatches(actual: string, expected: string): boolean {
  const a = actual.replace(/^\/+/, '');
  const e = expected.replace(/^\/+/, '');
  return e.endsWith('*') ? a.startsWith(e.slice(0, -1)) : a === e;
}

function isKvV2Response(creationPath: string, data: Record<string, unknown> | null): boolean {
  return (
    /\/data\//.test(creationPath) &&
    data !== null &&
    typeof data.data === 'object' &&
    data.data !== null &&
    typeof data.metadata === 'object'
  );
}

/** KV values may be any JSON; env vars are strings, so non-strings are passed as JSON text. */
function toEnvValue(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}
