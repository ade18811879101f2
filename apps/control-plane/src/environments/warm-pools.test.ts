import { afterEach, describe, expect, it } from 'vitest';
import { FakeProvider } from '@berth/providers';
import type { Logger } from 'pino';
import { loadConfig } from '../config.js';
import type { IdentityService } from '../identity/identity.service.js';
import type { EnvironmentsRepository } from './environments.repository.js';
import type { ProviderRegistry } from './providers.js';
import { WARM_POOL_OWNER, WarmPools } from './warm-pools.js';

/** WarmPools against the in-memory provider; the docker suite covers it through the API. */
describe('warm pools', () => {
  let pools: WarmPools | undefined;
  afterEach(async () => {
    await pools?.beforeApplicationShutdown();
    pools = undefined;
  });

  async function start(env: Record<string, string>) {
    const config = loadConfig({ HOME: '/home/x', BERTH_PROVIDERS: 'fake', ...env });
    const fake = new FakeProvider();
    const registry: ProviderRegistry = {
      names: ['fake'],
      defaultName: 'fake',
      policy: {
        defaults: { cpus: 1, memoryMb: 512, pids: 512 },
        max: { cpus: 2, memoryMb: 1024, pids: 1024 },
        runtimes: ['runc'],
      },
      get: (name) => (name === 'fake' ? fake : undefined),
    };
    const identity = {
      issuer: 'http://berth.test',
      jwks: (): { keys: Array<Record<string, unknown>> } => ({ keys: [{ kid: 'a' }] }),
      gatewaySpec() {
        return { issuer: this.issuer, jwks: this.jwks() };
      },
    };
    const envs = { installationId: async () => 'inst-1' } as unknown as EnvironmentsRepository;
    const logger = { warn: () => undefined } as unknown as Logger;
    pools = new WarmPools(config, registry, identity as unknown as IdentityService, envs, logger);
    await pools.onApplicationBootstrap();
    return { fake, identity, pools };
  }

  it('reads BERTH_WARM_POOL and refuses a provider that is not offered or a bad entry', () => {
    expect(
      loadConfig({ HOME: '/x', BERTH_PROVIDERS: 'local,docker', BERTH_WARM_POOL: 'docker:2' }).warmPool,
    ).toEqual([{ provider: 'docker', size: 2 }]);
    expect(() => loadConfig({ HOME: '/x', BERTH_WARM_POOL: 'docker:2' })).toThrow(/not in BERTH_PROVIDERS/);
    expect(() => loadConfig({ HOME: '/x', BERTH_WARM_POOL: 'docker' })).toThrow(/provider:size/);
  });

  it('hands out members only for default specs, refills, and takes back what was not used', async () => {
    const { fake, pools } = await start({ BERTH_WARM_POOL: 'fake:2' });
    await pools.filled('fake');
    const members = await fake.list();
    expect(members).toHaveLength(2);
    expect(members.every((m) => m.ownerId === WARM_POOL_OWNER && m.installation === 'inst-1')).toBe(true);

    expect(await pools.take('fake', { image: 'debian' })).toBeUndefined();
    expect(await pools.take('fake', { repo: { url: 'https://x/y.git' } })).toBeUndefined();
    const got = await pools.take('fake', {});
    expect(got?.info.state).toBe('ready');
    expect(members.map((m) => m.id)).toContain(got?.id);
    await pools.filled('fake');
    expect(await fake.list()).toHaveLength(3);

    pools.giveBack('fake', got!.id);
    expect((await pools.take('fake', {}))?.id).toBe(got!.id);
  });

  it('replaces members started under another issuer or JWKS, and drains at shutdown', async () => {
    const { fake, identity, pools } = await start({ BERTH_WARM_POOL: 'fake:1' });
    await pools.filled('fake');
    const [old] = await fake.list();
    identity.jwks = () => ({ keys: [{ kid: 'b' }] });
    await pools.filled('fake');
    const now = await fake.list();
    expect(now).toHaveLength(1);
    expect(now[0]?.id).not.toBe(old?.id);
    expect(fake.envs.get(now[0]!.id)?.spec.gateway?.jwks).toEqual({ keys: [{ kid: 'b' }] });
    await pools.beforeApplicationShutdown();
    expect(await fake.list()).toEqual([]);
  });

  it('keeps no pool where no workers run', async () => {
    const { fake, pools } = await start({ BERTH_WARM_POOL: 'fake:1', BERTH_WORKERS: 'false' });
    await pools.filled('fake');
    expect(await fake.list()).toEqual([]);
    expect(await pools.take('fake', {})).toBeUndefined();
  });
});
