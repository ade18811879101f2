import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import type { EnvironmentInfo, EnvironmentSpec, GatewayConfigInput } from '@berth/protocol';
import { assertBundle, defaultGatewayAssets, type GatewayAssets } from './assets.js';
import { ProviderError } from './errors.js';
import { ImageBuilder } from './images.js';
import { cloneRepo } from './repo.js';
import { defaultSpecPolicy, validateSpec, type SpecPolicy } from './spec.js';
import type { CreateOptions, CreateResult, EnvironmentProvider, ListedEnvironment } from './types.js';
import { healthz, pollUntil } from './wait.js';

export const LABEL_ENV = 'dev.berth.env';
export const LABEL_OWNER = 'dev.berth.owner';
export const LABEL_SPEC = 'dev.berth.spec-hash';
export const LABEL_INSTALLATION = 'dev.berth.installation';
/**
 * Set at create when nothing runs between create and the gateway's start (no repo, no
 * postCreateCommand): the container is then provisioned as created. Its value is the environment
 * id because a snapshot image carries its container's labels into the next container.
 */
export const LABEL_PROVISIONED = 'dev.berth.provisioned';
const GATEWAY_PORT = 7681;
// Per id, so an image snapshotted from another environment does not look provisioned.
const marker = (id: string): string => `/var/tmp/berth-provisioned-${id}`;

export interface DockerProviderOptions {
  /** Defaults to dockerode's own resolution of DOCKER_HOST (the local socket otherwise). */
  docker?: Docker;
  /** The Berth base image tag (`berth-base:<hash>`, see docker/base). */
  baseImage: string;
  /** Where the gateway port (and forwardPorts) are published; loopback by default. */
  bindAddress?: string;
  policy?: SpecPolicy;
  assets?: Partial<GatewayAssets>;
  /** Copy the gateway's files here and mount them from here (BERTH_GATEWAY_ASSETS_DIR). */
  assetsDir?: string;
  /** Try `docker pull` for images not on the host (off: no registry is assumed reachable). */
  allowPull?: boolean;
  readyTimeoutMs?: number;
}

export function containerName(id: string): string {
  return `berth-env-${id}`;
}

/** Environments as containers: non-root, no capabilities, limited, gateway bind-mounted read-only. */
export class DockerProvider implements EnvironmentProvider {
  readonly name = 'docker';
  readonly docker: Docker;
  readonly images: ImageBuilder;
  private readonly assets: GatewayAssets;
  private nodeName?: string;
  private installedRuntimes?: string[];

  constructor(private readonly opts: DockerProviderOptions) {
    this.docker = opts.docker ?? new Docker();
    this.images = new ImageBuilder(this.docker, { allowPull: opts.allowPull });
    this.assets = defaultGatewayAssets(opts.assets, opts.assetsDir);
  }

  async create(input: EnvironmentSpec, options: CreateOptions = {}): Promise<CreateResult> {
    const policy = this.opts.policy ?? defaultSpecPolicy;
    const check = validateSpec(input, policy);
    if (!check.ok)
      throw new ProviderError(
        'invalid_spec',
        check.issues.map((i) => `${i.field}: ${i.message}`).join('; '),
        check.issues.map((i) => i.hint).join('; '),
        check.issues,
      );
    const { spec, resources, runtime } = check;
    const installed = await this.runtimes();
    if (!installed.includes(runtime)) {
      throw new ProviderError(
        'invalid_spec',
        `runtime "${runtime}" is allowed but not installed on this Docker host`,
        `use one of: ${installed.join(', ')}; or install it and register it with dockerd`,
        [{ field: 'runtime' }],
      );
    }
    const isolation = `container (runtime ${runtime}), non-root, all capabilities dropped, no-new-privileges`;
    const container = this.docker.getContainer(containerName(spec.id));
    const existing = await container.inspect().catch(() => undefined);
    if (existing) {
      const provisioned =
        existing.Config.Labels?.[LABEL_PROVISIONED] === spec.id || (await this.hasMarker(container, spec.id));
      if (existing.State.Status !== 'created' && provisioned) {
        // A re-run create means "make it ready": start it if the crash left it stopped.
        const info = existing.State.Running
          ? await this.waitReady(spec.id)
          : await this.startAndWait(spec.id);
        return { ...info, created: false, image: existing.Config.Image, isolation };
      }
      // Found but never finished provisioning (a crash mid-create): start over.
      await container.remove({ force: true, v: true });
    }
    assertBundle(this.assets);
    const image = await this.images.resolve({
      baseImage: this.opts.baseImage,
      context: spec.buildContext,
      berthYaml: spec.berthYaml,
      image: spec.image,
      onProgress: options.onProgress,
    });
    const bind = this.opts.bindAddress ?? '127.0.0.1';
    const gatewayConfig: GatewayConfigInput = {
      environmentId: spec.id,
      host: '0.0.0.0',
      port: GATEWAY_PORT,
      issuer: spec.gateway?.issuer ?? 'berth-unconfigured',
      jwks: spec.gateway?.jwks ?? { keys: [] },
      ...(spec.gateway?.otlpEndpoint ? { otlpEndpoint: spec.gateway.otlpEndpoint } : {}),
      dataDir: '/var/tmp/berth-gateway',
      workdir: '/workspace',
    };
    const ports = [GATEWAY_PORT, ...image.forwardPorts.filter((p) => p !== GATEWAY_PORT)];
    const env = {
      ...image.env,
      ...spec.env,
      BERTH_ENVIRONMENT_ID: spec.id,
      BERTH_GATEWAY_CONFIG: JSON.stringify(gatewayConfig),
    };
    // Copying a marker file into a never-started container costs a filesystem mount (~300 ms
    // measured, a fifth of create-to-ready); a label says the same for free.
    const provisionedAtCreate = !spec.repo && !image.postCreateCommand;
    const specHash = createHash('sha256')
      .update(JSON.stringify({ ...spec, repo: spec.repo && { ...spec.repo, token: undefined } }))
      .digest('hex')
      .slice(0, 16);
    const created = await this.docker.createContainer({
      name: containerName(spec.id),
      Image: image.image,
      User: image.user,
      WorkingDir: '/workspace',
      Entrypoint: ['/opt/berth/bin/node'],
      Cmd: ['/opt/berth/gateway/gateway.mjs'],
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      Labels: {
        [LABEL_ENV]: spec.id,
        [LABEL_OWNER]: spec.ownerId,
        [LABEL_SPEC]: specHash,
        ...(spec.installation ? { [LABEL_INSTALLATION]: spec.installation } : {}),
        ...(provisionedAtCreate ? { [LABEL_PROVISIONED]: spec.id } : {}),
      },
      ExposedPorts: Object.fromEntries(ports.map((p) => [`${p}/tcp`, {}])),
      HostConfig: {
        Binds: [
          `${this.assets.node}:/opt/berth/bin/node:ro`,
          `${this.assets.bundle}:/opt/berth/gateway/gateway.mjs:ro`,
          `${this.assets.nodePtyDir}:/opt/berth/gateway/node_modules/node-pty:ro`,
        ],
        PortBindings: Object.fromEntries(ports.map((p) => [`${p}/tcp`, [{ HostIp: bind, HostPort: '' }]])),
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        PidsLimit: resources.pids,
        Memory: resources.memoryMb * 1024 * 1024,
        NanoCpus: Math.round(resources.cpus * 1e9),
        Runtime: runtime,
        Init: true,
      },
    });
    try {
      if (spec.repo) await this.cloneInto(created, spec, options);
      // With nothing to run after start, mark provisioning done before it (saves an exec round trip).
      if (spec.repo && !image.postCreateCommand) await created.putArchive(markerTar(spec.id), { path: '/' });
      const info = await this.startAndWait(spec.id);
      if (image.postCreateCommand) {
        options.onProgress?.({
          phase: 'setup',
          message: `postCreateCommand: ${image.postCreateCommand.join(' ')}`,
        });
        const code = await this.exec(spec.id, image.postCreateCommand, (line) =>
          options.onProgress?.({ phase: 'setup', message: line }),
        );
        if (code !== 0)
          throw new ProviderError(
            'setup_failed',
            `postCreateCommand exited ${code}`,
            'fix postCreateCommand in devcontainer.json; its output was streamed to onProgress',
          );
        await created.putArchive(markerTar(spec.id), { path: '/' });
      }
      return { ...info, created: true, image: image.image, isolation };
    } catch (err) {
      await created.remove({ force: true, v: true }).catch(() => undefined);
      throw err;
    }
  }

  async start(id: string): Promise<EnvironmentInfo> {
    const c = await this.docker
      .getContainer(containerName(id))
      .inspect()
      .catch(() => undefined);
    if (!c) throw new ProviderError('not_found', `environment ${id} has no container`, 'create it first');
    if (c.State.Running) return this.waitReady(id);
    return this.startAndWait(id);
  }

  async stop(id: string): Promise<void> {
    await this.docker
      .getContainer(containerName(id))
      .stop({ t: 10 })
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 304 && err.statusCode !== 404) throw err;
      });
  }

  async destroy(id: string): Promise<void> {
    await this.docker
      .getContainer(containerName(id))
      .remove({ force: true, v: true })
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 404) throw err;
      });
  }

  async inspect(id: string): Promise<EnvironmentInfo> {
    const node = await this.node();
    const c = await this.docker
      .getContainer(containerName(id))
      .inspect()
      .catch(() => undefined);
    const base = { id, node, provider: this.name, gatewayUrl: null };
    if (!c) return { ...base, state: 'missing', detail: `no container ${containerName(id)}` };
    const ports = this.publishedPorts(c);
    if (c.State.Running)
      return { ...base, state: 'ready', gatewayUrl: ports[String(GATEWAY_PORT)] ?? null, ports };
    if (c.State.Status === 'created') return { ...base, state: 'provisioning' };
    if (c.State.ExitCode === 0 && !c.State.OOMKilled) return { ...base, state: 'stopped' };
    const why = c.State.OOMKilled
      ? 'killed for exceeding its memory limit'
      : c.State.ExitCode === 137
        ? 'killed (SIGKILL) outside Berth'
        : `the gateway exited with code ${c.State.ExitCode}`;
    return { ...base, state: 'failed', detail: `${why}${c.State.Error ? `: ${c.State.Error}` : ''}` };
  }

  async list(): Promise<ListedEnvironment[]> {
    const all = await this.docker.listContainers({ all: true, filters: { label: [LABEL_ENV] } });
    return all.map((c) => ({
      id: c.Labels[LABEL_ENV] ?? '',
      ownerId: c.Labels[LABEL_OWNER],
      installation: c.Labels[LABEL_INSTALLATION],
      state: c.State === 'running' ? 'ready' : c.State === 'created' ? 'provisioning' : 'stopped',
    }));
  }

  async snapshot(id: string, name?: string): Promise<{ image: string }> {
    const [repo, tag] = (name ?? `berth-snap:${id}-${Date.now()}`).split(':');
    await this.docker.getContainer(containerName(id)).commit({ repo, tag: tag ?? 'latest', pause: true });
    return { image: `${repo}:${tag ?? 'latest'}` };
  }

  /** Runs a command in the environment as its user; output lines go to `onLine`. Returns the exit code. */
  async exec(id: string, cmd: string[], onLine?: (line: string) => void): Promise<number> {
    const container = this.docker.getContainer(containerName(id));
    const ex = await container.exec({
      Cmd: cmd,
      AttachStdout: true,
      AttachStderr: true,
      WorkingDir: '/workspace',
    });
    const stream = await ex.start({ hijack: true, stdin: false });
    const out = new PassThrough();
    this.docker.modem.demuxStream(stream, out, out);
    let buf = '';
    out.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) onLine?.(l);
    });
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    if (buf) onLine?.(buf);
    return (await ex.inspect()).ExitCode ?? -1;
  }

  /** Runtimes registered with this Docker daemon (runc, and runsc / kata-runtime when installed). */
  async runtimes(): Promise<string[]> {
    this.installedRuntimes ??= Object.keys(
      ((await this.docker.info()) as { Runtimes?: Record<string, unknown> }).Runtimes ?? { runc: {} },
    );
    return this.installedRuntimes;
  }

  async node(): Promise<string> {
    this.nodeName ??= ((await this.docker.info()) as { Name: string }).Name;
    return this.nodeName;
  }

  private publishedPorts(c: Docker.ContainerInspectInfo): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [key, binds] of Object.entries(c.NetworkSettings.Ports ?? {})) {
      const b = binds?.[0];
      if (!b) continue;
      const host = b.HostIp === '0.0.0.0' || b.HostIp === '' ? '127.0.0.1' : b.HostIp;
      out[key.split('/')[0] ?? key] = `http://${host}:${b.HostPort}`;
    }
    return out;
  }

  private async hasMarker(container: Docker.Container, id: string): Promise<boolean> {
    try {
      await container.getArchive({ path: marker(id) });
      return true;
    } catch {
      return false;
    }
  }

  /** Clones on the host (the token never enters the container) and copies the tree into /workspace. */
  private async cloneInto(
    container: Docker.Container,
    spec: EnvironmentSpec,
    options: CreateOptions,
  ): Promise<void> {
    if (!spec.repo) return;
    const tmp = await mkdtemp(join(tmpdir(), 'berth-clone-'));
    try {
      options.onProgress?.({ phase: 'clone', message: `cloning ${spec.repo.url}` });
      await cloneRepo(spec.repo, join(tmp, 'w'), (line) =>
        options.onProgress?.({ phase: 'clone', message: line }),
      );
      const tar = spawn(
        'tar',
        ['-C', join(tmp, 'w'), '--owner=1000', '--group=1000', '--numeric-owner', '-c', '.'],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      await container.putArchive(tar.stdout, { path: '/workspace' });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  private async startAndWait(id: string): Promise<EnvironmentInfo> {
    const container = this.docker.getContainer(containerName(id));
    // Attach before start so only this run's output is seen (an old "listening" line cannot match).
    const stream = await container.attach({ stream: true, stdout: true, stderr: true });
    const out = new PassThrough();
    this.docker.modem.demuxStream(stream, out, out);
    let log = '';
    const listening = new Promise<void>((resolve, reject) => {
      out.on('data', (d: Buffer) => {
        log += d.toString();
        if (log.includes('"gateway listening"')) resolve();
      });
      stream.on('end', () => reject(new Error(`the gateway exited before it was ready: ${log.slice(-500)}`)));
    });
    try {
      await container.start();
      await withTimeout(
        listening,
        this.opts.readyTimeoutMs ?? 60_000,
        'the gateway did not print its ready line',
      );
    } finally {
      (stream as unknown as { destroy(): void }).destroy();
    }
    return this.waitReady(id);
  }

  /** The gateway is up inside; wait until /healthz answers through the published port (docker-proxy has no event). */
  private async waitReady(id: string): Promise<EnvironmentInfo> {
    const info = await this.inspect(id);
    if (info.state !== 'ready' || !info.gatewayUrl)
      throw new ProviderError(
        'gateway_failed',
        `environment ${id} is ${info.state}: ${info.detail ?? ''}`,
        'look at `docker logs berth-env-<id>`',
      );
    const url = info.gatewayUrl;
    if (!(await pollUntil(() => healthz(url, 1000), this.opts.readyTimeoutMs ?? 60_000, 20))) {
      throw new ProviderError(
        'gateway_failed',
        `the gateway of ${id} does not answer /healthz at ${url}`,
        'check the bind address and `docker logs berth-env-<id>`',
      );
    }
    return info;
  }
}

/** A one-file tar (the provisioning marker, empty, mode 0644) for putArchive at `/`. */
function markerTar(id: string): Buffer {
  const header = Buffer.alloc(512);
  const put = (value: string, offset: number, length: number) => header.write(value, offset, length, 'ascii');
  put(marker(id).slice(1), 0, 100);
  put('0000644\0', 100, 8);
  put('0001750\0', 108, 8);
  put('0001750\0', 116, 8);
  put('00000000000\0', 124, 12);
  put(
    `${Math.floor(Date.now() / 1000)
      .toString(8)
      .padStart(11, '0')}\0`,
    136,
    12,
  );
  put('        ', 148, 8);
  put('0', 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const b of header) sum += b;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return Buffer.concat([header, Buffer.alloc(1024)]);
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>(
      (_, reject) => (timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms)),
    ),
  ]).finally(() => clearTimeout(timer));
}
