import { describe, it } from 'vitest';
import { defineVaultCases } from './testing/cases.js';

/**
 * The shared Vault cases against a real Vault (dev server or otherwise). Needs a root token;
 * every test works under its own randomly named jwt and KV mounts and removes them after.
 *
 *   BERTH_TEST_VAULT_ADDR=http://127.0.0.1:8200 BERTH_TEST_VAULT_TOKEN=root npx vitest run packages/vault
 *
 * Optional: BERTH_TEST_VAULT_NAMESPACE (Enterprise/HCP), and BERTH_TEST_JWKS_HOST, the host
 * name Vault uses to reach the test JWKS server on this machine (e.g. host.docker.internal when
 * Vault runs in Docker; the server then listens on all interfaces).
 */
const addr = process.env.BERTH_TEST_VAULT_ADDR;
const token = process.env.BERTH_TEST_VAULT_TOKEN;
const configured = Boolean(addr && token);
const jwksHost = process.env.BERTH_TEST_JWKS_HOST;

describe.skipIf(!configured)('real Vault (BERTH_TEST_VAULT_ADDR)', () => {
  defineVaultCases({
    name: `real Vault at ${addr ?? '-'}`,
    issuerHosts: jwksHost ? { bindHost: '0.0.0.0', advertiseHost: jwksHost } : undefined,
    start: () =>
      Promise.resolve({
        address: addr as string,
        rootToken: token as string,
        namespace: process.env.BERTH_TEST_VAULT_NAMESPACE || undefined,
        // A real Vault's clock cannot be moved: wait it out (only TTL tests use this, with 2-3 s).
        advanceClock: (seconds: number) =>
          new Promise<void>((resolve) => setTimeout(resolve, seconds * 1000)),
        close: () => Promise.resolve(),
      }),
  });
});

describe.skipIf(configured)('real Vault', () => {
  it.skip('skipped: set BERTH_TEST_VAULT_ADDR and BERTH_TEST_VAULT_TOKEN (root) to run the shared cases against a real Vault', () => {});
});
