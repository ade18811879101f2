import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gatewayInstallCommands, isRetryable, ModalProvider, ModalProviderError } from '@berth/providers';
import { ensureGatewayBundle } from '@berth/providers/testing';

// Opt-in suite against real Modal (see packages/providers/README-modal.md). It costs a few
// sandbox-minutes and builds one image (cached by Modal afterwards). Everything it makes lives in
// the Modal app `berth-live-<pid>` and is terminated at the end.
const tokenId = process.env.MODAL_TOKEN_ID ?? '';
const tokenSecret = process.env.MODAL_TOKEN_SECRET ?? '';
const reason =
  'MODAL_TOKEN_ID is not set: the live Modal suite is opt-in (see packages/providers/README-modal.md)';
if (!tokenId) console.info(`skipping test/providers/modal-live.test.ts: ${reason}`);

describe.skipIf(!tokenId)(
  `modal provider against real Modal (${tokenId ? 'MODAL_TOKEN_ID set' : reason})`,
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-modal-live-'));
    const ids: string[] = [];
    let provider: ModalProvider | undefined;
    const make = (): ModalProvider => {
      ensureGatewayBundle();
      provider ??= new ModalProvider({
        connection: {
          tokenId,
          tokenSecret,
          ...(process.env.MODAL_ENVIRONMENT ? { environment: process.env.MODAL_ENVIRONMENT } : {}),
        },
        installation: `live-${process.pid}`,
        baseImage: process.env.BERTH_MODAL_LIVE_IMAGE ?? 'node:20-bookworm-slim',
        gateway: gatewayInstallCommands(
          process.env.BERTH_MODAL_GATEWAY_URL ? { bundleUrl: process.env.BERTH_MODAL_GATEWAY_URL } : {},
        ),
        stateDir: join(dir, 'state'),
        timeoutMs: 15 * 60_000,
        idleTimeoutMs: 10 * 60_000,
        readyTimeoutMs: 5 * 60_000,
      });
      return provider;
    };
    afterAll(async () => {
      for (const id of ids) await provider?.destroy(id);
      provider?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it(
      'creates a sandbox whose gateway answers /healthz over the encrypted tunnel, stops to a snapshot, starts again, destroys',
      { timeout: 20 * 60_000 },
      async () => {
        const p = make();
        const id = `live-${process.pid}-1`;
        ids.push(id);
        const info = await p.create({ id, ownerId: 'live-owner', resources: { cpus: 1, memoryMb: 1024 } });
        expect(info.state).toBe('ready');
        expect(info.gatewayUrl).toMatch(/^https:\/\//);
        const health = (await (await fetch(`${info.gatewayUrl}/healthz`)).json()) as {
          environmentId: string;
        };
        expect(health.environmentId).toBe(id);
        expect((await p.create({ id, ownerId: 'live-owner' })).created).toBe(false);
        await p.stop(id);
        expect((await p.inspect(id)).state).toBe('stopped');
        const again = await p.start(id);
        expect(again.state).toBe('ready');
        expect((await fetch(`${again.gatewayUrl}/healthz`)).ok).toBe(true);
        await p.destroy(id);
        expect((await p.inspect(id)).state).toBe('missing');
      },
    );

    it('refuses a wrong token with the modal_auth hint, not retryable', { timeout: 120_000 }, async () => {
      const p = new ModalProvider({
        connection: { tokenId, tokenSecret: 'definitely-wrong' },
        installation: `live-${process.pid}`,
        baseImage: 'node:20-bookworm-slim',
        gateway: { install: [], command: ['true'] },
        stateDir: join(dir, 'bad'),
      });
      try {
        const err = await p.create({ id: `live-${process.pid}-bad`, ownerId: 'o' }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(ModalProviderError);
        expect((err as ModalProviderError).code).toBe('modal_auth');
        expect(isRetryable(err)).toBe(false);
      } finally {
        p.close();
      }
    });
  },
);
