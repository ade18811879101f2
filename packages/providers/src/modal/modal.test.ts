import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { defaultGatewayAssets } from '../assets.js';
import { ensureGatewayBundle } from '../testing/harness.js';
import { behaviourSuite } from '../testing/behaviour.js';
import { createGatewaySigner, gatewayExec } from '../testing/gateway-exec.js';
import { serveRepoWithToken } from '../testing/git-server.js';
import { makeBareRepo } from '../testing/behaviour.js';
import { fromModal } from './errors.js';
import type { FakeModal } from './fake/modal.js';
import {
  gatewayInstallCommands,
  isRetryable,
  MemoryStateStore,
  ModalProviderError,
  TAG_ENV,
  TAG_INSTALLATION,
  TAG_OWNER,
  type ModalProvider,
} from './provider.js';
import {
  FAKE_TOKEN,
  fakeProcesses,
  fakeProvider,
  modalHarness,
  remoteModalHarness,
  sandboxOf,
  sandboxUids,
  startFake,
} from './testing.js';

// The modal provider through the real `modal` SDK against FakeModal (a loopback gRPC server),
// first the suite every provider runs, then what is Modal's own.

const dir = mkdtempSync(join(tmpdir(), 'berth-modal-'));
let fake: FakeModal;
const providers: ModalProvider[] = [];
const track = (p: ModalProvider): ModalProvider => (providers.push(p), p);
const closers: (() => void)[] = [];

beforeAll(async () => {
  ensureGatewayBundle();
  fake = await startFake(dir);
});
afterAll(async () => {
  for (const p of providers) p.close();
  for (const close of closers) close();
  await fake.close();
  // Leak check: no sandbox process (init, gateway, shells) outlives the fake.
  expect(fakeProcesses(dir)).toEqual([]);
  rmSync(dir, { recursive: true, force: true });
});

const signer = createGatewaySigner();
behaviourSuite('modal (fake Modal)', async () => {
  const state = new MemoryStateStore();
  return modalHarness(track(fakeProvider(fake, { state })), fake, state, dir, signer);
});
// The live suite's harness (files through the gateway, kills by a second client) on the fake.
behaviourSuite('modal (fake Modal, seen as the live suite sees it)', async () => {
  const state = new MemoryStateStore();
  const installation = 'test-remote';
  const provider = track(fakeProvider(fake, { state, installation }));
  const connection = { ...FAKE_TOKEN, serverUrl: fake.url };
  const remote = remoteModalHarness({ provider, state, connection, installation, signer });
  closers.push(remote.close);
  return remote.harness;
});

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
  const state = new MemoryStateStore();
  let n = 0;
  const id = (): string => `md${process.pid}-${++n}`;
  beforeAll(() => {
    provider = track(fakeProvider(fake, { state, timeoutMs: 600_000, idleTimeoutMs: 300_000 }));
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

  it('runs postCreateCommand in the workspace as the environment user, as docker does', async () => {
    const ctx = join(dir, 'ctx-post');
    await mkdir(join(ctx, '.devcontainer'), { recursive: true });
    await writeFile(
      join(ctx, '.devcontainer/devcontainer.json'),
      JSON.stringify({ postCreateCommand: 'echo "$(id -un) $HOME $(pwd)" > made-by-post' }),
    );
    const env = id();
    await provider.create({ id: env, ownerId: 'o', buildContext: ctx });
    const file = join(sandboxOf(fake, env).spec.dir, 'upper/workspace/made-by-post');
    expect((await readFile(file, 'utf8')).trim()).toBe('berth /home/berth /workspace');
    expect((await stat(file)).uid).not.toBe(0);
    await provider.destroy(env);
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
      fakeProvider(fake, {
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
      const p = track(fakeProvider(other));
      const err = await failure(p.create({ id: id(), ownerId: 'o', image: 'nosuch/image:1' }));
      expect(err.code).toBe('build_failed');
      expect(err.message).toContain('nosuch/image:1');
    } finally {
      await other.close();
    }
  });

  it('refuses a bad token with a hint naming the config, never echoing the secret', async () => {
    const p = track(
      fakeProvider(fake, {
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

  it.each([
    ['UNAVAILABLE', status.UNAVAILABLE],
    ['DEADLINE_EXCEEDED', status.DEADLINE_EXCEEDED],
  ])('marks %s retryable for the task engine, and the retry succeeds', async (_name, code) => {
    const env = id();
    // The SDK itself retries these three times; the fourth failure reaches us.
    fake.failNext('SandboxListV2', code, 'upstream connect error', 4);
    const err = await failure(provider.create({ id: env, ownerId: 'o' }));
    expect(err.code).toBe('modal_unavailable');
    expect(err.hint).toContain('retried');
    expect(isRetryable(err)).toBe(true);
    expect((await provider.create({ id: env, ownerId: 'o' })).state).toBe('ready');
    await provider.destroy(env);
  });

  it('classifies every gRPC status the SDK can surface: transient ones retryable, the rest not', () => {
    const retryable = [
      status.UNAVAILABLE,
      status.DEADLINE_EXCEEDED,
      status.INTERNAL,
      status.UNKNOWN,
      status.ABORTED,
      status.CANCELLED,
    ];
    for (const code of retryable) expect(isRetryable(fromModal({ code, details: 'x' }, 'x', []))).toBe(true);
    const permanent: [number, string][] = [
      [status.UNAUTHENTICATED, 'modal_auth'],
      [status.PERMISSION_DENIED, 'modal_auth'],
      [status.RESOURCE_EXHAUSTED, 'modal_quota'],
      [status.INVALID_ARGUMENT, 'modal_invalid'],
      [status.NOT_FOUND, 'not_found'],
      [status.FAILED_PRECONDITION, 'modal_sandbox_exited'],
    ];
    for (const [code, want] of permanent) {
      const e = fromModal({ code, details: 'x' }, 'x', []);
      expect([e.code, isRetryable(e), e.hint.length > 0]).toEqual([want, false, true]);
    }
  });

  it('reports a sandbox whose gateway exits, with the exit code', async () => {
    const p = track(fakeProvider(fake, { gateway: { install: [], command: ['sh', '-c', 'exit 42'] } }));
    const env = id();
    const err = await failure(p.create({ id: env, ownerId: 'o' }));
    expect(err.code).toBe('gateway_failed');
    expect(err.message).toContain('42');
    await p.destroy(env);
  });

  it('an idle sandbox ends at its idle timeout and shows as failed', async () => {
    const p = track(fakeProvider(fake, { idleTimeoutMs: 1000 }));
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
  it('a sandbox that ends while it is being stopped still stops, and starts again from its image', async () => {
    const env = id();
    await provider.create({ id: env, ownerId: 'o' });
    const before = await state.get(env);
    fake.failNext('TaskSnapshotFilesystem', status.FAILED_PRECONDITION, 'Sandbox has already finished');
    await provider.stop(env);
    expect((await provider.inspect(env)).state).toBe('stopped');
    expect(await state.get(env)).toEqual({ ...(before as object), desired: 'stopped' });
    expect((await provider.start(env)).state).toBe('ready');
    await provider.destroy(env);
  });

  it('starts on a fresh provider what another one stopped, from the shared state store alone', async () => {
    const env = id();
    const shared = new MemoryStateStore();
    const a = track(fakeProvider(fake, { state: shared }));
    await a.create({ id: env, ownerId: 'o', resources: { cpus: 2, memoryMb: 1536 } });
    await writeFile(join(sandboxOf(fake, env).spec.dir, 'upper/workspace/kept.txt'), 'from a');
    await a.stop(env);
    a.close();
    // A second control plane: its own SDK client and no memory of the first, only the store.
    const b = track(fakeProvider(fake, { state: shared }));
    expect((await b.inspect(env)).state).toBe('stopped');
    const info = await b.start(env);
    expect(info.state).toBe('ready');
    expect((await fetch(`${info.gatewayUrl}/healthz`)).ok).toBe(true);
    const sb = sandboxOf(fake, env);
    expect(await readFile(join(sb.spec.dir, 'upper/workspace/kept.txt'), 'utf8')).toBe('from a');
    expect(sb.resources).toEqual({ milliCpu: 2000, memoryMb: 1536 });
    expect(sb.tags[TAG_OWNER]).toBe('o');
    await b.destroy(env);
    expect(await shared.get(env)).toBeUndefined();
  });

  it('keeps no secret in the state store: not the clone token, not the Modal token', async () => {
    const token = 'clone-token-canary-77';
    const repo = makeBareRepo();
    const served = await serveRepoWithToken(repo.path, token);
    try {
      const env = id();
      await provider.create({ id: env, ownerId: 'o', repo: { url: served.url, token } });
      await provider.stop(env);
      const stored = JSON.stringify(await state.get(env));
      expect(stored).toContain('"desired":"stopped"');
      for (const secret of [
        token,
        Buffer.from(`x-access-token:${token}`).toString('base64'),
        FAKE_TOKEN.tokenId,
        FAKE_TOKEN.tokenSecret,
      ])
        expect(stored).not.toContain(secret);
      await provider.destroy(env);
    } finally {
      await served.close();
      repo.cleanup();
    }
  });

  it('runs the gateway, and every task and terminal it starts, as the unprivileged environment user', async () => {
    const env = id();
    const info = await provider.create({
      id: env,
      ownerId: 'o',
      gateway: { issuer: signer.issuer, jwks: signer.jwks },
    });
    const sb = sandboxOf(fake, env);
    // What the sandbox was created with: the entrypoint drops to the user before the gateway runs.
    expect(sb.spec.argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(sb.spec.argv[2]).toContain('setpriv');
    expect(sb.spec.argv[2]).toContain('--no-new-privs');
    expect(sb.spec.argv.slice(4, 5)).toEqual(['berth']);
    expect(sb.spec.argv.at(-1)).toBe('/opt/berth/gateway.mjs');

    const run = (cmd: string, tty = false) =>
      gatewayExec(info.gatewayUrl!, signer, env, ['sh', '-c', cmd], { tty });
    const piped = await run('echo "$(id -u) $(id -un) $HOME"; grep NoNewPrivs /proc/self/status');
    expect(piped.code).toBe(0);
    const [uid, name, home] = piped.output.split('\n')[0]!.split(' ');
    expect(Number(uid)).toBeGreaterThan(0);
    expect(name).toBe('berth');
    expect(home).toBe('/home/berth');
    expect(piped.output).toMatch(/NoNewPrivs:\s+1/);
    // A PTY task is spawned like a terminal session (node-pty from the gateway process).
    const ptyTask = await run('id -u; tty', true);
    expect(ptyTask.output).toContain(uid);
    expect(ptyTask.output).toMatch(/\/dev\/pts\//);
    // Nothing in the sandbox but its init (the fake's stand-in for Modal's runtime) is root.
    const procs = sandboxUids(fake, env);
    expect(procs.some((p) => p.cmd.includes('gateway.mjs'))).toBe(true);
    expect(procs.filter((p) => p.uid === 0)).toEqual([]);
    // The workspace is theirs.
    expect((await run('touch /workspace/mine && stat -c %U /workspace/mine')).output.trim()).toBe('berth');
    await provider.destroy(env);
  });

  it('never writes the Modal token id or secret to a log line, error message or progress event', async () => {
    const lines: string[] = [];
    const spies = [
      vi.spyOn(process.stdout, 'write'),
      vi.spyOn(process.stderr, 'write'),
      ...(['log', 'info', 'warn', 'error', 'debug'] as const).map((m) => vi.spyOn(console, m)),
    ];
    const events: string[] = [];
    const errors: string[] = [];
    try {
      const env = id();
      const info = await provider.create(
        { id: env, ownerId: 'o', berthYaml: 'setup:\n  - echo setup-ran\n' },
        { onProgress: (e) => events.push(JSON.stringify(e)) },
      );
      events.push(JSON.stringify(info), JSON.stringify(await provider.inspect(env)));
      await provider.stop(env);
      await provider.start(env);
      events.push(JSON.stringify(await state.get(env)), JSON.stringify(await provider.list()));
      await provider.destroy(env);
      // A server that echoes the credentials back in its error: scrubbed before anyone sees it.
      fake.failNext(
        'SandboxCreateV2',
        status.INVALID_ARGUMENT,
        `bad request from ${FAKE_TOKEN.tokenId}/${FAKE_TOKEN.tokenSecret}`,
      );
      const failed = id();
      const err = await failure(provider.create({ id: failed, ownerId: 'o' }));
      await provider.destroy(failed);
      errors.push(err.message, err.hint, JSON.stringify(err.toBody()), String(err.stack));
      const wrong = track(
        fakeProvider(fake, {
          connection: { tokenId: 'ak-canary-id', tokenSecret: 'as-canary-secret', serverUrl: fake.url },
        }),
      );
      const auth = await failure(wrong.create({ id: id(), ownerId: 'o' }));
      errors.push(auth.message, auth.hint, JSON.stringify(auth.toBody()), String(auth.stack));
      for (const spy of spies) for (const call of spy.mock.calls) lines.push(call.map(String).join(' '));
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    expect(events.length).toBeGreaterThan(3);
    expect(errors.join('\n')).toContain('***');
    const seen = [...lines, ...events, ...errors].join('\n');
    for (const secret of [FAKE_TOKEN.tokenId, FAKE_TOKEN.tokenSecret, 'ak-canary-id', 'as-canary-secret'])
      expect(seen).not.toContain(secret);
  });
});
