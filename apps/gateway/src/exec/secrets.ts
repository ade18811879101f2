import type { Transform } from 'node:stream';
import { z } from 'zod';
import { VaultError, createMasker, fetchSecrets, kvDataPath, unwrapSecrets } from '@berth/vault/runtime';
import type { ClientSecretsStore } from './client-secrets.js';

const VaultPath = z
  .string()
  .min(1)
  .max(512)
  .regex(/^[A-Za-z0-9_.\-/:]+$/);

/**
 * The `secrets` section of a `start` body: where the task owner's Vault is, a workload-identity
 * JWT the control plane minted for this launch, and which KV v2 keys feed which env vars; and,
 * when `berth run` sends secrets straight to this gateway, the launch id they come under. It
 * reaches the gateway only in the request body and is never written to the gateway's disk.
 */
export const StartSecrets = z.strictObject({
  vault: z
    .strictObject({
      address: z.string().url().max(512),
      authMount: VaultPath,
      role: z.string().min(1).max(128),
      namespace: z.string().min(1).max(256).optional(),
      caCert: z
        .string()
        .max(64 * 1024)
        .optional(),
      kvMount: VaultPath,
    })
    .optional(),
  jwt: z
    .string()
    .min(1)
    .max(16 * 1024)
    .optional(),
  refs: z
    .array(
      z.strictObject({
        env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/),
        path: VaultPath,
        key: z.string().min(1).max(256),
        mount: VaultPath.optional(),
      }),
    )
    .max(100)
    .default([]),
  clientLaunch: z.string().uuid().optional(),
});
export type StartSecrets = z.infer<typeof StartSecrets>;

/** Values for the task's env, and the Vault token to revoke when the task ends. */
export interface LaunchSecrets {
  values: Record<string, string>;
  revoke(): Promise<void>;
}

/**
 * A message a user can act on when the secrets cannot be read: the Vault call, its path and
 * Vault's own words, plus what to check. Built from VaultError fields only (never a value or token).
 */
export function secretsFailure(err: unknown): string {
  if (err instanceof VaultError)
    return `could not get the task's secrets, so the task was not started: ${err.message}${err.hint ? ` (${err.hint})` : ''}`;
  return `could not get the task's secrets, so the task was not started: ${(err as Error).message ?? String(err)}`;
}

/** How long a start waits for the secrets `berth run` sends (it sends them before the task exists). */
const CLIENT_WAIT_MS = 60_000;

/**
 * Everything the launch needs: secrets `berth run` sent (a wrapping token is looked up, checked
 * against the paths of the user's references and unwrapped once; values from a file are taken as
 * they are), then the remaining references read with the launch's JWT. Values sent by the CLI
 * win over references of the same name.
 */
export async function loadSecrets(s: StartSecrets, store: ClientSecretsStore): Promise<LaunchSecrets> {
  const fromClient: Record<string, string> = {};
  let refs = s.refs;
  const pathOf = (r: StartSecrets['refs'][number]) =>
    kvDataPath(r.mount ?? s.vault?.kvMount ?? 'secret', r.path);
  if (s.clientLaunch) {
    const sent = await store.take(s.clientLaunch, CLIENT_WAIT_MS);
    if (!sent)
      throw new Error(
        `the secrets berth run was to send straight to the environment did not arrive within ${CLIENT_WAIT_MS / 1000} s (or were used by an earlier launch)`,
      );
    if ('values' in sent) Object.assign(fromClient, sent.values);
    else {
      if (!s.vault)
        throw new Error('a Vault wrapping token needs your Vault settings in Berth (berth secrets config)');
      const paths = [...new Set(refs.map(pathOf))];
      if (paths.length === 0)
        throw new Error(
          'no secret reference names the path the wrapping token may hold: add one (berth secrets add) so the token is checked before it is unwrapped',
        );
      const un = await unwrapSecrets({
        vault: vaultOptions(s.vault),
        wrappingToken: sent.wrappedToken,
        expectedCreationPath: paths,
      });
      const at = un.creationPath.replace(/^\/+/, '');
      const here = refs.filter((r) => pathOf(r) === at);
      for (const r of here) {
        const v = un.values[r.key];
        if (v === undefined)
          throw new Error(
            `the wrapped secret ${at} has no key "${r.key}" (needed for ${r.env}); keys present: ${Object.keys(un.values).join(', ') || 'none'}`,
          );
        fromClient[r.env] = v;
      }
      refs = refs.filter((r) => !here.includes(r));
    }
  }
  if (refs.length === 0) return { values: fromClient, revoke: () => Promise.resolve() };
  if (!s.vault || !s.jwt) throw new Error('secret references came without Vault settings or a launch JWT');
  const got = await fetchSecrets({
    vault: {
      ...vaultOptions(s.vault),
      authMount: s.vault.authMount,
      role: s.vault.role,
      kvMount: s.vault.kvMount,
    },
    jwt: s.jwt,
    refs: refs.map((r) => ({ env: r.env, path: r.path, key: r.key, ...(r.mount ? { mount: r.mount } : {}) })),
  });
  return { values: { ...got.values, ...fromClient }, revoke: got.revoke };
}

function vaultOptions(v: NonNullable<StartSecrets['vault']>) {
  return {
    address: v.address,
    ...(v.namespace ? { namespace: v.namespace } : {}),
    ...(v.caCert ? { caCert: v.caCert } : {}),
  };
}

/** A stream that replaces the values with `***` (also when split across chunks). */
export function maskStream(values: Record<string, string>): Transform {
  return createMasker(Object.values(values)).stream();
}
