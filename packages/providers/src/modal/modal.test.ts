import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultGatewayAssets } from '../assets.js';
import { ensureGatewayBundle } from '../testing/harness.js';
import { behaviourSuite } from '../testing/behaviour.js';
import type { FakeModal } from './fake/modal.js';
import {
  gatewayInstallCommands,
  isRetryable,
  ModalProviderError,
  TAG_ENV,
  TAG_INSTALLATION,
  TAG_OWNER,
  type ModalProvider,
} from './provider.js';
import { FAKE_TOKEN, fakeProcesses, fakeProvider, modalHarness, sandboxOf, startFake } from './testing.js';

// The modal provider through the real `modal` SDK against FakeModal (a loopback gRPC server),
// first the suite every provider runs, then what is Modal's own.

const dir = mkdtempSync(join(tmpdir(), 'berth-modal-'));
let fake: FakeModal;
const providers: ModalProvider[] = [];
const track = (p: ModalProvider): ModalProvider => (providers.push(p), p);

beforeAll(async () => {
  ensureGatewayBundle();
  fake = await startFake(dir);
});
afterAll(async () => {
  for (const p of providers) p.close();
  await fake.close();
  // Leak check: no sandbox process (init, gateway, shells) outlives the fake.
  expect(fakeProcesses(dir)).toEqual([]);
  rmSync(dir, { recursive: true, force: true });
});

behaviourSuite('modal (fake Modal)', async () => modalHarness(track(fakeProvider(fake, dir)), fake, dir));

async function failure(p: Promise<unknown>): Promise<ModalProviderError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModalProviderError);
  const e = err as ModalProviderError;
  expect(e.hint.length).toBeGreaterThan(0);
  expect(`${e.message} ${e.hint}`).not.toContain(FAKE_TOKEN.tokenSecret);
  return e;
}

describe('modal provider on fake Modal', () => {
  let provider: ModalProvider;
  let n = 0;
  const id = (): string => `md${process.pid}-${++n}`;
  beforeAll(() => {
    provider = track(fakeProvider(fake, dir, { timeoutMs: 600_000, idleTimeoutMs: 300_000 }));
  });

  it('creates one app per installation and a sandbox with the spec resources, timeouts, an encrypted tunnel and Berth tags', async () => {
    const env = id();
    const info = await provider.create({
      id: env,
      ownerId: 'owner-7',
      resources: { cpus: 2, memoryMb: 2048 },
    });
    expect(info.gatewayUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const sb = sandboxOf(fake, env);
    expect(sb.tags).toEqual({ [TAG_INSTALLATION]: 'test', [TAG_ENV]: env, [TAG_OWNER]: 'owner-7' });
    expect(sb.resources).toEqual({ milliCpu: 2000, memoryMb: 2048 });
    expect(sb.spec.timeoutSecs).toBe(600);
    expect(sb.spec.idleTimeoutSecs).toBe(300);
    expect([...sb.tunnels.keys()]).toEqual([7681]);
    expect(fake.calls).toContain('AppGetOrCreate');
    await provider.destroy(env);
  });

  it('builds the image from berth.yaml setup commands and fails a broken one with its output, not retryable', async () => {
    const env = id();
    await provider.create({
      id: env,
      ownerId: 'o',
      berthYaml: 'setup:\n  - echo built-by-setup > /etc/berth-marker\n',
    });
    expect(fake.calls.filter((c) => c === 'ImageGetOrCreate').length).toBeGreaterThan(0);
    // The image layer holds what setup wrote; the sandbox started from it.
    expect(
      (await readFile(join(sandboxOf(fake, env).spec.dir, 'upper/etc/berth-marker'), 'utf8')).trim(),
    ).toBe('built-by-setup');
    await provider.destroy(env);

    const bad = id();
    const err = await failure(
      provider.create({ id: bad, ownerId: 'o', berthYaml: 'setup:\n  - echo about-to-fail && exit 3\n' }),
    );
    expect(err.code).toBe('build_failed');
    expect(err.message).toContain('about-to-fail');
    expect(isRetryable(err)).toBe(false);
    expect((await provider.inspect(bad)).state).toBe('missing');
  });

  it('builds from a devcontainer Dockerfile (instructions become image commands) and refuses COPY with a hint', async () => {
    const ctx = join(dir, 'ctx-dockerfile');
    await mkdir(join(ctx, '.devcontainer'), { recursive: true });
    await writeFile(
      join(ctx, '.devcontainer/devcontainer.json'),
      '{ "build": { "dockerfile": "Dockerfile" }, // jsonc\n }',
    );
    await writeFile(
      join(ctx, '.devcontainer/Dockerfile'),
      'FROM debian:bookworm-slim\n# a comment\nENV GREETING=from-dockerfile\nRUN echo "$GREETING" \\\n  > /etc/berth-dockerfile\n',
    );
    const env = id();
    await provider.create({ id: env, ownerId: 'o', buildContext: ctx });
    const sb = sandboxOf(fake, env);
    expect((await readFile(join(sb.spec.dir, 'upper/etc/berth-dockerfile'), 'utf8')).trim()).toBe(
      'from-dockerfile',
    );
    expect(sb.spec.env.GREETING).toBe('from-dockerfile');
    await provider.destroy(env);

    await writeFile(join(ctx, '.devcontainer/Dockerfile'), 'FROM debian:bookworm-slim\nCOPY . /src\n');
    const err = await failure(provider.create({ id: id(), ownerId: 'o', buildContext: ctx }));
    expect(err.code).toBe('build_unsupported');
    expect(err.message).toContain('COPY . /src');
  });

  it('two concurrent creates of one id end with one sandbox', async () => {
    const env = id();
    const [a, b] = await Promise.all([
      provider.create({ id: env, ownerId: 'o' }),
      provider.create({ id: env, ownerId: 'o' }),
    ]);
    expect(a.gatewayUrl).toBe(b.gatewayUrl);
    expect([...fake.sandboxes.values()].filter((s) => s.running && s.tags[TAG_ENV] === env)).toHaveLength(1);
    await provider.destroy(env);
  });

  it('installs the gateway from the bundle inlined in the image commands', async () => {
    // The real install also npm-installs node-pty; here (offline) it is copied from this host.
    const { install, command } = gatewayInstallCommands();
    const chunks = install.filter((c) => !/npm install|apt-get|command -v/.test(c));
    expect(chunks.length).toBeGreaterThan(3);
    const p = track(
      fakeProvider(fake, dir, {
        gateway: {
          install: [
            ...chunks,
            `RUN mkdir -p /opt/berth/node_modules && cp -r ${defaultGatewayAssets().nodePtyDir} /opt/berth/node_modules/node-pty`,
          ],
          command: [process.execPath, ...command.slice(1)],
        },
      }),
    );
    const env = id();
    const info = await p.create({ id: env, ownerId: 'o' });
    expect((await fetch(`${info.gatewayUrl}/healthz`)).ok).toBe(true);
    await p.destroy(env);
  });

  it('says which image could not be pulled', async () => {
    const other = await startFake(join(dir, 'pull'), { missingImages: (ref) => ref.startsWith('nosuch/') });
    try {
      const p = track(fakeProvider(other, join(dir, 'pull')));
      const err = await failure(p.create({ id: id(), ownerId: 'o', image: 'nosuch/image:1' }));
      expect(err.code).toBe('build_failed');
      expect(err.message).toContain('nosuch/image:1');
    } finally {
      await other.close();
    }
  });

  it('refuses a bad token with a hint naming the config, never echoing the secret', async () => {
    const p = track(
      fakeProvider(fake, dir, {
        connection: { tokenId: FAKE_TOKEN.tokenId, tokenSecret: 'wrong-secret-value', serverUrl: fake.url },
      }),
    );
    const err = await failure(p.create({ id: id(), ownerId: 'o' }));
    expect(err.code).toBe('modal_auth');
    expect(err.hint).toContain('MODAL_TOKEN_ID');
    expect(err.message).not.toContain('wrong-secret-value');
    expect(isRetryable(err)).toBe(false);
  });

  it('reports a quota as such, not retryable', async () => {
    const env = id();
    fake.failNext('SandboxCreateV2', status.RESOURCE_EXHAUSTED, 'Sandbox quota reached');
    const err = await failure(provider.create({ id: env, ownerId: 'o' }));
    expect(err.code).toBe('modal_quota');
    expect(isRetryable(err)).toBe(false);
    await provider.destroy(env);
  });

  it('marks an outage retryable, and the retry succeeds', async () => {
    const env = id();
    // The SDK itself retries UNAVAILABLE three times; the fourth failure reaches us.
    fake.failNext('SandboxListV2', status.UNAVAILABLE, 'upstream connect error', 4);
    const err = await failure(provider.create({ id: env, ownerId: 'o' }));
    expect(err.code).toBe('modal_unavailable');
    expect(isRetryable(err)).toBe(true);
    expect((await provider.create({ id: env, ownerId: 'o' })).state).toBe('ready');
    await provider.destroy(env);
  });

  it('reports a sandbox whose gateway exits, with the exit code', async () => {
    const p = track(fakeProvider(fake, dir, { gateway: { install: [], command: ['sh', '-c', 'exit 42'] } }));
    const env = id();
    const err = await failure(p.create({ id: env, ownerId: 'o' }));
    expect(err.code).toBe('gateway_failed');
    expect(err.message).toContain('42');
    await p.destroy(env);
  });

  it('an idle sandbox ends at its idle timeout and shows as failed', async () => {
    const p = track(fakeProvider(fake, dir, { idleTimeoutMs: 1000 }));
    const env = id();
    await p.create({ id: env, ownerId: 'o' });
    const ended = await sandboxOf(fake, env).exited;
    expect(ended.exception).toContain('idle');
    expect((await p.inspect(env)).state).toBe('failed');
    await p.destroy(env);
  });

  it('stop snapshots the filesystem before it terminates; snapshot() returns a Modal image', async () => {
    const env = id();
    await provider.create({ id: env, ownerId: 'o' });
    const snap = await provider.snapshot(env);
    expect(snap.image).toMatch(/^im-/);
    const before = fake.calls.length;
    await provider.stop(env);
    const stopCalls = fake.calls.slice(before);
    expect(stopCalls.indexOf('TaskSnapshotFilesystem')).toBeGreaterThanOrEqual(0);
    expect(stopCalls.indexOf('TaskSnapshotFilesystem')).toBeLessThan(stopCalls.indexOf('SandboxTerminateV2'));
    expect(fake.running().filter((s) => fake.sandboxes.get(s)?.tags[TAG_ENV] === env)).toEqual([]);
    await provider.destroy(env);
  });
});
