import type { EnvironmentInfo, EnvironmentSpec, GatewayConfigInput } from '@berth/protocol';
import { ProviderError } from '../errors.js';
import { defaultSpecPolicy, validateSpec, type SpecPolicy } from '../spec.js';
import type {
  CreateOptions,
  CreateResult,
  EnvironmentProvider,
  ListedEnvironment,
  ProviderStateStore,
} from '../types.js';
import { healthz, pollUntil } from '../wait.js';
import { fromModal, ModalProviderError, scrub } from './errors.js';
import { CLONE_MARK, imageRecipe, runAs } from './image.js';
import { SdkModalApi, type ModalApi, type ModalConnection } from './sdk.js';
import { parseState, type ModalEnvState } from './state.js';

export { isRetryable, ModalProviderError } from './errors.js';
export { gatewayInstallCommands, type GatewayInstallOptions } from './gateway-install.js';
export { MemoryStateStore, type ModalEnvState } from './state.js';

export const TAG_INSTALLATION = 'berth-installation';
export const TAG_ENV = 'berth-env';
export const TAG_OWNER = 'berth-owner';

export interface ModalGatewayOptions {
  /** Dockerfile commands that install the gateway into every image (node, node-pty, the bundle). */
  install: string[];
  /** Entrypoint of the sandbox: runs the gateway. */
  command: string[];
  /** Port the gateway listens on inside the sandbox, exposed as an encrypted tunnel. */
  port?: number;
  /** Extra env for the gateway process (e.g. NODE_PATH). */
  env?: Record<string, string>;
  /** Gateway state directory inside the sandbox. */
  dataDir?: string;
}

export interface ModalProviderOptions {
  /** From the operator's config (MODAL_TOKEN_ID / MODAL_TOKEN_SECRET); never logged. */
  connection: ModalConnection;
  /** One Modal app per Berth installation: `berth-<installation>`. */
  installation: string;
  /** Registry reference of the base image used when a spec names none. */
  baseImage: string;
  gateway: ModalGatewayOptions;
  /**
   * Where environments keep what `start` needs (the snapshot image id, resources, env): shared by
   * every control plane of the installation (Postgres), so any of them starts what another stopped.
   */
  state: ProviderStateStore;
  /** Working directory (and clone target) inside the sandbox. */
  workdir?: string;
  /** Sandbox lifetime cap (Modal `timeout`); default 24 h, Modal's maximum. */
  timeoutMs?: number;
  /** Modal terminates a sandbox idle this long (`idleTimeout`); unset: never. */
  idleTimeoutMs?: number;
  policy?: SpecPolicy;
  /** How long to wait for the gateway behind the tunnel to answer /healthz. */
  readyTimeoutMs?: number;
}

const ISOLATION =
  'Modal sandbox: gVisor-isolated container on Modal infrastructure; gateway reachable only through its encrypted tunnel';

/** Environments as Modal sandboxes; the SDK is reached only through `ModalApi` (sdk.ts). */
export class ModalProvider implements EnvironmentProvider {
  readonly name = 'modal';
  private readonly api: ModalApi;
  private readonly appName: string;
  private readonly secrets: string[];

  constructor(private readonly opts: ModalProviderOptions) {
    if (!opts.connection.tokenId || !opts.connection.tokenSecret) {
      throw new ModalProviderError(
        'modal_auth',
        'Modal credentials are not configured',
        'set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET in the Berth operator config',
        false,
      );
    }
    if (!/^[a-zA-Z0-9._-]{1,50}$/.test(opts.installation)) {
      throw new ProviderError(
        'invalid_config',
        `installation "${opts.installation}" is not a valid Modal app name part`,
        'use letters, digits, ".", "_" and "-" (at most 50)',
      );
    }
    this.api = new SdkModalApi(opts.connection);
    this.appName = `berth-${opts.installation}`;
    this.secrets = [opts.connection.tokenId, opts.connection.tokenSecret];
  }

  private get port(): number {
    return this.opts.gateway.port ?? 7681;
  }

  private get workdir(): string {
    return this.opts.workdir ?? '/workspace';
  }

  /** Runs one Modal call and turns its failure into a ModalProviderError. */
  private async call<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw fromModal(err, doing, this.secrets);
    }
  }

  async create(input: EnvironmentSpec, options: CreateOptions = {}): Promise<CreateResult> {
    const check = validateSpec(input, this.opts.policy ?? defaultSpecPolicy);
    if (!check.ok)
      throw new ProviderError(
        'invalid_spec',
        check.issues.map((i) => `${i.field}: ${i.message}`).join('; '),
        check.issues.map((i) => i.hint).join('; '),
        check.issues,
      );
    const spec = check.spec;
    // Idempotent on the id: a running sandbox tagged with it, or a stopped record, is the environment.
    const state = await this.readState(spec.id);
    if ((await this.running(spec.id)) || state) {
      const info =
        state?.desired === 'running' && !(await this.running(spec.id))
          ? await this.start(spec.id)
          : await this.inspect(spec.id);
      return { ...info, created: false, isolation: ISOLATION };
    }
    const recipe = await imageRecipe({
      spec,
      baseImage: this.opts.baseImage,
      gatewayInstall: this.opts.gateway.install,
      workdir: this.workdir,
    });
    options.onProgress?.({
      phase: 'build',
      message: `building the Modal image from ${'registry' in recipe.image.from ? recipe.image.from.registry : recipe.image.from.imageId} (${recipe.image.commands.length} commands)`,
    });
    const imageId = await this.call('building the image', () =>
      this.api.buildImage(this.appName, recipe.image),
    ).catch((err: unknown) => {
      const repo = spec.repo;
      if (
        repo &&
        err instanceof ModalProviderError &&
        err.code === 'build_failed' &&
        err.message.includes(CLONE_MARK)
      ) {
        const why = err.message.split('\n').slice(1).join(' ').trim();
        throw new ModalProviderError(
          'clone_failed',
          scrub(`could not clone ${repo.url}${repo.ref ? `@${repo.ref}` : ''}: ${why}`, [repo.token ?? '']),
          'check the URL, the ref and the token (it needs read access)',
          false,
        );
      }
      throw err;
    });
    options.onProgress?.({ phase: 'build', message: `image ${imageId} ready` });
    // Only what a later start needs: the clone token went to Modal as a build Secret, and is gone.
    await this.writeState(spec.id, {
      v: 1,
      ownerId: spec.ownerId,
      desired: 'running',
      imageId,
      env: { ...recipe.env, ...spec.env },
      resources: { cpus: check.resources.cpus, memoryMb: check.resources.memoryMb },
      user: recipe.user,
      ...(spec.gateway ? { gateway: spec.gateway } : {}),
    });
    const info = await this.launch(spec.id, options);
    return { ...info, created: true, image: imageId, isolation: ISOLATION };
  }

  async start(id: string): Promise<EnvironmentInfo> {
    const state = await this.readState(id);
    if (!state) throw new ProviderError('not_found', `environment ${id} does not exist`, 'create it first');
    if (await this.running(id)) return this.inspect(id);
    await this.writeState(id, { ...state, desired: 'running' });
    return this.launch(id);
  }

  /** Filesystem snapshot, then terminate; `start` boots a new sandbox from the snapshot. */
  async stop(id: string): Promise<void> {
    const state = await this.readState(id);
    const sandboxId = await this.running(id);
    if (sandboxId) {
      // A sandbox that ended after the lookup (its timeout, a crash) has nothing left to snapshot:
      // the environment is stopped all the same and starts from its last snapshot or image.
      const gone = (err: unknown): undefined => {
        if (
          err instanceof ModalProviderError &&
          (err.code === 'modal_sandbox_exited' || err.code === 'not_found')
        )
          return undefined;
        throw err;
      };
      const imageId = await this.call('snapshotting the sandbox filesystem', () =>
        this.api.snapshotFilesystem(sandboxId),
      ).catch(gone);
      // Stored before the terminate: a crash in between leaves a snapshot to start from, not none.
      if (state && imageId) await this.writeState(id, { ...state, imageId });
      await this.call('terminating the sandbox', () => this.api.terminate(sandboxId)).catch(gone);
    }
    if (state) await this.writeState(id, { ...((await this.readState(id)) ?? state), desired: 'stopped' });
  }

  async destroy(id: string): Promise<void> {
    for (const sb of await this.sandboxes({ [TAG_ENV]: id })) {
      await this.call('terminating the sandbox', () => this.api.terminate(sb.id));
    }
    await this.opts.state.delete(id);
  }

  async inspect(id: string): Promise<EnvironmentInfo> {
    const base = { id, node: 'modal', provider: this.name, gatewayUrl: null };
    const sandboxId = await this.running(id);
    if (sandboxId) {
      const url = await this.call('reading the sandbox tunnels', () =>
        this.api.tunnelUrl(sandboxId, this.port),
      );
      if (!url)
        return {
          ...base,
          state: 'failed',
          detail: `sandbox ${sandboxId} has no tunnel for port ${this.port}`,
        };
      return {
        ...base,
        node: `modal:${sandboxId}`,
        state: (await healthz(url)) ? 'ready' : 'provisioning',
        gatewayUrl: url,
      };
    }
    const state = await this.readState(id);
    if (!state)
      return { ...base, state: 'missing', detail: 'no Modal sandbox or stopped snapshot for this id' };
    if (state.desired === 'stopped') return { ...base, state: 'stopped' };
    return {
      ...base,
      state: 'failed',
      detail:
        'the Modal sandbox is gone (it exited, hit its timeout or idle timeout, or was terminated outside Berth)',
    };
  }

  async list(): Promise<ListedEnvironment[]> {
    const out = new Map<string, ListedEnvironment>();
    for (const sb of await this.sandboxes({})) {
      const id = sb.tags[TAG_ENV];
      // Listed by this installation's tag and app, so every one is ours.
      if (id)
        out.set(id, {
          id,
          ownerId: sb.tags[TAG_OWNER],
          installation: this.opts.installation,
          state: 'ready',
        });
    }
    for (const entry of await this.opts.state.list()) {
      const { id } = entry;
      const state = parseState(entry.state);
      if (out.has(id)) continue;
      if (state)
        out.set(id, {
          id,
          ownerId: state.ownerId,
          installation: this.opts.installation,
          state: state.desired === 'stopped' ? 'stopped' : 'failed',
        });
    }
    return [...out.values()];
  }

  async snapshot(id: string): Promise<{ image: string }> {
    const sandboxId = await this.running(id);
    if (!sandboxId)
      throw new ProviderError(
        'not_running',
        `environment ${id} has no running sandbox`,
        'start it first; a stopped environment already is a snapshot',
      );
    return {
      image: await this.call('snapshotting the sandbox filesystem', () =>
        this.api.snapshotFilesystem(sandboxId),
      ),
    };
  }

  /** Releases the SDK client (its channels); the sandboxes keep running. */
  close(): void {
    this.api.close();
  }

  private async launch(id: string, options: CreateOptions = {}): Promise<EnvironmentInfo> {
    const state = await this.readState(id);
    if (!state) throw new ProviderError('not_found', `environment ${id} does not exist`, 'create it first');
    const gw = this.opts.gateway;
    const config: GatewayConfigInput = {
      environmentId: id,
      host: '0.0.0.0',
      port: this.port,
      issuer: state.gateway?.issuer ?? 'berth-unconfigured',
      jwks: state.gateway?.jwks ?? { keys: [] },
      ...(state.gateway?.otlpEndpoint ? { otlpEndpoint: state.gateway.otlpEndpoint } : {}),
      dataDir: gw.dataDir ?? '/tmp/berth-gateway',
      // Modal starts the entrypoint in the sandbox workdir; '.' keeps the config independent of it.
      workdir: '.',
    };
    options.onProgress?.({ phase: 'start', message: `starting a Modal sandbox in app ${this.appName}` });
    const request = {
      appName: this.appName,
      imageId: state.imageId,
      // Modal starts the entrypoint as root; the gateway, and so every terminal and task, runs as
      // the environment user with no way back (no_new_privs), as in the docker provider.
      command: runAs(state.user, gw.command),
      env: { ...state.env, ...gw.env, BERTH_GATEWAY_CONFIG: JSON.stringify(config) },
      cpu: state.resources.cpus,
      memoryMiB: state.resources.memoryMb,
      timeoutMs: this.opts.timeoutMs ?? 24 * 3600_000,
      idleTimeoutMs: this.opts.idleTimeoutMs,
      workdir: this.workdir,
      encryptedPorts: [this.port],
      tags: { [TAG_INSTALLATION]: this.opts.installation, [TAG_ENV]: id, [TAG_OWNER]: state.ownerId },
      name: `berth-${id}`.slice(0, 63),
    };
    let sandboxId: string;
    try {
      sandboxId = await this.call('creating the sandbox', () => this.api.createSandbox(request));
    } catch (err) {
      if (!(err instanceof ModalProviderError && err.code === 'modal_conflict')) throw err;
      // A concurrent create won the name: that sandbox is this environment. Modal reserves the
      // name before the sandbox is listed, so look for it for a while (no event to wait on).
      let other: string | undefined;
      await pollUntil(async () => (other = await this.running(id)) !== undefined, 30_000, 200);
      if (!other) throw err;
      sandboxId = other;
    }
    await this.waitReady(sandboxId);
    return this.inspect(id);
  }

  /** Event-free by nature (a remote HTTP endpoint coming up): poll /healthz and the sandbox status. */
  private async waitReady(sandboxId: string): Promise<void> {
    const url = await this.call('reading the sandbox tunnels', () =>
      this.api.tunnelUrl(sandboxId, this.port),
    );
    if (!url)
      throw new ModalProviderError(
        'gateway_failed',
        `sandbox ${sandboxId} has no tunnel for port ${this.port}`,
        'check the gateway port in the operator config',
        false,
      );
    const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 120_000);
    for (;;) {
      if (await healthz(url)) return;
      const status = await this.call('polling the sandbox', () => this.api.poll(sandboxId));
      if (status.exitCode !== undefined) {
        throw new ModalProviderError(
          'gateway_failed',
          `Modal sandbox ${sandboxId} exited with code ${status.exitCode} before the gateway answered`,
          'the gateway did not start in the image: check the gateway install commands and that the image has node (see the sandbox logs in the Modal dashboard)',
          false,
          { exitCode: status.exitCode },
        );
      }
      if (Date.now() > deadline) {
        await this.call('terminating the sandbox', () => this.api.terminate(sandboxId));
        throw new ModalProviderError(
          'gateway_failed',
          `the gateway in Modal sandbox ${sandboxId} did not answer /healthz within the ready timeout`,
          'the sandbox was terminated; check the sandbox logs in the Modal dashboard, then retry',
          true,
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  private async sandboxes(
    tags: Record<string, string>,
  ): Promise<{ id: string; tags: Record<string, string> }[]> {
    return this.call('listing sandboxes', () =>
      this.api.listSandboxes(this.appName, { ...tags, [TAG_INSTALLATION]: this.opts.installation }),
    );
  }

  private async running(id: string): Promise<string | undefined> {
    return (await this.sandboxes({ [TAG_ENV]: id }))[0]?.id;
  }

  private async readState(id: string): Promise<ModalEnvState | undefined> {
    return parseState(await this.opts.state.get(id));
  }

  private async writeState(id: string, state: ModalEnvState): Promise<void> {
    await this.opts.state.put(id, state);
  }
}
