import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  containerName,
  DockerProvider,
  ensureDocker,
  LABEL_ENV,
  ProviderError,
  type ProgressEvent,
} from '@berth/providers';
import {
  behaviourSuite,
  dockerHarness,
  ensureGatewayBundle,
  type BehaviourHarness,
} from '@berth/providers/testing';

// The Docker suites start the engine themselves (scripts/prereqs/20-docker.sh); only an explicit
// BERTH_SKIP_DOCKER=1 skips them.
const skip = process.env.BERTH_SKIP_DOCKER === '1';
let shared: { provider: DockerProvider; base: string } | undefined;
function setup(): { provider: DockerProvider; base: string } {
  if (!shared) {
    const base = ensureDocker();
    ensureGatewayBundle();
    shared = {
      provider: new DockerProvider({
        baseImage: base,
        policy: {
          defaults: { cpus: 1, memoryMb: 512, pids: 256 },
          max: { cpus: 2, memoryMb: 2048, pids: 1024 },
          runtimes: ['runc'],
        },
      }),
      base,
    };
  }
  return shared;
}

if (skip) describe.skip('docker provider (BERTH_SKIP_DOCKER=1)', () => undefined);
else behaviourSuite('docker', async () => dockerHarness(setup().provider));

async function rejection(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

describe.skipIf(skip)('docker provider specifics', () => {
  let provider: DockerProvider;
  let base: string;
  let h: BehaviourHarness;
  const prefix = `dk${process.pid}-`;
  let n = 0;
  const id = () => `${prefix}${++n}`;
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'berth-ctx-'));
    dirs.push(d);
    return d;
  };
  const capture = async (envId: string, cmd: string[]) => {
    const lines: string[] = [];
    await provider.exec(envId, cmd, (l) => lines.push(l));
    return lines.join('\n');
  };

  beforeAll(() => {
    ({ provider, base } = setup());
    h = dockerHarness(provider);
  });
  afterEach(async () => {
    for (const e of await provider.list()) if (e.id.startsWith(prefix)) await provider.destroy(e.id);
    expect(await h.leftovers(prefix)).toEqual([]);
  });
  afterAll(async () => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    // Derived images built by these tests; the cached base image stays.
    for (const img of await provider.docker.listImages({ filters: { label: ['dev.berth.image=1'] } })) {
      await provider.docker
        .getImage(img.Id)
        .remove({ force: true })
        .catch(() => undefined);
    }
  });

  it('applies the spec limits, drops capabilities, sets no-new-privileges, labels and publishes on 127.0.0.1', async () => {
    const envId = id();
    const info = await provider.create({
      id: envId,
      ownerId: 'owner-9',
      installation: 'inst-9',
      resources: { cpus: 0.5, memoryMb: 256, pids: 128 },
    });
    const c = await provider.docker.getContainer(containerName(envId)).inspect();
    // Labelled with its installation, so only that Berth's reaper ever removes it.
    expect(c.Config.Labels['dev.berth.installation']).toBe('inst-9');
    expect((await provider.list()).find((e) => e.id === envId)?.installation).toBe('inst-9');
    expect(c.HostConfig.Memory).toBe(256 * 1024 * 1024);
    expect(c.HostConfig.NanoCpus).toBe(500_000_000);
    expect(c.HostConfig.PidsLimit).toBe(128);
    expect(c.HostConfig.CapDrop).toEqual(['ALL']);
    expect(c.HostConfig.SecurityOpt).toContain('no-new-privileges');
    expect(c.HostConfig.Runtime).toBe('runc');
    expect(c.Config.Labels[LABEL_ENV]).toBe(envId);
    expect(c.Config.Labels['dev.berth.owner']).toBe('owner-9');
    expect(c.Config.Labels['dev.berth.spec-hash']).toMatch(/^[0-9a-f]{16}$/);
    expect(c.NetworkSettings.Ports['7681/tcp']?.[0]?.HostIp).toBe('127.0.0.1');
    expect(info.gatewayUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // Seen from inside: the kernel enforces it (cgroup v2 or v1 layout).
    expect(
      await capture(envId, [
        'sh',
        '-c',
        'cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max',
      ]),
    ).toBe('128');
  });

  it('uses the operator defaults when the spec asks for nothing, and refuses a runtime outside the allow-list', async () => {
    const envId = id();
    await provider.create({ id: envId, ownerId: 'o' });
    const c = await provider.docker.getContainer(containerName(envId)).inspect();
    expect(c.HostConfig.Memory).toBe(512 * 1024 * 1024);
    const err = await rejection(provider.create({ id: id(), ownerId: 'o', runtime: 'runsc' }));
    expect(err.code).toBe('invalid_spec');
    expect(err.hint).toContain('runc');
  });

  it('refuses a runtime that the operator allows but Docker does not have', async () => {
    const strict = new DockerProvider({
      baseImage: base,
      policy: {
        defaults: { cpus: 1, memoryMb: 256, pids: 128 },
        max: { cpus: 1, memoryMb: 256, pids: 128 },
        runtimes: ['runc', 'berth-test-no-such-runtime'],
      },
    });
    expect(await strict.runtimes()).toContain('runc');
    const envId = id();
    const err = await rejection(
      strict.create({ id: envId, ownerId: 'o', runtime: 'berth-test-no-such-runtime' }),
    );
    expect(err.code).toBe('invalid_spec');
    expect(err.hint).toContain('runc');
    expect((await provider.inspect(envId)).state).toBe('missing');
  });

  it('snapshots an environment into an image that keeps its workspace', async () => {
    const envId = id();
    await provider.create({ id: envId, ownerId: 'o' });
    await h.writeFile(envId, 'snap.txt', 'in the snapshot');
    const { image } = await provider.snapshot(envId, `berth-img:snap-${process.pid}`);
    try {
      const from = await provider.create({ id: id(), ownerId: 'o', image });
      expect(await h.readFile(from.id, 'snap.txt')).toBe('in the snapshot');
    } finally {
      for (const e of await provider.list()) if (e.id.startsWith(prefix)) await provider.destroy(e.id);
      await provider.docker.getImage(image).remove({ force: true });
    }
  });

  it('builds berth.yaml setup commands into a cached image, streaming the build log', async () => {
    const yaml = `setup:\n  - echo built-${process.pid} > /opt/marker\n  - chmod 644 /opt/marker\n`;
    const events: ProgressEvent[] = [];
    const first = await provider.create(
      { id: id(), ownerId: 'o', berthYaml: yaml },
      { onProgress: (e) => events.push(e) },
    );
    expect(first.image).toMatch(/^berth-img:[0-9a-f]{16}$/);
    expect(events.some((e) => e.phase === 'build' && e.step !== undefined)).toBe(true);
    expect(await capture(first.id, ['cat', '/opt/marker'])).toBe(`built-${process.pid}`);
    const again: ProgressEvent[] = [];
    const second = await provider.create(
      { id: id(), ownerId: 'o', berthYaml: yaml },
      { onProgress: (e) => again.push(e) },
    );
    expect(second.image).toBe(first.image);
    expect(again.some((e) => e.message.includes('cached'))).toBe(true);
  });

  it('says which setup step failed and why, leaving no container', async () => {
    const envId = id();
    const err = await rejection(
      provider.create({
        id: envId,
        ownerId: 'o',
        berthYaml: 'setup:\n  - "true"\n  - echo oops && exit 3\n',
      }),
    );
    expect(err.code).toBe('build_failed');
    expect(err.message).toContain('setup command 2 of 2 (echo oops && exit 3)');
    expect(err.message).toMatch(/non-zero code: 3/);
    expect((await provider.inspect(envId)).state).toBe('missing');
  });

  it('builds from devcontainer.json with a Dockerfile, honouring .dockerignore, containerEnv and postCreateCommand', async () => {
    const ctx = tmp();
    mkdirSync(join(ctx, '.devcontainer'));
    writeFileSync(
      join(ctx, '.devcontainer/devcontainer.json'),
      `{
        // comments and trailing commas, as VS Code writes them
        "build": { "dockerfile": "Dockerfile", "context": "..", },
        "containerEnv": { "GREETING": "hi from devcontainer" },
        "postCreateCommand": "echo post > /workspace/post.txt",
        "remoteUser": "berth",
        "forwardPorts": [3000],
      }`,
    );
    writeFileSync(
      join(ctx, '.devcontainer/Dockerfile'),
      `FROM ${base}\nUSER root\nCOPY . /opt/ctx\nUSER berth\n`,
    );
    writeFileSync(join(ctx, '.dockerignore'), 'secret.txt\n');
    writeFileSync(join(ctx, 'secret.txt'), 'do not ship');
    writeFileSync(join(ctx, 'keep.txt'), 'ship me');
    const info = await provider.create({ id: id(), ownerId: 'o', buildContext: ctx });
    expect(await capture(info.id, ['sh', '-c', 'ls /opt/ctx'])).not.toContain('secret.txt');
    expect(await capture(info.id, ['cat', '/opt/ctx/keep.txt'])).toBe('ship me');
    expect(await capture(info.id, ['sh', '-c', 'echo "$GREETING"'])).toBe('hi from devcontainer');
    expect(await capture(info.id, ['cat', '/workspace/post.txt'])).toBe('post');
    expect(await capture(info.id, ['id', '-un'])).toBe('berth');
    expect(info.ports?.['3000']).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('refuses an unknown image with a hint and creates nothing', async () => {
    const envId = id();
    const err = await rejection(
      provider.create({ id: envId, ownerId: 'o', image: 'berth-test/no-such-image:1' }),
    );
    expect(err.code).toBe('image_not_found');
    expect(err.message).toContain('berth-test/no-such-image:1');
    expect(err.hint).toMatch(/image/);
    expect((await provider.inspect(envId)).state).toBe('missing');
  });

  it('re-running create after a crash mid-provisioning replaces the half-made container', async () => {
    const envId = id();
    // What a crash between createContainer and the end of provisioning leaves behind.
    await provider.docker.createContainer({
      name: containerName(envId),
      Image: base,
      Cmd: ['true'],
      Labels: { [LABEL_ENV]: envId },
    });
    const info = await provider.create({ id: envId, ownerId: 'o' });
    expect(info.created).toBe(true);
    expect(info.state).toBe('ready');
    expect((await fetch(`${info.gatewayUrl}/healthz`)).ok).toBe(true);
  });
});
