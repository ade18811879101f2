import type { Transform } from 'node:stream';
import { z } from 'zod';
import { VaultError, createMasker, fetchSecrets } from '@berth/vault/runtime';

const VaultPath = z
  .string()
  .min(1)
  .max(512)
  .regex(/^[A-Za-z0-9_.\-/:]+$/);

/**
 * The `secrets` section of a `start` body: where the task owner's Vault is, a workload-identity
 * JWT the control plane minted for this launch, and which KV v2 keys feed which env vars. It
 * reaches the gateway only in the request body and is never written to the gateway's disk.
 */
export const StartSecrets = z.strictObject({
  vault: z.strictObject({
    address: z.string().url().max(512),
    authMount: VaultPath,
    role: z.string().min(1).max(128),
    namespace: z.string().min(1).max(256).optional(),
    caCert: z
      .string()
      .max(64 * 1024)
      .optional(),
    kvMount: VaultPath,
  }),
  jwt: z
    .string()
    .min(1)
    .max(16 * 1024),
  refs: z
    .array(
      z.strictObject({
        env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/),
        path: VaultPath,
        key: z.string().min(1).max(256),
        mount: VaultPath.optional(),
      }),
    )
    .min(1)
    .max(100),
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
    return `could not read the task's secrets from Vault, so the task was not started: ${err.message}${err.hint ? ` (${err.hint})` : ''}`;
  return `could not read the task's secrets from Vault, so the task was not started: ${(err as Error).message ?? String(err)}`;
}

/** Logs in to the user's Vault with the launch's JWT and reads the referenced keys. */
export async function loadSecrets(s: StartSecrets): Promise<LaunchSecrets> {
  const got = await fetchSecrets({
    vault: {
      address: s.vault.address,
      authMount: s.vault.authMount,
      role: s.vault.role,
      kvMount: s.vault.kvMount,
      ...(s.vault.namespace ? { namespace: s.vault.namespace } : {}),
      ...(s.vault.caCert ? { caCert: s.vault.caCert } : {}),
    },
    jwt: s.jwt,
    refs: s.refs.map((r) => ({
      env: r.env,
      path: r.path,
      key: r.key,
      ...(r.mount ? { mount: r.mount } : {}),
    })),
  });
  return { values: got.values, revoke: got.revoke };
}

/** A stream that replaces the values with `***` (also when split across chunks). */
export function maskStream(values: Record<string, string>): Transform {
  return createMasker(Object.values(values)).stream();
}
