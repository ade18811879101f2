import { z } from 'zod';
import type { SecretRefRow, SecretSettingsRow } from './secrets.repository.js';

const VaultPath = z
  .string()
  .min(1)
  .max(512)
  // ':' because docs/secrets.md keys paths by the JWT's sub, user:<id>.
  .regex(/^[A-Za-z0-9_.\-/:]+$/, { message: 'use letters, digits, _ . - : and /' })
  .refine((p) => !p.split('/').some((seg) => seg === '..' || seg === '.'), {
    message: 'no . or .. segments',
  });

export const PutSettingsBody = z.strictObject({
  vaultAddress: z
    .string()
    .url()
    .max(512)
    .refine((u) => /^https?:\/\//.test(u), { message: 'must be an http(s) URL' })
    // Stored and shown back in settings: a user:password@ part would be a credential in plain view.
    .refine((u) => URL.canParse(u) && !new URL(u).username && !new URL(u).password, {
      message: 'must not contain a user name or password; Berth logs in to Vault with its own JWT',
    }),
  authMount: VaultPath.default('jwt'),
  role: z.string().min(1).max(128),
  audience: z.string().min(1).max(256),
  namespace: z.string().min(1).max(256).nullable().optional(),
  caCert: z
    .string()
    .max(64 * 1024)
    .refine((s) => s.includes('-----BEGIN CERTIFICATE-----') && !/PRIVATE KEY/.test(s), {
      message: 'must be a PEM certificate (never a private key)',
    })
    .nullable()
    .optional(),
  kvMount: VaultPath.default('secret'),
});

export const EnvName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, { message: 'must be a valid environment variable name' });

export const AddRefBody = z.strictObject({
  env: EnvName,
  path: VaultPath,
  key: z.string().min(1).max(256),
  mount: VaultPath.optional(),
});

export const LaunchTicketBody = z.strictObject({ environmentId: z.string().uuid() });

export function toSettingsDto(s: SecretSettingsRow) {
  return {
    vaultAddress: s.vault_address,
    authMount: s.auth_mount,
    role: s.role,
    audience: s.audience,
    namespace: s.namespace,
    caCert: s.ca_cert,
    kvMount: s.kv_mount,
    updatedAt: s.updated_at.toISOString(),
  };
}

export function toRefDto(r: SecretRefRow) {
  return {
    id: r.id,
    env: r.env_name,
    path: r.path,
    key: r.key,
    mount: r.mount,
    createdAt: r.created_at.toISOString(),
  };
}
