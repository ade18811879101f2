import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../testing/server.js';
import { IdentityService } from './identity.service.js';
import { newPrivateJwk } from './keys.js';

let s: TestServer;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON under test
const getJson = async (url: string): Promise<any> => (await fetch(url)).json();
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s.stop();
});

describe('OIDC issuer', () => {
  it('publishes discovery and JWKS with the real public URL as issuer', async () => {
    const d = await getJson(`${s.url}/.well-known/openid-configuration`);
    expect(d.issuer).toBe(s.url);
    expect(d.jwks_uri).toBe(`${s.url}/.well-known/jwks.json`);
    expect(d.id_token_signing_alg_values_supported).toEqual(['EdDSA']);
    const jwks = await getJson(d.jwks_uri);
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' });
    expect(jwks.keys[0].d).toBeUndefined();
  });

  it('keeps the private key in a 0600 file under the data dir', async () => {
    const file = join(s.dataDir, 'keys', 'signing-keys.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const keys = JSON.parse(await readFile(file, 'utf8'));
    const jwks = await getJson(`${s.url}/.well-known/jwks.json`);
    expect(keys[0].kid).toBe(jwks.keys[0].kid);
  });

  it('signs gateway tickets that verify against the published JWKS with the environment as audience', async () => {
    const identity = s.app.get(IdentityService);
    const { token } = await identity.signGatewayToken({
      environmentId: 'env-1',
      userId: 'u1',
      scope: 'terminal',
      role: 'observer',
    });
    const jwks = createLocalJWKSet(await getJson(`${s.url}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: s.url, audience: 'env-1' });
    expect(protectedHeader.alg).toBe('EdDSA');
    expect(payload).toMatchObject({ sub: 'user:u1', scope: 'terminal', role: 'observer' });
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(60);
    await expect(jwtVerify(token, jwks, { issuer: s.url, audience: 'env-2' })).rejects.toThrow(/aud/);
  });

  it('signs workload identities with the claims Vault roles bind on', async () => {
    const identity = s.app.get(IdentityService);
    const { token, jti } = await identity.signWorkloadIdentity({
      userId: 'u9',
      audience: 'vault.example',
      environmentId: 'env-9',
      taskId: 'task-9',
      provider: 'docker',
      launchSource: 'mobile',
    });
    const jwks = createLocalJWKSet(await getJson(`${s.url}/.well-known/jwks.json`));
    const { payload } = await jwtVerify(token, jwks, { issuer: s.url, audience: 'vault.example' });
    expect(payload).toMatchObject({
      sub: 'user:u9',
      environment_id: 'env-9',
      task_id: 'task-9',
      provider: 'docker',
      launch_source: 'mobile',
      jti,
    });
    // A few minutes at most: a leaked identity is worth little for long.
    expect(payload.exp! - payload.iat!).toBeGreaterThan(0);
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(600);
  });
});

describe('key rotation', () => {
  it('publishes every configured key and signs with the first; old tokens still verify', async () => {
    const oldKey = await newPrivateJwk();
    const newKey = await newPrivateJwk();
    const before = await startTestServer({ BERTH_SIGNING_KEYS: JSON.stringify([oldKey]) });
    const oldToken = (
      await before.app
        .get(IdentityService)
        .signGatewayToken({ environmentId: 'e', userId: 'u', scope: 'exec' })
    ).token;
    await before.stop();

    const after = await startTestServer({ BERTH_SIGNING_KEYS: JSON.stringify([newKey, oldKey]) });
    try {
      const jwks = await getJson(`${after.url}/.well-known/jwks.json`);
      expect(jwks.keys.map((k: { kid: string }) => k.kid)).toEqual([newKey.kid, oldKey.kid]);
      const set = createLocalJWKSet(jwks);
      const fresh = (
        await after.app
          .get(IdentityService)
          .signGatewayToken({ environmentId: 'e', userId: 'u', scope: 'exec' })
      ).token;
      expect((await jwtVerify(fresh, set, { audience: 'e' })).protectedHeader.kid).toBe(newKey.kid);
      expect((await jwtVerify(oldToken, set, { audience: 'e' })).protectedHeader.kid).toBe(oldKey.kid);
    } finally {
      await after.stop();
    }
  });
});
