import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  gatewayInstallCommands,
  isRetryable,
  MemoryStateStore,
  ModalProvider,
  ModalProviderError,
  type ModalProviderOptions,
} from '@berth/providers';
import {
  behaviourSuite,
  createGatewaySigner,
  ensureGatewayBundle,
  type BehaviourHarness,
} from '@berth/providers/testing';
import { remoteModalHarness } from '../../packages/providers/src/modal/testing.js';

// Opt-in: the SAME behaviour suite as local, docker and the Modal fake, against real Modal (see
// packages/providers/README-modal.md). It costs a few sandbox-minutes and builds one image
// (cached by Modal afterwards). Everything lives in the app `berth-live-<pid>` and is terminated.
const tokenId = process.env.MODAL_TOKEN_ID ?? '';
const tokenSecret = process.env.MODAL_TOKEN_SECRET ?? '';
const reason =
  'MODAL_TOKEN_ID is not set: the live Modal suite is opt-in (see packages/providers/README-modal.md)';
if (!tokenId) console.info(`skipping test/providers/modal-live.test.ts: ${reason}`);

// Image builds and sandbox starts on Modal take minutes, not the local default of one.
vi.setConfig({ testTimeout: 20 * 60_000, hookTimeout: 20 * 60_000 });

const installation = `live-${process.pid}`;
const connection: ModalProviderOptions['connection'] = {
  tokenId,
  tokenSecret,
  ...(process.env.MODAL_ENVIRONMENT ? { environment: process.env.MODAL_ENVIRONMENT } : {}),
};
const closers: (() => void)[] = [];

function liveProvider(state: MemoryStateStore): ModalProvider {
  ensureGatewayBundle();
  const p = new ModalProvider({
    connection,
    installation,
    baseImage: process.env.BERTH_MODAL_LIVE_IMAGE ?? 'node:20-bookworm-slim',
    gateway: gatewayInstallCommands(
      process.env.BERTH_MODAL_GATEWAY_URL ? { bundleUrl: process.env.BERTH_MODAL_GATEWAY_URL } : {},
    ),
    state,
    timeoutMs: 30 * 60_000,
    idleTimeoutMs: 15 * 60_000,
    readyTimeoutMs: 5 * 60_000,
  });
  closers.push(() => p.close());
  return p;
}

function liveHarness(): BehaviourHarness {
  const state = new MemoryStateStore();
  const remote = remoteModalHarness({
    provider: liveProvider(state),
    state,
    connection,
    installation,
    signer: createGatewaySigner(),
  });
  closers.push(remote.close);
  return remote.harness;
}

afterAll(() => {
  for (const close of closers) close();
});

describe.skipIf(!tokenId)(
  `modal provider against real Modal (${tokenId ? 'MODAL_TOKEN_ID set' : reason})`,
  () => {
    behaviourSuite('modal (real Modal)', async () => liveHarness());

    it('refuses a wrong token with the modal_auth hint, not retryable', async () => {
      const p = new ModalProvider({
        connection: { ...connection, tokenSecret: 'definitely-wrong' },
        installation,
        baseImage: 'node:20-bookworm-slim',
        gateway: { install: [], command: ['true'] },
        state: new MemoryStateStore(),
      });
      try {
        const err = await p.create({ id: `live-${process.pid}-bad`, ownerId: 'o' }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(ModalProviderError);
        expect((err as ModalProviderError).code).toBe('modal_auth');
        expect((err as ModalProviderError).message).not.toContain('definitely-wrong');
        expect(isRetryable(err)).toBe(false);
      } finally {
        p.close();
      }
    });
  },
);
