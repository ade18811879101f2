import type { EnvironmentInfo, EnvironmentSpec } from '@berth/protocol';
import { readContextConfig } from './config-files.js';
import { ProviderError } from './errors.js';
import { defaultSpecPolicy, validateSpec, type SpecPolicy } from './spec.js';
import type { CreateOptions, CreateResult, EnvironmentProvider, ListedEnvironment } from './types.js';

interface FakeEnv {
  spec: EnvironmentSpec;
  state: 'ready' | 'stopped' | 'failed';
  files: Map<string, string>;
}

/**
 * FakeProvider: an in-memory stand-in for control-plane tests. It validates specs and config
 * files exactly like the real providers but runs nothing; `gatewayUrl` points nowhere.
 */
export class FakeProvider implements EnvironmentProvider {
  readonly name = 'fake';
  readonly envs = new Map<string, FakeEnv>();
  /** Calls in order, for tests that assert what the control plane asked for. */
  readonly calls: { op: string; id: string }[] = [];
  /** Make the next create of this id fail with this error (then forget it). */
  readonly failNextCreate = new Map<string, ProviderError>();

  constructor(private readonly policy: SpecPolicy = defaultSpecPolicy) {}

  async create(input: EnvironmentSpec, options: CreateOptions = {}): Promise<CreateResult> {
    const check = validateSpec(input, this.policy);
    if (!check.ok)
      throw new ProviderError(
        'invalid_spec',
        check.issues.map((i) => `${i.field}: ${i.message}`).join('; '),
        check.issues.map((i) => i.hint).join('; '),
        check.issues,
      );
    const spec = check.spec;
    this.calls.push({ op: 'create', id: spec.id });
    const existing = this.envs.get(spec.id);
    if (existing) return { ...(await this.inspect(spec.id)), created: false, isolation: 'fake' };
    const failure = this.failNextCreate.get(spec.id);
    if (failure) {
      this.failNextCreate.delete(spec.id);
      throw failure;
    }
    const config = await readContextConfig(spec.buildContext, spec.berthYaml);
    if (spec.image?.startsWith('missing/')) {
      throw new ProviderError(
        'image_not_found',
        `image ${spec.image} not found`,
        'build or pull the image first, or leave image empty for the base image',
      );
    }
    for (const command of config.berth?.setup ?? [])
      options.onProgress?.({ phase: 'build', message: command });
    this.envs.set(spec.id, { spec, state: 'ready', files: new Map() });
    return { ...(await this.inspect(spec.id)), created: true, isolation: 'fake' };
  }

  async start(id: string): Promise<EnvironmentInfo> {
    this.calls.push({ op: 'start', id });
    this.must(id).state = 'ready';
    return this.inspect(id);
  }

  async stop(id: string): Promise<void> {
    this.calls.push({ op: 'stop', id });
    const env = this.envs.get(id);
    if (env) env.state = 'stopped';
    await Promise.resolve();
  }

  async destroy(id: string): Promise<void> {
    this.calls.push({ op: 'destroy', id });
    this.envs.delete(id);
    await Promise.resolve();
  }

  async inspect(id: string): Promise<EnvironmentInfo> {
    await Promise.resolve();
    const env = this.envs.get(id);
    const base = { id, node: 'fake-node', provider: this.name };
    if (!env) return { ...base, state: 'missing', gatewayUrl: null };
    return {
      ...base,
      state: env.state,
      gatewayUrl: env.state === 'ready' ? `http://fake-gateway.invalid/${id}` : null,
    };
  }

  async list(): Promise<ListedEnvironment[]> {
    await Promise.resolve();
    return [...this.envs.entries()].map(([id, e]) => ({
      id,
      ownerId: e.spec.ownerId,
      installation: e.spec.installation,
      state: e.state,
    }));
  }

  async snapshot(id: string, name?: string): Promise<{ image: string }> {
    this.must(id);
    await Promise.resolve();
    return { image: name ?? `fake-snapshot:${id}` };
  }

  /** What "killed from outside" looks like to the control plane. */
  killFromOutside(id: string): void {
    this.must(id).state = 'failed';
  }

  private must(id: string): FakeEnv {
    const env = this.envs.get(id);
    if (!env) throw new ProviderError('not_found', `environment ${id} does not exist`, 'create it first');
    return env;
  }
}
