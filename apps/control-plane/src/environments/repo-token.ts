import type { LaunchSource } from '@berth/db';
import { ProviderError } from '@berth/providers';
import { fetchSecrets, VaultError } from '@berth/vault';
import type { EnvironmentsRepository, EnvironmentRow } from './environments.repository.js';

/** Signs a workload-identity JWT for the owner's Vault (IdentityService.signWorkloadIdentity). */
export type SignWorkload = (r: {
  userId: string;
  audience: string;
  environmentId: string;
  provider: string;
  launchSource: LaunchSource;
  ttlSeconds: number;
}) => Promise<string>;

/**
 * The git token for `repo.tokenSecret`, read from the owner's own Vault with a workload
 * identity minted for this provisioning, the Vault token revoked as soon as it is read. The
 * value goes to the clone only: the caller hands it to the provider and drops it.
 */
export async function resolveRepoToken(
  deps: { envs: EnvironmentsRepository; signWorkload?: SignWorkload },
  env: EnvironmentRow,
  secretName: string,
): Promise<string> {
  const { settings, ref } = await deps.envs.secretSource(env.owner_id, secretName);
  if (!settings || !ref)
    throw new ProviderError(
      'secret_unavailable',
      `repo.tokenSecret names ${secretName}, but ${settings ? 'you have no secret reference with that env name' : 'your Vault is not set up in Berth'}`,
      'set it up with `PUT /api/v1/secrets/settings` and `POST /api/v1/secrets/refs` (docs/secrets.md), then create the environment again',
    );
  if (!deps.signWorkload)
    throw new ProviderError(
      'secret_unavailable',
      'this worker cannot sign workload identities, so the repository token cannot be read',
      'run the lifecycle workers in `berth server`, or give this worker the signing keys',
    );
  const jwt = await deps.signWorkload({
    userId: env.owner_id,
    audience: settings.audience,
    environmentId: env.id,
    provider: env.provider,
    launchSource: env.launch_source,
    ttlSeconds: 120,
  });
  try {
    const fetched = await fetchSecrets({
      vault: {
        address: settings.vault_address,
        authMount: settings.auth_mount,
        role: settings.role,
        kvMount: settings.kv_mount,
        ...(settings.namespace ? { namespace: settings.namespace } : {}),
        ...(settings.ca_cert ? { caCert: settings.ca_cert } : {}),
      },
      jwt,
      refs: [{ env: ref.env_name, path: ref.path, key: ref.key, ...(ref.mount ? { mount: ref.mount } : {}) }],
    });
    await fetched.revoke().catch(() => undefined);
    const token = fetched.values[ref.env_name];
    if (!token)
      throw new ProviderError('secret_unavailable', `${secretName} is empty in Vault`, 'store the token');
    return token;
  } catch (err) {
    if (err instanceof VaultError)
      throw new ProviderError(
        'secret_unavailable',
        `could not read ${secretName} for the repository from Vault: ${err.message}`,
        err.hint,
      );
    throw err;
  }
}
