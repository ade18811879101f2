import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import type Docker from 'dockerode';
import { readContextConfig, type ContextConfig } from './config-files.js';
import { ProviderError } from './errors.js';
import type { ProgressEvent } from './types.js';

type IgnoreFactory = () => { add(p: string[]): { ignores(path: string): boolean } };
const dockerignore = createRequire(import.meta.url)('@balena/dockerignore') as IgnoreFactory;

export interface ImageRequest {
  /** The operator's base image (see `baseImageTag`). */
  baseImage: string;
  /** Directory with berth.yaml and/or .devcontainer/devcontainer.json. */
  context?: string;
  berthYaml?: string;
  /** An explicit image; used as the starting point instead of the base image. */
  image?: string;
  onProgress?: (event: ProgressEvent) => void;
}

export interface ImageResult {
  image: string;
  /** True when every derived layer was already built. */
  cached: boolean;
  /** The user the environment's processes run as. */
  user: string;
  env: Record<string, string>;
  postCreateCommand?: string[];
  forwardPorts: number[];
}

const TAG = 'berth-img';

/**
 * Derives environment images: devcontainer Dockerfile, then berth.yaml setup commands, each
 * built once and tagged `berth-img:<hash of inputs>`, so a second request is a lookup.
 */
export class ImageBuilder {
  constructor(
    private readonly docker: Docker,
    private readonly opts: { allowPull?: boolean } = {},
  ) {}

  async resolve(req: ImageRequest): Promise<ImageResult> {
    const config: ContextConfig = await readContextConfig(req.context, req.berthYaml);
    const dc = config.devcontainer;
    let from = req.image ?? dc?.image ?? config.berth?.image ?? req.baseImage;
    let cached = true;
    if (dc?.build && config.devcontainerDir) {
      const ctx = resolve(config.devcontainerDir, dc.build.context ?? '.');
      const dockerfile = relative(ctx, resolve(config.devcontainerDir, dc.build.dockerfile));
      const built = await this.buildContext(
        ctx,
        dockerfile,
        dc.build.args ?? {},
        'devcontainer Dockerfile',
        req.onProgress,
      );
      from = built.image;
      cached &&= built.cached;
    } else {
      await this.ensureImage(from);
    }
    const fromOurBase = from === req.baseImage;
    const user = dc?.remoteUser ?? (fromOurBase ? 'berth' : '1000:1000');
    const setup = config.berth?.setup ?? [];
    // Images not built from ours still need /workspace owned by the environment user.
    if (setup.length > 0 || !fromOurBase) {
      const lines = [`FROM ${from}`, 'USER root', ...setup.map((c) => `RUN ${c}`)];
      if (!fromOurBase) lines.push(`RUN mkdir -p /workspace && chown ${user} /workspace`);
      lines.push(`USER ${user}`, 'WORKDIR /workspace');
      const fromId = (await this.docker.getImage(from).inspect()).Id;
      const dir = await mkdtemp(join(tmpdir(), 'berth-build-'));
      try {
        await writeFile(join(dir, 'Dockerfile'), `# from ${fromId}\n${lines.join('\n')}\n`);
        const built = await this.buildContext(
          dir,
          'Dockerfile',
          {},
          'berth.yaml setup',
          req.onProgress,
          (step) => {
            const i = step - 3; // FROM and USER root come first
            const cmd = setup[i];
            return cmd === undefined ? undefined : `setup command ${i + 1} of ${setup.length} (${cmd})`;
          },
        );
        from = built.image;
        cached &&= built.cached;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    const post = dc?.postCreateCommand;
    return {
      image: from,
      cached,
      user,
      env: { ...config.berth?.env, ...dc?.containerEnv },
      postCreateCommand:
        post === undefined
          ? undefined
          : typeof post === 'string'
            ? ['sh', '-c', post]
            : Array.isArray(post)
              ? post
              : [
                  'sh',
                  '-c',
                  Object.values(post)
                    .map((v) => (Array.isArray(v) ? v.join(' ') : v))
                    .join(' && '),
                ],
      forwardPorts: (dc?.forwardPorts ?? [])
        .map((p) => (typeof p === 'number' ? p : Number(String(p).split(':').pop())))
        .filter((p) => Number.isInteger(p) && p > 0),
    };
  }

  /** Fails with a hint when an image is neither local nor (if allowed) pullable. */
  async ensureImage(ref: string): Promise<void> {
    try {
      await this.docker.getImage(ref).inspect();
      return;
    } catch {
      // not local
    }
    if (this.opts.allowPull) {
      try {
        const stream = await this.docker.pull(ref);
        await new Promise<void>((ok, fail) =>
          this.docker.modem.followProgress(stream, (err) => (err ? fail(err) : ok())),
        );
        return;
      } catch (err) {
        throw new ProviderError(
          'image_not_found',
          `image "${ref}" is not on this Docker host and could not be pulled: ${(err as Error).message}`,
          'check the image name, or build it on the host; leave `image` unset for the Berth base image',
        );
      }
    }
    throw new ProviderError(
      'image_not_found',
      `image "${ref}" is not on this Docker host (pulling is disabled)`,
      'check the image name or build it on the host (`docker image ls`); leave `image` unset for the Berth base image',
    );
  }

  private async buildContext(
    ctx: string,
    dockerfile: string,
    args: Record<string, string>,
    what: string,
    onProgress: ((e: ProgressEvent) => void) | undefined,
    describeStep?: (step: number) => string | undefined,
  ): Promise<{ image: string; cached: boolean }> {
    const files = await contextFiles(ctx, dockerfile);
    const hash = createHash('sha256');
    hash.update(JSON.stringify({ dockerfile, args }));
    for (const f of files) hash.update(`\0${f}\0`).update(await readFile(join(ctx, f)));
    const image = `${TAG}:${hash.digest('hex').slice(0, 16)}`;
    if (await this.exists(image)) {
      onProgress?.({ phase: 'build', message: `${what}: cached ${image}` });
      return { image, cached: true };
    }
    onProgress?.({ phase: 'build', message: `${what}: building ${image}` });
    const stream = await this.docker.buildImage(
      { context: ctx, src: files },
      { t: image, dockerfile, buildargs: args, rm: true, forcerm: true, labels: { 'dev.berth.image': '1' } },
    );
    let step: { index: number; total: number; text: string } | undefined;
    let failure: string | undefined;
    await new Promise<void>((ok, fail) => {
      this.docker.modem.followProgress(
        stream,
        (err) => (err ? fail(err) : ok()),
        (ev: { stream?: string; error?: string }) => {
          if (ev.error) failure = ev.error;
          for (const line of (ev.stream ?? '').split('\n')) {
            if (!line.trim()) continue;
            const m = /^Step (\d+)\/(\d+) : (.*)$/.exec(line);
            if (m) step = { index: Number(m[1]), total: Number(m[2]), text: m[3] ?? '' };
            onProgress?.({
              phase: 'build',
              message: line,
              step: step && { index: step.index, total: step.total },
            });
          }
        },
      );
    }).catch((err: Error) => (failure ??= err.message));
    if (failure !== undefined) {
      const which = step
        ? (describeStep?.(step.index) ?? `step ${step.index}/${step.total} (${step.text})`)
        : 'the build';
      throw new ProviderError(
        'build_failed',
        `${what}: ${which} failed: ${failure.trim()}`,
        `fix ${which} and retry; the full build log was streamed to onProgress`,
        { step },
      );
    }
    return { image, cached: false };
  }

  private async exists(ref: string): Promise<boolean> {
    try {
      await this.docker.getImage(ref).inspect();
      return true;
    } catch {
      return false;
    }
  }
}

/** Files of a build context minus .dockerignore (the Dockerfile and .dockerignore always go). */
export async function contextFiles(ctx: string, dockerfile: string): Promise<string[]> {
  const patterns = (await readFile(join(ctx, '.dockerignore'), 'utf8').catch(() => ''))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const ig = dockerignore().add(patterns);
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(join(ctx, dir))).sort()) {
      const rel = dir ? `${dir}/${name}` : name;
      if (ig.ignores(rel) && rel !== dockerfile && rel !== '.dockerignore') continue;
      if ((await stat(join(ctx, rel))).isDirectory()) await walk(rel);
      else out.push(rel);
    }
  };
  await walk('');
  return out;
}
