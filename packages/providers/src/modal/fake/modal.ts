import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cp, lchown, lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { addService, commandRouterService, FakeStatus, modalClientService, type Handler } from './grpc.js';
import { FakeSandbox, INIT, unshareArgs, type Result } from './sandbox.js';

export interface FakeModalOptions {
  /** Scratch directory for images, sandboxes and their sockets. */
  dir: string;
  tokenId: string;
  tokenSecret: string;
  /** Running sandboxes allowed per workspace; more is RESOURCE_EXHAUSTED, like a Modal quota. */
  maxSandboxes?: number;
  /** Registry references that cannot be pulled (the build fails), like a typo'd image. */
  missingImages?: (ref: string) => boolean;
}

export type FakeSandboxRecord = FakeSandbox & {
  appId: string;
  name: string;
  tags: Record<string, string>;
  imageId: string;
  createdAt: number;
  taskId: string;
  resources: { milliCpu: number; memoryMb: number };
};

const tagMap = (list: unknown): Record<string, string> =>
  Object.fromEntries((list as { tagName: string; tagValue: string }[]).map((t) => [t.tagName, t.tagValue]));
const tagList = (t: Record<string, string>): { tagName: string; tagValue: string }[] =>
  Object.entries(t).map(([tagName, tagValue]) => ({ tagName, tagValue }));
const tunnelsOf = (sb: FakeSandbox): Record<string, unknown>[] =>
  [...sb.tunnels].map(([containerPort, t]) => ({ host: '127.0.0.1', port: t.port, containerPort }));

interface FakeImage {
  id: string;
  /** The image's filesystem layer over this host's / (see sandbox-init.mjs). */
  root: string;
  env: Record<string, string>;
}

const { status } = grpc;
const ALNUM = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** Modal ids: a prefix and 22 base62 characters (the SDK tells V1 sandboxes by this shape). */
const newId = (prefix: string, length = 22): string =>
  `${prefix}-${Array.from(randomBytes(length), (b) => ALNUM[b % 62]).join('')}`;
const jwt = (claims: Record<string, unknown>): string =>
  [{ alg: 'none' }, claims, 'fake']
    .map((p) => Buffer.from(typeof p === 'string' ? p : JSON.stringify(p)).toString('base64url'))
    .join('.');

/**
 * FakeModal: a loopback gRPC server speaking the part of Modal's API that the `modal` SDK uses
 * for Berth (see proto/), so the real SDK runs unchanged against it. Images are directories
 * built by running RUN steps; sandboxes are real process groups (see sandbox.ts); snapshots
 * are directory copies. Not Modal: no gVisor, no registry pulls, RUN steps run on this host.
 */
export class FakeModal {
  /** RPC method names in call order, for tests that check what the SDK asked for. */
  readonly calls: string[] = [];
  readonly sandboxes = new Map<string, FakeSandboxRecord>();
  private readonly failures: { method: string; code: grpc.status; details: string }[] = [];
  private readonly apps = new Map<string, string>();
  private readonly secrets = new Map<string, Record<string, string>>();
  private readonly images = new Map<string, FakeImage>();
  private readonly imageCache = new Map<string, string>();
  private readonly server = new grpc.Server();
  private lastCreatedAt = 0;
  private readonly creating = new Set<string>();
  port = 0;

  private constructor(private readonly opts: FakeModalOptions) {}

  static async start(opts: FakeModalOptions): Promise<FakeModal> {
    const fake = new FakeModal(opts);
    await mkdir(opts.dir, { recursive: true });
    addService(fake.server, modalClientService(), fake.handlers(), (m, meta) => fake.before(m, meta, true));
    addService(fake.server, commandRouterService(), fake.routerHandlers(), (m, meta) =>
      fake.before(m, meta, false),
    );
    fake.port = await new Promise<number>((ok, fail) =>
      fake.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? fail(err) : ok(port),
      ),
    );
    return fake;
  }

  /** The endpoint to give the SDK; plain HTTP/2 because the SDK trusts a loopback server without TLS. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The next `times` calls of `method` fail with this status (e.g. UNAVAILABLE for an outage). */
  failNext(method: string, code: grpc.status, details: string, times = 1): void {
    for (let i = 0; i < times; i++) this.failures.push({ method, code, details });
  }

  running(): string[] {
    return [...this.sandboxes.values()].filter((s) => s.running).map((s) => s.spec.id);
  }

  async close(): Promise<void> {
    await Promise.all([...this.sandboxes.values()].map((s) => s.kill()));
    this.server.forceShutdown();
  }

  private before(method: string, meta: grpc.Metadata, authenticate: boolean): void {
    this.calls.push(method);
    const i = this.failures.findIndex((f) => f.method === method);
    if (i >= 0) {
      const [f] = this.failures.splice(i, 1);
      if (f) throw new FakeStatus(f.code, f.details);
    }
    if (
      authenticate &&
      (meta.get('x-modal-token-id')[0] !== this.opts.tokenId ||
        meta.get('x-modal-token-secret')[0] !== this.opts.tokenSecret)
    ) {
      throw new FakeStatus(status.UNAUTHENTICATED, 'Token ID/secret is invalid or has been revoked');
    }
  }

  private sandbox(req: Record<string, unknown>): FakeSandboxRecord {
    const sb = this.sandboxes.get(String(req.sandboxId));
    if (!sb) throw new FakeStatus(status.NOT_FOUND, `Sandbox ${String(req.sandboxId)} not found`);
    return sb;
  }

  private handlers(): Record<string, Handler> {
    const routerAccess = async (taskId: string): Promise<Record<string, unknown>> => {
      if (![...this.sandboxes.values()].some((s) => s.taskId === taskId))
        throw new FakeStatus(status.NOT_FOUND, `Task ${taskId} not found`);
      // https is what the SDK demands; it skips TLS when the control plane is on loopback, as here.
      return {
        url: `https://127.0.0.1:${this.port}`,
        jwt: jwt({ task_id: taskId, exp: Math.floor(Date.now() / 1000) + 3600 }),
      };
    };
    /** Resolves after `secs` or when the sandbox ends, whichever is first (Modal's long poll). */
    const waitFor = async (sb: FakeSandbox, secs: number): Promise<Result | undefined> => {
      if (!sb.running || secs <= 0) return sb.result;
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([
        sb.exited,
        new Promise<undefined>((ok) => {
          timer = setTimeout(() => ok(undefined), secs * 1000);
        }),
      ]);
      clearTimeout(timer);
      return r;
    };
    const handlers: Record<string, Handler> = {
      AuthTokenGet: async () => ({ token: jwt({ exp: Math.floor(Date.now() / 1000) + 3600 }) }),
      AppGetOrCreate: async (req) => {
        const name = String(req.appName);
        if (!this.apps.has(name)) this.apps.set(name, newId('ap'));
        return { appId: this.apps.get(name) };
      },
      EnvironmentGetOrCreate: async () => ({
        environmentId: 'en-fake',
        metadata: { name: 'main', settings: { imageBuilderVersion: '2025.06' } },
      }),
      SecretGetOrCreate: async (req) => {
        const id = newId('st');
        this.secrets.set(id, { ...(req.envDict as Record<string, string>) });
        return { secretId: id };
      },
      ImageFromId: async (req) => {
        if (!this.images.has(String(req.imageId)))
          throw new FakeStatus(status.NOT_FOUND, `Image ${String(req.imageId)} not found`);
        return { imageId: req.imageId };
      },
      ImageGetOrCreate: async (req) =>
        this.build(
          req.image as {
            baseImages: { imageId: string; dockerTag: string }[];
            dockerfileCommands: string[];
            secretIds: string[];
          },
        ),
      SandboxCreate: async (req) => ({ sandboxId: (await this.createSandbox(req, 1)).spec.id }),
      SandboxCreateV2: async (req) => {
        const sb = await this.createSandbox(req, 2);
        return {
          sandboxId: sb.spec.id,
          taskId: sb.taskId,
          tunnels: tunnelsOf(sb),
          metadata: { appId: sb.appId },
        };
      },
      SandboxGetTaskId: async (req) => {
        const sb = this.sandbox(req);
        return { taskId: sb.taskId, ...(sb.result ? { taskResult: sb.result } : {}) };
      },
      SandboxGetTunnels: async (req) => ({ tunnels: tunnelsOf(this.sandbox(req)) }),
      SandboxList: async (req) => {
        const want = tagMap(req.tags);
        const before = Number(req.beforeTimestamp) || Infinity;
        const found = [...this.sandboxes.values()]
          .filter(
            (s) =>
              (req.includeFinished || s.running) &&
              (!req.appId || s.appId === req.appId) &&
              s.createdAt < before,
          )
          .filter((s) => Object.entries(want).every(([k, v]) => s.tags[k] === v))
          .sort((a, b) => b.createdAt - a.createdAt);
        return {
          sandboxes: found.map((s) => ({
            id: s.spec.id,
            createdAt: s.createdAt,
            appId: s.appId,
            tags: tagList(s.tags),
            name: s.name,
            imageId: s.imageId,
          })),
        };
      },
      SandboxTagsSet: async (req) => {
        this.sandbox(req).tags = tagMap(req.tags);
        return {};
      },
      SandboxTagsGet: async (req) => ({ tags: tagList(this.sandbox(req).tags) }),
      SandboxWait: async (req) => {
        const sb = this.sandbox(req);
        const result = await waitFor(sb, Number(req.timeout));
        return { ...(result ? { result } : {}), metadata: { appId: sb.appId } };
      },
      SandboxTerminate: async (req) => {
        const sb = this.sandbox(req);
        if (!sb.running) return { existingResult: sb.result };
        await sb.end();
        return {};
      },
      SandboxGetFromName: async (req) => {
        const appId = this.apps.get(String(req.appName));
        const sb = [...this.sandboxes.values()].find(
          (s) => s.running && s.appId === appId && s.name === req.sandboxName,
        );
        if (!sb) throw new FakeStatus(status.NOT_FOUND, `Sandbox '${String(req.sandboxName)}' not found`);
        return { sandboxId: sb.spec.id, metadata: { appId } };
      },
      TaskGetCommandRouterAccess: async (req) => routerAccess(String(req.taskId)),
      SandboxGetCommandRouterAccess: async (req) => routerAccess(this.sandbox(req).taskId),
    };
    // V2 reads and writes use the V1 messages; only creation differs.
    for (const m of [
      'SandboxGetTaskId',
      'SandboxGetTunnels',
      'SandboxList',
      'SandboxTagsGet',
      'SandboxWait',
      'SandboxTerminate',
    ]) {
      const h = handlers[m];
      if (h) handlers[`${m}V2`] = h;
    }
    return handlers;
  }

  private async createSandbox(req: Record<string, unknown>, version: 1 | 2): Promise<FakeSandboxRecord> {
    const def = req.definition as {
      resources?: { milliCpu: number; memoryMb: number };
      entrypointArgs: string[];
      imageId: string;
      secretIds: string[];
      timeoutSecs: number;
      idleTimeoutSecs: number;
      workdir: string;
      name: string;
      openPorts?: { ports: { port: number }[] };
    };
    const appId = String(req.appId);
    const image = this.images.get(def.imageId);
    if (!image) throw new FakeStatus(status.NOT_FOUND, `Image ${def.imageId} not found`);
    const live = [...this.sandboxes.values()].filter((s) => s.running);
    const nameKey = `${appId}/${def.name}`;
    if (
      def.name &&
      (this.creating.has(nameKey) || live.some((s) => s.appId === appId && s.name === def.name))
    )
      throw new FakeStatus(status.ALREADY_EXISTS, `Sandbox with name '${def.name}' already exists`);
    if (this.opts.maxSandboxes !== undefined && live.length >= this.opts.maxSandboxes)
      throw new FakeStatus(
        status.RESOURCE_EXHAUSTED,
        `Sandbox quota reached: at most ${this.opts.maxSandboxes} running sandboxes in this workspace`,
      );
    // The SDK tells V1 from V2 sandboxes by the id's shape (22 characters after "sb-" is V1).
    const id = newId('sb', version === 1 ? 22 : 26);
    const dir = join(this.opts.dir, 'sandboxes', id);
    // The name is taken from here on, as Modal's is, even while the layer is still being copied.
    if (def.name) this.creating.add(nameKey);
    try {
      await copyLayer(image.root, join(dir, 'upper'));
    } finally {
      this.creating.delete(nameKey);
    }
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: '/root',
      MODAL_SANDBOX_ID: id,
      ...image.env,
    };
    for (const s of def.secretIds) Object.assign(env, this.secrets.get(s));
    for (const src of (req.secretSources ?? []) as {
      secretId: string;
      env?: { contents: Record<string, string> };
    }[]) {
      Object.assign(env, src.secretId ? this.secrets.get(src.secretId) : src.env?.contents);
    }
    const sb: FakeSandboxRecord = Object.assign(
      new FakeSandbox({
        id,
        dir,
        runDir: join(dir, 'run'),
        argv: def.entrypointArgs,
        env,
        workdir: def.workdir || '/',
        ports: (def.openPorts?.ports ?? []).map((p) => p.port),
        timeoutSecs: def.timeoutSecs,
        idleTimeoutSecs: def.idleTimeoutSecs,
      }),
      {
        appId,
        name: def.name,
        tags: tagMap(req.tags),
        imageId: def.imageId,
        createdAt: (this.lastCreatedAt = Math.max(Date.now() / 1000, this.lastCreatedAt + 0.001)),
        taskId: newId('ta'),
        resources: { milliCpu: def.resources?.milliCpu ?? 0, memoryMb: def.resources?.memoryMb ?? 0 },
      },
    );
    this.sandboxes.set(id, sb);
    await sb.start();
    return sb;
  }

  private routerHandlers(): Record<string, Handler> {
    return {
      TaskSnapshotFilesystem: async (req, meta) => {
        if (!String(meta.get('authorization')[0] ?? '').startsWith('Bearer '))
          throw new FakeStatus(status.UNAUTHENTICATED, 'missing command router token');
        const sb = [...this.sandboxes.values()].find((s) => s.taskId === req.taskId);
        if (!sb) throw new FakeStatus(status.NOT_FOUND, `Task ${String(req.taskId)} not found`);
        if (!sb.running) throw new FakeStatus(status.FAILED_PRECONDITION, 'Sandbox has already finished');
        const id = newId('im');
        const root = join(this.opts.dir, 'images', id, 'upper');
        await copyLayer(join(sb.spec.dir, 'upper'), root);
        this.images.set(id, { id, root, env: { ...this.images.get(sb.imageId)?.env } });
        return { imageId: id };
      },
    };
  }

  /** One image layer: FROM (a registry ref or a base image id) and Dockerfile commands, cached by their hash. */
  private async build(image: {
    baseImages: { imageId: string; dockerTag: string }[];
    dockerfileCommands: string[];
    secretIds: string[];
  }): Promise<Record<string, unknown>> {
    const key = createHash('sha256')
      .update(JSON.stringify([image.baseImages, image.dockerfileCommands]))
      .digest('hex');
    const cached = this.imageCache.get(key);
    if (cached) return { imageId: cached, result: { status: 1 } };
    const id = newId('im');
    const dir = join(this.opts.dir, 'images', id);
    const root = join(dir, 'upper');
    const fail = (exception: string): Record<string, unknown> => ({
      imageId: id,
      result: { status: 2, exception },
    });
    const [first = '', ...rest] = image.dockerfileCommands;
    const from = first.replace(/^FROM\s+/i, '').trim();
    const base = image.baseImages.find((b) => b.dockerTag === from);
    const env: Record<string, string> = {};
    if (base) {
      const b = this.images.get(base.imageId);
      if (!b) return fail(`base image ${base.imageId} not found`);
      await copyLayer(b.root, root);
      Object.assign(env, b.env);
    } else {
      if (this.opts.missingImages?.(from))
        return fail(
          `Failed to pull image ${from}: manifest unknown (is the name and tag right, and is it public or given a registry secret?)`,
        );
      await mkdir(root, { recursive: true });
    }
    const secretEnv = Object.assign({}, ...image.secretIds.map((s) => this.secrets.get(s) ?? {})) as Record<
      string,
      string
    >;
    for (const line of rest) {
      const [word = '', ...args] = line.split(/\s+/);
      const arg = line.slice(word.length).trim();
      switch (word.toUpperCase()) {
        case 'RUN': {
          const res = await runStep(arg, dir, {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            HOME: '/root',
            ...env,
            ...secretEnv,
          });
          if (res.code !== 0) {
            await rm(dir, { recursive: true, force: true });
            return fail(
              `RUN ${arg.length > 200 ? `${arg.slice(0, 200)}…` : arg} exited with code ${res.code}\n${res.output.slice(-2000)}`,
            );
          }
          break;
        }
        case 'ENV':
          for (const pair of arg.includes('=') ? args : [`${args[0] ?? ''}=${args.slice(1).join(' ')}`]) {
            const eq = pair.indexOf('=');
            if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1).replace(/^"(.*)"$/, '$1');
          }
          break;
        case 'COPY':
        case 'ADD':
          await rm(dir, { recursive: true, force: true });
          return fail(`${word} needs context files, which this image has none of`);
        default:
          // USER, WORKDIR, LABEL …: metadata the fake does not model.
          break;
      }
    }
    this.images.set(id, { id, root, env });
    this.imageCache.set(key, id);
    return { imageId: id, result: { status: 1 } };
  }
}

/**
 * Copies a filesystem layer with its owners (an image or snapshot keeps who owns /workspace, as
 * Modal's do); sockets, fifos and overlay whiteouts are skipped (they cannot be copied).
 */
async function copyLayer(src: string, dst: string): Promise<void> {
  await cp(src, dst, {
    recursive: true,
    filter: async (p) => lstat(p).then((st) => !(st.isSocket() || st.isFIFO() || st.isCharacterDevice())),
  });
  const own = async (from: string, to: string): Promise<void> => {
    const st = await lstat(from);
    await lchown(to, st.uid, st.gid);
    if (st.isDirectory()) for (const name of await readdir(to)) await own(join(from, name), join(to, name));
  };
  await own(src, dst);
}

/** A RUN step in a fake container over the image's layer (host network, as a build has). */
function runStep(
  command: string,
  dir: string,
  env: Record<string, string>,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const config = JSON.stringify({
      net: false,
      ports: [],
      dir,
      workdir: '/',
      argv: ['bash', '-c', command],
    });
    const child = spawn('unshare', [...unshareArgs(false), '--', process.execPath, INIT, config], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (err) => resolve({ code: 127, output: err.message }));
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}
