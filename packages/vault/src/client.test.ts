import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { VaultClient } from './client.js';
import { VaultError } from './errors.js';
import { startFakeVault, type FakeVault } from './fake/server.js';
import { fetchSecrets } from './secrets.js';

async function rejected(p: Promise<unknown>): Promise<VaultError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VaultError);
  return err as VaultError;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

describe('VaultClient transport', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('reports a closed port as unreachable, with a hint and no token in the message', async () => {
    const server = createServer();
    const port = await listen(server);
    await close(server);
    const client = new VaultClient({ address: `http://127.0.0.1:${port}`, token: 'hvs.very-secret-token' });
    const err = await rejected(client.readKv('secret', 'users/x'));
    expect(err.status).toBeUndefined();
    expect(err.code).toBe('ECONNREFUSED');
    expect(err.path).toBe('secret/data/users/x');
    expect(err.hint).toMatch(/Nothing is listening at http:\/\/127\.0\.0\.1:\d+/);
    expect(err.message).not.toContain('hvs.very-secret-token');
  });

  it('gives up after the per-request timeout when Vault does not answer', async () => {
    const server = createServer(() => {
      // Never answers: the client's AbortSignal.timeout must end the request.
    });
    const port = await listen(server);
    cleanups.push(() => close(server));
    const client = new VaultClient({ address: `http://127.0.0.1:${port}`, timeoutMs: 200 });
    const err = await rejected(client.lookupWrapping('hvs.x'));
    expect(err.code).toBe('ETIMEDOUT');
    expect(err.message).toMatch(/no answer .* within 200 ms/);
  });

  it('surfaces non-JSON error pages by status with a generic hint', async () => {
    const server = createServer((_req, res) =>
      res.writeHead(503, { 'Content-Type': 'text/html' }).end('<html>sealed</html>'),
    );
    const port = await listen(server);
    cleanups.push(() => close(server));
    const err = await rejected(
      new VaultClient({ address: `http://127.0.0.1:${port}` }).readKv('secret', 'a'),
    );
    expect(err.status).toBe(503);
    expect(err.vaultErrors).toEqual([]);
    expect(err.hint).toMatch(/sealed/);
  });

  it('sends X-Vault-Namespace and carries Vault’s errors array, status and path', async () => {
    const fake = await startFakeVault();
    cleanups.push(() => fake.close());
    const client = new VaultClient({
      address: `${fake.address}/`,
      namespace: 'team-a/dev',
      token: 'hvs.not-a-token',
    });
    const err = await rejected(client.readKv('secret', '/users/x/'));
    expect(err.status).toBe(403);
    expect(err.vaultErrors).toEqual(['permission denied']);
    expect(err.path).toBe('secret/data/users/x');
    expect(err.message).toBe('Vault GET secret/data/users/x failed with HTTP 403: permission denied');
    expect(fake.requests.at(-1)).toEqual({
      method: 'GET',
      path: 'secret/data/users/x',
      namespace: 'team-a/dev',
    });
  });

  it('rejects refs that map one env var twice before contacting Vault', async () => {
    await expect(
      fetchSecrets({
        vault: { address: 'http://127.0.0.1:1', role: 'r' },
        jwt: 'x',
        refs: [
          { env: 'A', path: 'p', key: 'k' },
          { env: 'A', path: 'q', key: 'k' },
        ],
      }),
    ).rejects.toThrow(/A is mapped twice/);
  });

  describe('with TLS', () => {
    let fake: FakeVault;
    let ca: string;

    const startTlsFake = async (): Promise<void> => {
      const dir = mkdtempSync(join(tmpdir(), 'berth-vault-tls-'));
      cleanups.push(() => Promise.resolve(rmSync(dir, { recursive: true, force: true })));
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=fake-vault',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
        ],
        { stdio: 'ignore' },
      );
      ca = readFileSync(join(dir, 'cert.pem'), 'utf8');
      fake = await startFakeVault({ tls: { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: ca } });
      cleanups.push(() => fake.close());
    };

    it('fails with a CA hint when the certificate is not trusted, and works with caCert', async () => {
      await startTlsFake();
      expect(fake.address).toMatch(/^https:/);
      const untrusted = await rejected(new VaultClient({ address: fake.address }).lookupWrapping('hvs.x'));
      expect(untrusted.status).toBeUndefined();
      expect(untrusted.hint).toMatch(/CA certificate/);

      const client = new VaultClient({ address: fake.address, caCert: ca });
      cleanups.push(() => client.close());
      const err = await rejected(client.lookupWrapping('hvs.x'));
      expect(err.status).toBe(400);
      expect(err.vaultErrors).toEqual(['wrapping token is not valid or does not exist']);
    });
  });
});
