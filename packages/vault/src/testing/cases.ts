import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VaultClient } from '../client.js';
import { VaultError } from '../errors.js';
import { fetchSecrets, unwrapSecrets } from '../secrets.js';
import { startTestIssuer, type TestIssuer, type WorkloadClaims } from './issuer.js';
import { trustBerth } from './trust.js';

/**
 * The Vault behaviour Berth relies on, written once and run against the fake (always) and a
 * real Vault (when one is configured). All setup goes through Vault's HTTP API with a root
 * token, with per-test mount names, so it is the same code for both.
 */

export interface VaultUnderTest {
  address: string;
  rootToken: string;
  namespace?: string;
  /** Fake: moves its clock. Real Vault: waits, since there is no clock to move. */
  advanceClock(seconds: number): Promise<void>;
  /** Requests the server saw, when it can tell (the fake can). */
  requests?: ReadonlyArray<{ method: string; path: string; namespace: string | undefined }>;
  close(): Promise<void>;
}

export interface VaultTestTarget {
  name: string;
  start(): Promise<VaultUnderTest>;
  /** Where the test JWKS server listens and how Vault reaches it. */
  issuerHosts?: { bindHost: string; advertiseHost: string };
}

const AUDIENCE = 'berth-test-vault';

interface Setup {
  vault: VaultUnderTest;
  issuer: TestIssuer;
  admin: VaultClient;
  jwtMount: string;
  kvMount: string;
  policy: string;
  cleanup(): Promise<void>;
}

async function provision(vault: VaultUnderTest, issuer: TestIssuer, discovery: boolean): Promise<Setup> {
  const admin = new VaultClient({
    address: vault.address,
    token: vault.rootToken,
    namespace: vault.namespace,
  });
  const suffix = randomBytes(4).toString('hex');
  const jwtMount = `berth-jwt-${suffix}`;
  const kvMount = `berth-kv-${suffix}`;
  const policy = `berth-users-${suffix}`;
  const cleanup = async (): Promise<void> => {
    await admin.request('DELETE', `sys/auth/${jwtMount}`).catch(() => undefined);
    await admin.request('DELETE', `sys/mounts/${kvMount}`).catch(() => undefined);
    await admin.request('DELETE', `sys/policies/acl/${policy}`).catch(() => undefined);
  };
  await admin.request('POST', `sys/mounts/${kvMount}`, { body: { type: 'kv', options: { version: '2' } } });
  const trust = await trustBerth(admin, {
    mount: jwtMount,
    description: 'Berth workload identity (test)',
    issuer: issuer.issuer,
    ...(discovery ? {} : { jwksUrl: issuer.jwksUrl }),
    audience: AUDIENCE,
    policy: { name: policy, path: (user) => `${kvMount}/data/users/${user}/*` },
    role: {
      token_max_ttl: '1h',
      bound_claims: { launch_source: ['web', 'mobile', 'cli', 'api'] },
      claim_mappings: { environment_id: 'environment_id' },
    },
  });
  await trust.addRole('alice-only', { token_max_ttl: '1h', bound_claims: { sub: 'user:alice' } });
  await trust.addRole('short', { token_ttl: '2s', token_max_ttl: '1h' });
  const put = (path: string, data: Record<string, unknown>): Promise<unknown> =>
    admin.request('POST', `${kvMount}/data/${path}`, { body: { data } });
  await kvReady(() => put('probe', { ready: 'yes' }));
  await put('users/user:alice/github', { token: 'ghp_alice_v1', user: 'alice' });
  await put('users/user:alice/github', { token: 'ghp_alice_v2', user: 'alice' });
  await put('users/user:alice/db', { url: 'postgres://alice:pw@db/alice', port: 5432 });
  await put('users/user:bob/github', { token: 'ghp_bob_secret' });
  return { vault, issuer, admin, jwtMount, kvMount, policy, cleanup };
}

/**
 * A real Vault answers writes to a KV v2 mount enabled a moment ago with "Upgrading from
 * non-versioned to versioned data" until its background upgrade finishes; Vault gives no event
 * to wait on, so poll (the fake is ready at once).
 */
async function kvReady(write: () => Promise<unknown>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await write();
      return;
    } catch (err) {
      const upgrading =
        err instanceof VaultError &&
        err.vaultErrors.some((e) => /Upgrading from non-versioned to versioned/.test(e));
      if (!upgrading || attempt >= 100) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

const claimsFor = (user: string, extra: Partial<WorkloadClaims> = {}): WorkloadClaims => ({
  aud: AUDIENCE,
  sub: `user:${user}`,
  environment_id: 'env_123',
  task_id: 'task_456',
  provider: 'docker',
  launch_source: 'web',
  ...extra,
});

async function rejected(p: Promise<unknown>): Promise<VaultError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VaultError);
  return err as VaultError;
}

export function defineVaultCases(target: VaultTestTarget): void {
  describe(`Vault behaviour (${target.name})`, () => {
    let s: Setup;
    let client: VaultClient;

    beforeEach(async () => {
      const vault = await target.start();
      const issuer = await startTestIssuer(target.issuerHosts);
      s = await provision(vault, issuer, false);
      client = new VaultClient({ address: vault.address, namespace: vault.namespace });
    });

    afterEach(async () => {
      await s.cleanup();
      await s.issuer.close();
      await s.vault.close();
    });

    const login = async (
      user: string,
      role = 'berth',
      extra: Partial<WorkloadClaims> = {},
    ): Promise<VaultClient> => {
      const auth = await client.loginJwt({
        mount: s.jwtMount,
        role,
        jwt: await s.issuer.sign(claimsFor(user, extra)),
      });
      return client.withToken(auth.clientToken);
    };

    it('logs in with an EdDSA workload-identity JWT verified against the JWKS', async () => {
      const auth = await client.loginJwt({
        mount: s.jwtMount,
        role: 'berth',
        jwt: await s.issuer.sign(claimsFor('alice')),
      });
      expect(auth.clientToken).toMatch(/\S{20,}/);
      expect(auth.policies).toEqual(expect.arrayContaining(['default', s.policy]));
      expect(auth.leaseDuration).toBe(600);
      expect(auth.renewable).toBe(true);
      expect(auth.metadata).toMatchObject({ role: 'berth', environment_id: 'env_123' });
    });

    it('logs in when the auth method is configured by OIDC discovery', async () => {
      await s.admin.request('POST', `auth/${s.jwtMount}/config`, {
        body: { oidc_discovery_url: s.issuer.issuer, bound_issuer: s.issuer.issuer },
      });
      const auth = await client.loginJwt({
        mount: s.jwtMount,
        role: 'berth',
        jwt: await s.issuer.sign(claimsFor('alice')),
      });
      expect(auth.policies).toContain(s.policy);
    });

    it('rejects a JWT for another audience with Vault’s error text', async () => {
      const jwt = await s.issuer.sign(claimsFor('alice', { aud: 'someone-else' }));
      const err = await rejected(client.loginJwt({ mount: s.jwtMount, role: 'berth', jwt }));
      expect(err.status).toBe(400);
      expect(err.vaultErrors.join()).toMatch(/invalid audience \(aud\) claim/);
      expect(err.message).toContain(`auth/${s.jwtMount}/login`);
      expect(err.hint).toMatch(/bound_audiences/);
      expect(err.message).not.toContain(jwt);
    });

    it('rejects an expired JWT', async () => {
      const iat = Math.floor(Date.now() / 1000) - 3600;
      const jwt = await s.issuer.sign(claimsFor('alice'), { iat, ttlSeconds: 300 });
      const err = await rejected(client.loginJwt({ mount: s.jwtMount, role: 'berth', jwt }));
      expect(err.status).toBe(400);
      expect(err.vaultErrors.join()).toMatch(/token is expired/);
      expect(err.hint).toMatch(/clock/);
    });

    it('rejects a JWT signed by a key that is not in the JWKS', async () => {
      const jwt = await s.issuer.sign(claimsFor('alice'), { foreignKey: true });
      const err = await rejected(client.loginJwt({ mount: s.jwtMount, role: 'berth', jwt }));
      expect(err.status).toBe(400);
      expect(err.vaultErrors.join()).toMatch(/signature/);
    });

    it('rejects a JWT whose alg header is the RFC 9864 name Ed25519 instead of EdDSA', async () => {
      const jwt = await s.issuer.sign(claimsFor('alice'), { alg: 'Ed25519' });
      const err = await rejected(client.loginJwt({ mount: s.jwtMount, role: 'berth', jwt }));
      expect(err.status).toBe(400);
      expect(err.vaultErrors.join()).toMatch(/^error validating token: /);
    });

    it('rejects a JWT whose claims do not match the role’s bound_claims', async () => {
      const err = await rejected(
        client.loginJwt({
          mount: s.jwtMount,
          role: 'alice-only',
          jwt: await s.issuer.sign(claimsFor('bob')),
        }),
      );
      expect(err.status).toBe(400);
      expect(err.vaultErrors.join()).toMatch(/claim "sub" does not match any associated bound claim values/);
      const ok = await client.loginJwt({
        mount: s.jwtMount,
        role: 'alice-only',
        jwt: await s.issuer.sign(claimsFor('alice')),
      });
      expect(ok.clientToken).toBeTruthy();
    });

    it('reads a KV v2 secret, latest and by version, in Vault’s response shape', async () => {
      const alice = await login('alice');
      const latest = await alice.readKv(s.kvMount, 'users/user:alice/github');
      expect(latest.data).toEqual({ token: 'ghp_alice_v2', user: 'alice' });
      expect(latest.metadata).toMatchObject({ version: 2, destroyed: false, deletion_time: '' });
      const v1 = await alice.readKv(s.kvMount, 'users/user:alice/github', { version: 1 });
      expect(v1.data.token).toBe('ghp_alice_v1');
    });

    it('does not let user A read user B’s path (templated policy)', async () => {
      const alice = await login('alice');
      const err = await rejected(alice.readKv(s.kvMount, 'users/user:bob/github'));
      expect(err.status).toBe(403);
      expect(err.vaultErrors.join()).toMatch(/permission denied/);
      expect(err.path).toBe(`${s.kvMount}/data/users/user:bob/github`);
    });

    it('fetchSecrets maps refs to env vars, reads each path once and revokes its token', async () => {
      const before = s.vault.requests?.length ?? 0;
      const got = await fetchSecrets({
        vault: {
          address: s.vault.address,
          namespace: s.vault.namespace,
          authMount: s.jwtMount,
          role: 'berth',
          kvMount: s.kvMount,
        },
        jwt: await s.issuer.sign(claimsFor('alice')),
        refs: [
          { env: 'GITHUB_TOKEN', path: 'users/user:alice/github', key: 'token' },
          { env: 'GITHUB_USER', path: 'users/user:alice/github', key: 'user' },
          { env: 'DB_URL', path: 'users/user:alice/db', key: 'url' },
          { env: 'DB_PORT', path: 'users/user:alice/db', key: 'port' },
        ],
      });
      expect(got.values).toEqual({
        GITHUB_TOKEN: 'ghp_alice_v2',
        GITHUB_USER: 'alice',
        DB_URL: 'postgres://alice:pw@db/alice',
        DB_PORT: '5432',
      });
      if (s.vault.requests) {
        const reads = s.vault.requests
          .slice(before)
          .filter((r) => r.method === 'GET' && r.path.includes('/data/'));
        expect(reads.map((r) => r.path).sort()).toEqual([
          `${s.kvMount}/data/users/user:alice/db`,
          `${s.kvMount}/data/users/user:alice/github`,
        ]);
      }
      await got.revoke();
      await got.revoke();
    });

    it('fetchSecrets fails naming the path and Vault’s message on 403, a missing path or a missing key', async () => {
      const vault = {
        address: s.vault.address,
        namespace: s.vault.namespace,
        authMount: s.jwtMount,
        role: 'berth',
        kvMount: s.kvMount,
      };
      const forbidden = await rejected(
        fetchSecrets({
          vault,
          jwt: await s.issuer.sign(claimsFor('alice')),
          refs: [{ env: 'X', path: 'users/user:bob/github', key: 'token' }],
        }),
      );
      expect(forbidden.status).toBe(403);
      expect(forbidden.message).toContain(`${s.kvMount}/data/users/user:bob/github`);
      expect(forbidden.message).toMatch(/permission denied/);
      if (s.vault.requests) {
        // The token from the failed launch must not outlive it.
        expect(s.vault.requests.at(-1)).toMatchObject({ method: 'POST', path: 'auth/token/revoke-self' });
      }
      const missing = await rejected(
        fetchSecrets({
          vault,
          jwt: await s.issuer.sign(claimsFor('alice')),
          refs: [{ env: 'X', path: 'users/user:alice/nope', key: 'token' }],
        }),
      );
      expect(missing.status).toBe(404);
      expect(missing.message).toContain(`${s.kvMount}/data/users/user:alice/nope`);
      const noKey = await rejected(
        fetchSecrets({
          vault,
          jwt: await s.issuer.sign(claimsFor('alice')),
          refs: [{ env: 'X', path: 'users/user:alice/github', key: 'password' }],
        }),
      );
      expect(noKey.message).toMatch(/has no key "password".*keys present: token, user/);
      expect(noKey.message).not.toContain('ghp_alice');
    });

    it('refuses an expired Vault token with 403, and renew-self extends a live one', async () => {
      const short = await login('alice', 'short');
      const renewed = await short.renewSelf(60);
      expect(renewed.renewable).toBe(true);
      expect(renewed.leaseDuration).toBeGreaterThan(0);
      expect(renewed.leaseDuration).toBeLessThanOrEqual(2);
      const expiring = await login('alice', 'short');
      await expiring.readKv(s.kvMount, 'users/user:alice/github');
      await s.vault.advanceClock(3);
      const err = await rejected(expiring.readKv(s.kvMount, 'users/user:alice/github'));
      expect(err.status).toBe(403);
      expect(err.vaultErrors.join()).toMatch(/permission denied|invalid token/);
    });

    it('makes a token unusable after revoke-self', async () => {
      const alice = await login('alice');
      await alice.revokeSelf();
      const err = await rejected(alice.readKv(s.kvMount, 'users/user:alice/github'));
      expect(err.status).toBe(403);
    });

    it('wraps a KV read, checks it by lookup, unwraps it once, and flags a second unwrap as possible interception', async () => {
      const path = `${s.kvMount}/data/users/user:alice/github`;
      const wrapped = await s.admin.request('GET', path, { headers: { 'X-Vault-Wrap-TTL': '300' } });
      const wrappingToken = wrapped.wrap_info?.token ?? '';
      expect(wrapped.wrap_info).toMatchObject({ ttl: 300, creation_path: path });

      const lookup = await client.lookupWrapping(wrappingToken);
      expect(lookup).toMatchObject({ creation_path: path, creation_ttl: 300 });
      expect(typeof lookup.creation_time).toBe('string');

      const vault = { address: s.vault.address, namespace: s.vault.namespace };
      const got = await unwrapSecrets({ vault, wrappingToken, expectedCreationPath: path });
      expect(got.values).toEqual({ token: 'ghp_alice_v2', user: 'alice' });

      const raw = await rejected(client.unwrap(wrappingToken));
      expect(raw.status).toBe(400);
      expect(raw.vaultErrors).toEqual(['wrapping token is not valid or does not exist']);

      const again = await rejected(unwrapSecrets({ vault, wrappingToken, expectedCreationPath: path }));
      expect(again.message).toMatch(/already used .* or it expired/);
      expect(again.message).toMatch(/intercepted/);
      expect(again.message).not.toContain(wrappingToken);
    });

    it('refuses to unwrap a token created at an unexpected path, leaving it unused', async () => {
      const wrapped = await s.admin.request('POST', 'sys/wrapping/wrap', {
        body: { GITHUB_TOKEN: 'x-wrapped' },
        headers: { 'X-Vault-Wrap-TTL': '5m' },
      });
      const wrappingToken = wrapped.wrap_info?.token ?? '';
      const vault = { address: s.vault.address, namespace: s.vault.namespace };
      const err = await rejected(
        unwrapSecrets({ vault, wrappingToken, expectedCreationPath: `${s.kvMount}/data/users/*` }),
      );
      expect(err.message).toMatch(/created at "sys\/wrapping\/wrap"/);
      const ok = await unwrapSecrets({ vault, wrappingToken, expectedCreationPath: 'sys/wrapping/wrap' });
      expect(ok.values).toEqual({ GITHUB_TOKEN: 'x-wrapped' });
    });

    it('revokes Berth’s access: deleting the role stops logins, disabling the mount revokes issued tokens', async () => {
      const alice = await login('alice');
      await s.admin.request('DELETE', `auth/${s.jwtMount}/role/berth`);
      const noRole = await rejected(
        client.loginJwt({ mount: s.jwtMount, role: 'berth', jwt: await s.issuer.sign(claimsFor('alice')) }),
      );
      expect(noRole.status).toBe(400);
      expect(noRole.vaultErrors.join()).toMatch(/role "berth" could not be found/);
      expect(noRole.hint).toMatch(/no role "berth"/);
      await alice.readKv(s.kvMount, 'users/user:alice/github');
      await s.admin.request('DELETE', `sys/auth/${s.jwtMount}`);
      const revoked = await rejected(alice.readKv(s.kvMount, 'users/user:alice/github'));
      expect(revoked.status).toBe(403);
    });

    it('accepts the role from docs/secrets.md: only the bound Berth user logs in, launch details land in metadata', async () => {
      await s.admin.request('POST', `auth/${s.jwtMount}/role/doc`, {
        body: {
          role_type: 'jwt',
          bound_audiences: [AUDIENCE],
          bound_claims_type: 'string',
          bound_claims: { sub: ['user:alice'] },
          user_claim: 'sub',
          claim_mappings: {
            environment_id: 'environment_id',
            task_id: 'task_id',
            provider: 'provider',
            launch_source: 'launch_source',
          },
          token_policies: [s.policy],
          token_ttl: '10m',
          token_max_ttl: '30m',
          token_no_default_policy: false,
        },
      });
      const auth = await client.loginJwt({
        mount: s.jwtMount,
        role: 'doc',
        jwt: await s.issuer.sign(claimsFor('alice', { launch_source: 'mobile' })),
      });
      expect(auth.metadata).toMatchObject({
        role: 'doc',
        environment_id: 'env_123',
        task_id: 'task_456',
        provider: 'docker',
        launch_source: 'mobile',
      });
      const secret = await client.withToken(auth.clientToken).readKv(s.kvMount, 'users/user:alice/github');
      expect(secret.data.token).toBe('ghp_alice_v2');
      const bob = await rejected(
        client.loginJwt({ mount: s.jwtMount, role: 'doc', jwt: await s.issuer.sign(claimsFor('bob')) }),
      );
      expect(bob.vaultErrors.join()).toMatch(/claim "sub" does not match any associated bound claim values/);
    });

    it('expires a wrapping token after its TTL', async () => {
      const wrapped = await s.admin.request('POST', 'sys/wrapping/wrap', {
        body: { a: 'b' },
        headers: { 'X-Vault-Wrap-TTL': '2' },
      });
      await s.vault.advanceClock(3);
      const err = await rejected(client.lookupWrapping(wrapped.wrap_info?.token ?? ''));
      expect(err.vaultErrors).toEqual(['wrapping token is not valid or does not exist']);
    });
  });
}
