import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VaultClient } from '../client.js';
import { VaultError } from '../errors.js';
import { startTestIssuer, type TestIssuer } from '../testing/issuer.js';
import { startFakeVault, type FakeVault } from './server.js';

// Fidelity details of the fake that the shared cases do not pin down.

async function rejected(p: Promise<unknown>): Promise<VaultError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VaultError);
  return err as VaultError;
}

describe('fake Vault', () => {
  let fake: FakeVault;
  let issuer: TestIssuer;
  let admin: VaultClient;
  let anon: VaultClient;

  beforeEach(async () => {
    fake = await startFakeVault();
    issuer = await startTestIssuer();
    admin = new VaultClient({ address: fake.address, token: fake.rootToken });
    anon = new VaultClient({ address: fake.address });
    await admin.request('POST', 'sys/auth/jwt', { body: { type: 'jwt' } });
    await admin.request('POST', 'auth/jwt/config', {
      body: { jwks_url: issuer.jwksUrl, bound_issuer: issuer.issuer },
    });
  });

  afterEach(async () => {
    await issuer.close();
    await fake.close();
  });

  it('validates roles like the jwt plugin does', async () => {
    const noBound = await rejected(
      admin.request('POST', 'auth/jwt/role/r', { body: { role_type: 'jwt', user_claim: 'sub' } }),
    );
    expect(noBound.vaultErrors).toEqual([
      'must have at least one bound constraint when creating/updating a role',
    ]);
    const oidcDefault = await rejected(
      admin.request('POST', 'auth/jwt/role/r', { body: { user_claim: 'sub', bound_audiences: 'a' } }),
    );
    expect(oidcDefault.vaultErrors[0]).toMatch(/allowed_redirect_uris/);
    const noUser = await rejected(
      admin.request('POST', 'auth/jwt/role/r', { body: { role_type: 'jwt', bound_audiences: 'a' } }),
    );
    expect(noUser.vaultErrors).toEqual(['a user claim must be defined on the role']);
    const glob = await rejected(
      admin.request('POST', 'auth/jwt/role/r', {
        body: {
          role_type: 'jwt',
          user_claim: 'sub',
          bound_claims_type: 'glob',
          bound_claims: { sub: 'user:*' },
        },
      }),
    );
    expect(glob.vaultErrors[0]).toMatch(/^fake vault: /);
  });

  it('refuses a config whose JWKS URL does not answer', async () => {
    const err = await rejected(
      admin.request('POST', 'auth/jwt/config', { body: { jwks_url: 'http://127.0.0.1:1/jwks' } }),
    );
    expect(err.vaultErrors).toEqual(['error checking jwks URL']);
  });

  it('requires the discovery document’s issuer to equal oidc_discovery_url exactly, like go-oidc', async () => {
    const err = await rejected(
      admin.request('POST', 'auth/jwt/config', { body: { oidc_discovery_url: `${issuer.issuer}/` } }),
    );
    expect(err.vaultErrors[0]).toMatch(/^error checking oidc discovery URL: oidc: issuer did not match/);
    await admin.request('POST', 'auth/jwt/config', { body: { oidc_discovery_url: issuer.issuer } });
  });

  it('applies the 150 s expiration leeway (plus 60 s clock skew) to a JWT without exp', async () => {
    await admin.request('POST', 'auth/jwt/role/r', {
      body: { role_type: 'jwt', user_claim: 'sub', bound_audiences: ['a'], token_policies: 'p' },
    });
    const now = Math.floor(fake.now() / 1000);
    await anon.loginJwt({
      role: 'r',
      jwt: await issuer.sign({ aud: 'a', sub: 'user:1' }, { iat: now - 200, noExpiry: true }),
    });
    const err = await rejected(
      anon.loginJwt({
        role: 'r',
        jwt: await issuer.sign({ aud: 'a', sub: 'user:1' }, { iat: now - 220, noExpiry: true }),
      }),
    );
    expect(err.vaultErrors).toEqual([
      'error validating token: invalid expiration time (exp) claim: token is expired',
    ]);
  });

  it('answers ACL denials with Vault’s multierror body, and unknown routes with 404', async () => {
    await admin.request('POST', 'auth/jwt/role/r', {
      body: { role_type: 'jwt', user_claim: 'sub', bound_audiences: ['a'] },
    });
    const auth = await anon.loginJwt({ role: 'r', jwt: await issuer.sign({ aud: 'a', sub: 'user:1' }) });
    const res = await fetch(`${fake.address}/v1/secret/data/anything`, {
      headers: { 'X-Vault-Token': auth.clientToken },
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ errors: ['1 error occurred:\n\t* permission denied\n\n'] });
    const err = await rejected(anon.withToken(auth.clientToken).readKv('secret', 'anything'));
    expect(err.message).toMatch(/HTTP 403: permission denied$/);
    const unknown = await rejected(admin.request('GET', 'nope/thing'));
    expect(unknown.status).toBe(404);
    expect(unknown.vaultErrors).toEqual(['no handler for route "nope/thing". route entry not found.']);
  });

  it('keeps KV v2 versions and answers 404 for a deleted version with its metadata', async () => {
    await admin.request('POST', 'secret/data/app', { body: { data: { a: '1' } } });
    const w2 = await admin.request<{ version: number }>('POST', 'secret/data/app', {
      body: { data: { a: '2' }, options: { cas: 1 } },
    });
    expect(w2.data.version).toBe(2);
    const cas = await rejected(
      admin.request('POST', 'secret/data/app', { body: { data: { a: '3' }, options: { cas: 1 } } }),
    );
    expect(cas.vaultErrors).toEqual(['check-and-set parameter did not match the current version']);
    await admin.request('DELETE', 'secret/data/app');
    const res = await fetch(`${fake.address}/v1/secret/data/app`, {
      headers: { 'X-Vault-Token': fake.rootToken },
    });
    expect(res.status).toBe(404);
    const body = (await res.json()) as {
      data: { data: null; metadata: { version: number; deletion_time: string } };
    };
    expect(body.data.data).toBeNull();
    expect(body.data.metadata.version).toBe(2);
    expect(body.data.metadata.deletion_time).not.toBe('');
    expect((await admin.readKv('secret', 'app', { version: 1 })).data).toEqual({ a: '1' });
    const meta = await admin.request<{ current_version: number }>('GET', 'secret/metadata/app');
    expect(meta.data.current_version).toBe(2);
  });

  it('rejects policies it cannot parse instead of silently granting nothing', async () => {
    const err = await rejected(
      admin.request('POST', 'sys/policies/acl/bad', {
        body: { policy: 'path "x" { capabilities = ["fly"] }' },
      }),
    );
    expect(err.status).toBe(400);
    expect(err.vaultErrors[0]).toMatch(/invalid capability "fly"/);
  });
});
