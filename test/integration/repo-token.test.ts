import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { transaction } from '@berth/db';
import { serveRepoWithToken } from '@berth/providers/testing';
import { VaultClient, startFakeVault, type FakeVault } from '@berth/vault';
import {
  ADMIN,
  Client,
  startTestServer,
  type TestServer,
} from '../../apps/control-plane/src/testing/server.js';
import { LiveWaiter } from '../../apps/control-plane/src/testing/live.js';
import { EnvironmentJobs } from '../../apps/control-plane/src/environments/environment-jobs.port.js';
import { EnvironmentsRepository } from '../../apps/control-plane/src/environments/environments.repository.js';

/**
 * `repo.tokenSecret`: a private repository cloned with a token read from the owner's own Vault
 * (a FAKE Vault here) at provisioning, through a local environment. The token is used for the
 * clone and is then nowhere: not in Postgres, the server log, the workspace or its git config.
 */

const run = promisify(execFile);
const AUDIENCE = 'vault.test/berth-repo';

/** Every file under `dir` as text, for "the token is nowhere" checks. */
async function allText(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    parts.push((await readFile(join(e.parentPath, e.name)).catch(() => Buffer.alloc(0))).toString('latin1'));
  }
  return parts.join('\n');
}

describe('a private repository cloned with a token from the owner’s Vault (FAKE Vault, local provider)', () => {
  let s: TestServer;
  let vault: FakeVault;
  let root: VaultClient;
  let admin: Client;
  let live: LiveWaiter;
  let git: { url: string; close(): Promise<void> };
  let tmp: string;
  const token = `gittoken-${randomBytes(16).toString('hex')}`;

  beforeAll(async () => {
    s = await startTestServer({ BERTH_PROVIDERS: 'local' });
    admin = new Client(s.url);
    await admin.login(ADMIN.email, ADMIN.password);
    const adminId = (await admin.get('/api/v1/me')).json.user.id as string;
    live = await LiveWaiter.connect(admin);

    // A bare repository with one commit, served only to requests carrying the token.
    tmp = await mkdtemp(join(tmpdir(), 'berth-repo-token-'));
    const work = join(tmp, 'work');
    await run('git', ['init', '-q', '-b', 'main', work]);
    await writeFile(join(work, 'README'), 'private contents\n');
    const g = (...args: string[]) =>
      run('git', ['-C', work, '-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args]);
    await g('add', 'README');
    await g('commit', '-q', '-m', 'first');
    await run('git', ['clone', '-q', '--bare', work, join(tmp, 'private.git')]);
    git = await serveRepoWithToken(join(tmp, 'private.git'), token);

    // The user's one-time Vault setup from docs/secrets.md, against the fake.
    vault = await startFakeVault();
    root = new VaultClient({ address: vault.address, token: vault.rootToken });
    const disco = (await (await fetch(`${s.url}/.well-known/openid-configuration`)).json()) as {
      issuer: string;
      jwks_uri: string;
    };
    await root.request('POST', 'sys/auth/berth', { body: { type: 'jwt' } });
    await root.request('POST', 'auth/berth/config', {
      body: { jwks_url: disco.jwks_uri, bound_issuer: disco.issuer, jwt_supported_algs: ['EdDSA'] },
    });
    await root.request('POST', 'sys/policies/acl/berth-user', {
      body: { policy: 'path "secret/data/berth/*" {\n  capabilities = ["read"]\n}\n' },
    });
    await root.request('POST', 'auth/berth/role/berth', {
      body: {
        role_type: 'jwt',
        bound_audiences: [AUDIENCE],
        bound_claims: { sub: [`user:${adminId}`], provider: ['local'], launch_source: ['api'] },
        user_claim: 'sub',
        token_policies: ['berth-user'],
        token_ttl: '10m',
      },
    });
    await root.request('POST', `secret/data/berth/user:${adminId}/git`, { body: { data: { token } } });
    const settings = { vaultAddress: vault.address, authMount: 'berth', role: 'berth', audience: AUDIENCE };
    expect((await admin.req('PUT', '/api/v1/secrets/settings', settings)).status).toBe(200);
    const ref = { env: 'GIT_TOKEN', path: `berth/user:${adminId}/git`, key: 'token' };
    expect((await admin.post('/api/v1/secrets/refs', ref)).status).toBe(201);
  }, 120_000);

  afterAll(async () => {
    live?.close();
    await git?.close();
    await root?.close();
    await vault?.close();
    await s?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const settle = (id: string) =>
    live.until(
      () => admin.get(`/api/v1/environments/${id}`),
      (x) => ['ready', 'failed'].includes(x.json.environment.state as string),
    );

  it('clones with the token and keeps it nowhere', { timeout: 120_000 }, async () => {
    // The API takes https/ssh URLs only; the test server is plain HTTP on loopback, so the row
    // is made the way the service makes it (insert + provisioning job), past the URL check.
    const envs = s.app.get(EnvironmentsRepository);
    const jobs = s.app.get(EnvironmentJobs);
    const adminId = (await admin.get('/api/v1/me')).json.user.id as string;
    const spec = { repo: { url: git.url, tokenSecret: 'GIT_TOKEN' } };
    const row = await transaction(s.pool, async (tx) => {
      const created = await envs.insert(tx, {
        ownerId: adminId,
        name: 'private-repo',
        provider: 'local',
        spec,
        specHash: 'test',
      });
      await jobs.enqueue(tx, 'environment.provision', created!.id);
      return created!;
    });
    const env = (await settle(row.id)).json.environment;
    expect(env.stateReason ?? '').toBe('');
    expect(env.state).toBe('ready');

    const dir = join(s.dataDir, 'local', 'envs', row.id);
    expect(await readFile(join(dir, 'workspace', 'README'), 'utf8')).toBe('private contents\n');
    const gitConfig = await readFile(join(dir, 'workspace', '.git', 'config'), 'utf8');
    expect(gitConfig).toContain(git.url);
    expect(gitConfig).not.toContain(token);
    expect(await allText(dir)).not.toContain(token);

    const events = await admin.get(`/api/v1/environments/${row.id}/events`);
    const messages = events.json.items.map((e: { message: string }) => e.message).join('\n');
    expect(messages).toContain('reading the repository token GIT_TOKEN from your Vault');
    expect(messages).not.toContain(token);
    for (const table of ['environments', 'environment_events', 'jobs']) {
      const { rows } = await s.pool.query<{ row: string }>(`SELECT x::text AS row FROM ${table} x`);
      expect(rows.map((r) => r.row).join('\n')).not.toContain(token);
    }
    expect(s.logs.join('\n')).not.toContain(token);
  });

  it('fails with a hint when the secret reference does not exist', { timeout: 60_000 }, async () => {
    const bad = await admin.post('/api/v1/environments', {
      name: 'bad-secret-name',
      repo: { url: 'https://git.example.invalid/x.git', tokenSecret: 'not a name' },
    });
    expect(bad.status).toBe(400);
    const r = await admin.post('/api/v1/environments', {
      name: 'no-such-ref',
      repo: { url: 'https://git.example.invalid/x.git', tokenSecret: 'NOPE' },
    });
    expect(r.status).toBe(201);
    const env = (await settle(r.json.environment.id as string)).json.environment;
    expect(env.state).toBe('failed');
    expect(env.stateReason).toMatch(/NOPE.*no secret reference with that env name/);
  });
});
