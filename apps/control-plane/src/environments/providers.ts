import { join } from 'node:path';
import type { Queryable } from '@berth/db';
import type { EnvironmentProvider, SpecPolicy } from '@berth/providers';
import type { Config } from '../config.js';
import { tracedProvider } from '../common/tracing.js';
import { PostgresProviderStateStore } from './provider-state.js';

export const PROVIDERS = Symbol('PROVIDERS');

export interface ProviderRegistry {
  names: string[];
  defaultName: string;
  policy: SpecPolicy;
  get(name: string): EnvironmentProvider | undefined;
}

export function specPolicy(config: Config): SpecPolicy {
  return {
    defaults: { cpus: config.envDefaultCpus, memoryMb: config.envDefaultMemoryMb, pids: 512 },
    max: { cpus: config.envMaxCpus, memoryMb: config.envMaxMemoryMb, pids: 4096 },
    runtimes: ['runc'],
  };
}

/**
 * The providers this control plane offers, built once from the config. Imported lazily so a
 * control plane without Docker never loads dockerode, and one without Modal never loads its SDK.
 */
export async function createProviders(
  config: Config,
  overrides: Record<string, EnvironmentProvider> = {},
  installationId = 'default',
  /** Where providers keep per-environment state every control plane must see (Modal's snapshots). */
  db?: Queryable,
): Promise<ProviderRegistry> {
  const policy = specPolicy(config);
  const map = new Map<string, EnvironmentProvider>();
  const mod = await import('@berth/providers');
  for (const name of config.providers) {
    const given = overrides[name];
    if (given) {
      map.set(name, given);
      continue;
    }
    if (name === 'local')
      map.set(name, new mod.LocalProvider({ dataDir: join(config.dataDir, 'local'), policy }));
    else if (name === 'fake') map.set(name, new mod.FakeProvider(policy));
    else if (name === 'docker')
      map.set(
        name,
        new mod.DockerProvider({
          baseImage: config.dockerBaseImage ?? mod.baseImageTag(),
          bindAddress: config.dockerBindAddress,
          ...(config.gatewayAssetsDir ? { assetsDir: config.gatewayAssetsDir } : {}),
          policy,
        }),
      );
    else if (name === 'modal') {
      if (!db) throw new Error('the modal provider keeps its state in Postgres: pass the pool');
      const gateway = mod.gatewayInstallCommands(
        config.modalGatewayBundleUrl ? { bundleUrl: config.modalGatewayBundleUrl } : {},
      );
      map.set(
        name,
        new mod.ModalProvider({
          connection: {
            tokenId: config.modalTokenId!,
            tokenSecret: config.modalTokenSecret!,
            ...(config.modalServerUrl ? { serverUrl: config.modalServerUrl } : {}),
            ...(config.modalEnvironment ? { environment: config.modalEnvironment } : {}),
          },
          installation: installationId,
          baseImage: config.modalBaseImage,
          gateway,
          state: new PostgresProviderStateStore(db, 'modal'),
          timeoutMs: config.modalTimeoutHours * 3_600_000,
          ...(config.modalIdleTimeoutMinutes
            ? { idleTimeoutMs: config.modalIdleTimeoutMinutes * 60_000 }
            : {}),
          policy,
        }),
      );
    } else throw new Error(`provider ${name} is not available in this build`);
  }
  for (const [name, provider] of map) map.set(name, tracedProvider(name, provider));
  return {
    names: [...map.keys()],
    defaultName: config.providers[0]!,
    policy,
    get: (name) => map.get(name),
  };
}
