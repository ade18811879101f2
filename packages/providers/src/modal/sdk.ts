import { ModalClient, type App, type Image, type Sandbox } from 'modal';

/**
 * The only file that imports the `modal` SDK (pinned to 0.11.1; it is 0.x and its surface moves).
 * Everything else talks to `ModalApi`, which speaks in plain ids and strings.
 */

export interface ModalCredentials {
  tokenId: string;
  tokenSecret: string;
}

export interface ModalConnection extends ModalCredentials {
  /** Modal API endpoint; `http://127.0.0.1:<port>` for the fake. Unset: the SDK default (api.modal.com). */
  serverUrl?: string;
  /** Modal environment name (workspace sub-environment); unset: the profile's default. */
  environment?: string;
}

export interface ImageRecipe {
  /** A registry reference (`FROM <ref>`) or the id of a Modal image (a snapshot). */
  from: { registry: string } | { imageId: string };
  /** Dockerfile commands (RUN, ENV, WORKDIR, USER …) applied on top, in one layer. */
  commands: string[];
  /** Env for the build's RUN steps only, sent as an ephemeral Modal Secret (never in the commands). */
  secretEnv?: Record<string, string>;
}

export interface SandboxRequest {
  appName: string;
  imageId: string;
  command: string[];
  env: Record<string, string>;
  cpu: number;
  memoryMiB: number;
  timeoutMs: number;
  idleTimeoutMs?: number;
  workdir: string;
  encryptedPorts: number[];
  tags: Record<string, string>;
  name: string;
}

export interface SandboxStatus {
  /** Undefined while it runs. */
  exitCode?: number;
}

export interface ModalApi {
  buildImage(appName: string, recipe: ImageRecipe): Promise<string>;
  createSandbox(req: SandboxRequest): Promise<string>;
  /** Running sandboxes that carry at least these tags, with all their tags. */
  listSandboxes(
    appName: string,
    tags: Record<string, string>,
  ): Promise<{ id: string; tags: Record<string, string> }[]>;
  poll(sandboxId: string): Promise<SandboxStatus>;
  tunnelUrl(sandboxId: string, port: number): Promise<string | undefined>;
  snapshotFilesystem(sandboxId: string): Promise<string>;
  terminate(sandboxId: string): Promise<void>;
  close(): void;
}

/**
 * The SDK has no constructor option for the endpoint (0.11.1 reads `MODAL_SERVER_URL` from the
 * environment in the constructor, synchronously). We set it for exactly that synchronous call
 * and restore it, so the operator's config, not the process environment, decides.
 */
function newClient(conn: ModalConnection): ModalClient {
  const saved = process.env.MODAL_SERVER_URL;
  try {
    if (conn.serverUrl) process.env.MODAL_SERVER_URL = conn.serverUrl;
    else delete process.env.MODAL_SERVER_URL;
    return new ModalClient({
      tokenId: conn.tokenId,
      tokenSecret: conn.tokenSecret,
      environment: conn.environment,
      logLevel: 'error',
    });
  } finally {
    if (saved === undefined) delete process.env.MODAL_SERVER_URL;
    else process.env.MODAL_SERVER_URL = saved;
  }
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

export class SdkModalApi implements ModalApi {
  private readonly client: ModalClient;
  private readonly apps = new Map<string, Promise<App>>();

  constructor(conn: ModalConnection) {
    this.client = newClient(conn);
  }

  private app(name: string): Promise<App> {
    let app = this.apps.get(name);
    if (!app) {
      app = this.client.apps.fromName(name, { createIfMissing: true });
      // A failed lookup (auth, network) must not be cached.
      app.catch(() => this.apps.delete(name));
      this.apps.set(name, app);
    }
    return app;
  }

  async buildImage(appName: string, recipe: ImageRecipe): Promise<string> {
    const app = await this.app(appName);
    let image: Image =
      'registry' in recipe.from
        ? this.client.images.fromRegistry(recipe.from.registry)
        : await this.client.images.fromId(recipe.from.imageId);
    if (recipe.commands.length > 0) {
      const secrets =
        recipe.secretEnv && Object.keys(recipe.secretEnv).length > 0
          ? [await this.client.secrets.fromObject(recipe.secretEnv)]
          : undefined;
      image = image.dockerfileCommands(recipe.commands, secrets ? { secrets } : undefined);
    }
    const built = await image.build(app);
    return built.imageId;
  }

  async createSandbox(req: SandboxRequest): Promise<string> {
    const app = await this.app(req.appName);
    const image = await this.client.images.fromId(req.imageId);
    const sb = await this.client.sandboxes.create(app, image, {
      command: req.command,
      env: req.env,
      cpu: req.cpu,
      memoryMiB: req.memoryMiB,
      timeoutMs: req.timeoutMs,
      ...(req.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: req.idleTimeoutMs }),
      workdir: req.workdir,
      encryptedPorts: req.encryptedPorts,
      tags: req.tags,
      name: req.name,
    });
    const id = sb.sandboxId;
    sb.detach();
    return id;
  }

  async listSandboxes(
    appName: string,
    tags: Record<string, string>,
  ): Promise<{ id: string; tags: Record<string, string> }[]> {
    const app = await this.app(appName);
    const out: { id: string; tags: Record<string, string> }[] = [];
    for await (const sb of this.client.sandboxes.list({ appId: app.appId, tags })) {
      out.push({ id: sb.sandboxId, tags: await sb.getTags() });
      sb.detach();
    }
    return out;
  }

  private async with<T>(sandboxId: string, fn: (sb: Sandbox) => Promise<T>): Promise<T> {
    const sb = await this.client.sandboxes.fromId(sandboxId);
    try {
      return await fn(sb);
    } finally {
      // Drops the command-router channel and its idle timer.
      sb.detach();
    }
  }

  poll(sandboxId: string): Promise<SandboxStatus> {
    return this.with(sandboxId, async (sb) => {
      const code = await sb.poll();
      return code === null ? {} : { exitCode: code };
    });
  }

  tunnelUrl(sandboxId: string, port: number): Promise<string | undefined> {
    return this.with(sandboxId, async (sb) => {
      const t = (await sb.tunnels())[port];
      if (!t) return undefined;
      // A loopback tunnel (the fake, or a local relay) has no public certificate: plain HTTP.
      return LOOPBACK.has(t.host) ? `http://${t.host}:${t.port}` : t.url;
    });
  }

  snapshotFilesystem(sandboxId: string): Promise<string> {
    return this.with(sandboxId, async (sb) => (await sb.snapshotFilesystem()).imageId);
  }

  /** Returns once the sandbox has finished, so a list right after no longer shows it running. */
  terminate(sandboxId: string): Promise<void> {
    return this.with(sandboxId, async (sb) => {
      await sb.terminate({ wait: true });
    });
  }

  close(): void {
    this.client.close();
  }
}
