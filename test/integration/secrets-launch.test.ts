import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '@berth/db';
import { VaultClient, startFakeVault, type FakeVault } from '@berth/vault';
import { berthKeys, trustBerth } from '@berth/vault/testing';
import {
  ADMIN,
  Client,
  memberClient,
  startTestServer,
  type TestServer,
} from '../../apps/control-plane/src/testing/server.js';
import { LiveWaiter } from '../../apps/control-plane/src/testing/live.js';
import { runCli } from '../helpers/cli.js';

/**
 * Secrets from the user's own Vault (a FAKE Vault here), end to end: a task launched through the
 * API with no secret in the request gets the value in its env from the gateway, its log shows
 * the mask, and the value is nowhere in Berth's database, logs, data directory or saved spec.
 */

const FINAL = ['succeeded', 'failed', 'canceled', 'timed_out'];
const AUDIENCE = 'vault.test/berth';
const run = promisify(execFile);

interface TaskJson {
  id: string;
  state: string;
  exitCode: number | null;
  error: string | null;
}

async function settleEnv(c: Client, live: LiveWaiter, id: string, states: string[]): Promise<string> {
  const r = await live.until(
    () => c.get(`/api/v1/environments/${id}`),
    (x) => states.includes(x.json?.environment?.state as string),
  );
  return r.json.environment.state as string;
}

async function finished(c: Client, live: LiveWaiter, id: string): Promise<TaskJson> {
  return live.until(
    async () => {
      const r = await c.get(`/api/v1/tasks/${id}`);
      return (r.json.task ?? r.json) as TaskJson;
    },
    (t) => FINAL.includes(t.state),
  );
}

async function storedLog(c: Client, id: string): Promise<string> {
  const r = await c.get(`/api/v1/tasks/${id}/logs?offset=0&limit=4194304&encoding=base64`);
  expect(r.status).toBe(200);
  return Buffer.from(r.json.data as string, 'base64').toString();
}

/**
 * The test database as text: `pg_dump` when a binary that speaks the server's version is
 * installed, otherwise every row of every table (row-to-text covers every column).
 */
async function dumpDatabase(url: string): Promise<string> {
  const bins = existsSync('/usr/lib/postgresql')
    ? readdirSync('/usr/lib/postgresql').map((v) => `/usr/lib/postgresql/${v}/bin/pg_dump`)
    : [];
  for (const bin of bins.filter((b) => existsSync(b))) {
    try {
      const { stdout } = await run(bin, ['--data-only', '--no-owner', url], {
        maxBuffer: 512 * 1024 * 1024,
      });
      return stdout;
    } catch {
      // version mismatch with the embedded server: fall back below
    }
  }
  const pool = createPool(url, 1);
  try {
    const { rows } = await pool.query<{ t: string }>(
      `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS t
       FROM information_schema.tables WHERE table_type = 'BASE TABLE'
         AND table_schema NOT IN ('pg_catalog', 'information_schema')`,
    );
    const parts: string[] = [];
    for (const { t } of rows) {
      const r = await pool.query<{ row: string }>(`SELECT x::text AS row FROM ${t} x`);
      parts.push(...r.rows.map((x) => x.row));
    }
    expect(parts.length).toBeGreaterThan(0);
    return parts.join('\n');
  } finally {
    await pool.end();
  }
}

/** Every file under `dir`, as bytes. */
async function filesUnder(dir: string): Promise<Array<{ path: string; data: Buffer }>> {
  const out: Array<{ path: string; data: Buffer }> = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    const data = await readFile(p).catch(() => undefined);
    if (data) out.push({ path: p, data });
  }
  return out;
}

/** Resolves when `cond` holds; for facts that only a poll can see (a request reached the fake). */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(cond()).toBe(true);
}

describe('a task gets secrets from the owner’s Vault (FAKE Vault), through a local environment', () => {
  let s: TestServer;
  let vault: FakeVault;
  let root: VaultClient;
  let admin: Client;
  let bob: Client;
  let live: LiveWaiter;
  let envId: string;
  let bobEnvId: string;
  let adminId: string;
  const canary = `canary-${randomBytes(16).toString('hex')}`;

  beforeAll(async () => {
    s = await startTestServer({ BERTH_PROVIDERS: 'local' });
    admin = new Client(s.url);
    await admin.login(ADMIN.email, ADMIN.password);
    adminId = (await admin.get('/api/v1/me')).json.user.id as string;
    admin.token = (await admin.post('/api/v1/tokens', { name: 'secrets' })).json.token;
    bob = await memberClient(s, admin, 'bob@example.com');
    const bobId = (await bob.get('/api/v1/me')).json.user.id as string;
    live = await LiveWaiter.connect(admin);

    // The user's one-time Vault setup from docs/secrets.md, against the fake.
    vault = await startFakeVault();
    root = new VaultClient({ address: vault.address, token: vault.rootToken });
    await trustBerth(root, {
      ...(await berthKeys(s.url)),
      audience: AUDIENCE,
      policy: { name: 'berth-user', path: (user) => `secret/data/berth/${user}/*` },
      role: {
        // The launch's claims, checked by Vault: who, from where, on which provider.
        bound_claims: {
          sub: [`user:${adminId}`, `user:${bobId}`],
          provider: ['local'],
          // This user lets their CLI, the web and scripts read secrets, not a phone.
          launch_source: ['api', 'cli', 'web'],
        },
        claim_mappings: { environment_id: 'environment_id', task_id: 'task_id' },
      },
    });
    await root.request('POST', `secret/data/berth/user:${adminId}/github`, {
      body: { data: { token: canary } },
    });

    const settings = { vaultAddress: vault.address, authMount: 'berth', role: 'berth', audience: AUDIENCE };
    for (const c of [admin, bob]) {
      expect((await c.req('PUT', '/api/v1/secrets/settings', settings)).status).toBe(200);
      // Bob points at the admin's path: Berth lets him say so, his Vault policy does not.
      const ref = { env: 'GITHUB_TOKEN', path: `berth/user:${adminId}/github`, key: 'token' };
      expect((await c.post('/api/v1/secrets/refs', ref)).status).toBe(201);
    }
    const make = async (c: Client, name: string) => {
      const r = await c.post('/api/v1/environments', { name });
      expect(r.status).toBe(201);
      return r.json.environment.id as string;
    };
    envId = await make(admin, 'secrets-a');
    bobEnvId = await make(bob, 'secrets-b');
    const bobLive = await LiveWaiter.connect(bob);
    try {
      expect(await settleEnv(bob, bobLive, bobEnvId, ['ready', 'failed'])).toBe('ready');
    } finally {
      bobLive.close();
    }
    expect(await settleEnv(admin, live, envId, ['ready', 'failed'])).toBe('ready');
  });

  afterAll(async () => {
    live?.close();
    await root?.close();
    await vault?.close();
    await s?.stop();
  });

  it('the process gets the value (length and hash printed); the log shows *** and the Vault token is revoked', async () => {
    const revokesBefore = vault.requests.filter((r) => r.path.endsWith('revoke-self')).length;
    const r = await admin.post('/api/v1/tasks', {
      environmentId: envId,
      command: [
        'sh',
        '-c',
        'printf %s "$GITHUB_TOKEN" | wc -c; printf %s "$GITHUB_TOKEN" | sha256sum; echo "raw: $GITHUB_TOKEN."; ' +
          // The value in two writes a moment apart: two chunks reach the gateway.
          'v=$GITHUB_TOKEN; rest=${v#??????????}; printf "split: %s" "${v%"$rest"}"; sleep 0.3; echo "$rest."',
      ],
    });
    expect(r.status).toBe(201);
    expect(r.text).not.toContain(canary);
    const t = await finished(admin, live, (r.json.task ?? r.json).id as string);
    expect(t).toMatchObject({ state: 'succeeded', exitCode: 0 });
    const log = await storedLog(admin, t.id);
    const hash = createHash('sha256').update(canary).digest('hex');
    expect(log).toBe(`${canary.length}\n${hash}  -\nraw: ***.\nsplit: ***.\n`);
    await until(() => vault.requests.filter((x) => x.path.endsWith('revoke-self')).length > revokesBefore);
    expect(vault.requests.some((x) => x.path === `secret/data/berth/user:${adminId}/github`)).toBe(true);
  });

  it('canary: the value is nowhere in the database, the server logs, its data directory or the saved spec', async () => {
    const hex = Buffer.from(canary).toString('hex');
    const dump = await dumpDatabase(s.db.url);
    expect(dump).toContain(AUDIENCE); // the dump holds the user's settings: it is the real database
    expect(dump).not.toContain(canary);
    expect(dump).not.toContain(hex);
    expect(dump).not.toContain(Buffer.from(canary).toString('base64'));
    const logs = s.logs.join('');
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain(canary);
    const files = await filesUnder(s.dataDir);
    expect(files.length).toBeGreaterThan(0);
    expect(files.filter((f) => f.data.includes(canary)).map((f) => f.path)).toEqual([]);
    const env = await admin.get(`/api/v1/environments/${envId}`);
    expect(env.status).toBe(200);
    expect(env.text).not.toContain(canary);
  });

  it('a JWT for another user cannot read this user’s path: the launch fails before the process starts, naming the path and Vault’s message', async () => {
    const r = await bob.post('/api/v1/tasks', {
      environmentId: bobEnvId,
      command: ['sh', '-c', 'echo the process ran'],
    });
    expect(r.status).toBe(201);
    const bobLive = await LiveWaiter.connect(bob);
    try {
      const t = await finished(bob, bobLive, (r.json.task ?? r.json).id as string);
      expect(t.state).toBe('failed');
      expect(t.error).toContain(`secret/data/berth/user:${adminId}/github`);
      expect(t.error).toMatch(/permission denied/);
      const log = await storedLog(bob, t.id);
      expect(log).not.toContain('the process ran');
      expect(log).toContain('task was not started');
      expect(log).not.toContain(canary);
    } finally {
      bobLive.close();
    }
  });

  it('berth run --vault-wrapped-token: the gateway checks and unwraps it once; the same token again fails the launch and says it may have been intercepted', async () => {
    const home = await mkdtemp(join(tmpdir(), 'berth-secrets-home-'));
    try {
      const token = (await admin.post('/api/v1/tokens', { name: 'cli' })).json.token as string;
      const env = { HOME: home, BERTH_URL: s.url, BERTH_TOKEN: token };
      const path = `secret/data/berth/user:${adminId}/github`;
      const wrapped = await root.request('GET', path, { headers: { 'X-Vault-Wrap-TTL': '300' } });
      const wrappingToken = wrapped.wrap_info?.token ?? '';
      expect(wrappingToken).not.toBe('');
      // A launch ticket is for the environment's owner only.
      const foreign = await bob.post('/api/v1/secrets/launches', { environmentId: envId });
      expect(foreign.status).toBe(404);
      const loginsBefore = vault.requests.filter((r) => r.path.endsWith('/login')).length;
      const args = [
        'run',
        '--env',
        envId,
        '--vault-wrapped-token',
        wrappingToken,
        '--',
        'sh',
        '-c',
        'printf %s "$GITHUB_TOKEN" | sha256sum; echo "[${BERTH_CLIENT_SECRETS:-}] raw: $GITHUB_TOKEN"',
      ];
      const first = await runCli(args, env);
      expect(first.stderr).toMatch(/^task \S+\n$/);
      expect(first.stdout).toBe(`${createHash('sha256').update(canary).digest('hex')}  -\n[] raw: ***\n`);
      expect(first.code).toBe(0);
      // The wrapped token covered the only reference: no JWT login was needed.
      expect(vault.requests.filter((r) => r.path.endsWith('/login')).length).toBe(loginsBefore);

      const again = await runCli(args, env);
      expect(again.code).not.toBe(0);
      expect(again.stdout).not.toContain('raw:');
      expect(again.stderr).toMatch(/failed/);
      expect(again.stderr).toMatch(/already used .* or it expired/);
      expect(again.stderr).toMatch(/intercepted/);
      expect(again.stderr).not.toContain(wrappingToken);
      expect(s.logs.join('')).not.toContain(wrappingToken);
      expect(await dumpDatabase(s.db.url)).not.toContain(wrappingToken);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it('berth run --secrets-file: values go straight to the gateway, the process gets them, Berth keeps none', async () => {
    const home = await mkdtemp(join(tmpdir(), 'berth-secrets-home-'));
    try {
      const token = (await admin.post('/api/v1/tokens', { name: 'cli-file' })).json.token as string;
      const env = { HOME: home, BERTH_URL: s.url, BERTH_TOKEN: token };
      const local = `local-${randomBytes(12).toString('hex')}`;
      const file = join(home, '.env');
      await writeFile(file, `# local secrets\nexport API_KEY="${local}"\n\nOTHER=plain value\n`);
      const r = await runCli(
        [
          'run',
          '--env',
          envId,
          '--secrets-file',
          file,
          '--',
          'sh',
          '-c',
          'printf %s "$API_KEY" | wc -c; echo "raw: $API_KEY / $OTHER / ${#GITHUB_TOKEN}"',
        ],
        env,
      );
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${local.length}\nraw: *** / *** / ${canary.length}\n`);
      expect(s.logs.join('')).not.toContain(local);
      const dump = await dumpDatabase(s.db.url);
      expect(dump).not.toContain(local);
      expect(dump).not.toContain(Buffer.from(local).toString('hex'));
      const files = await filesUnder(s.dataDir);
      expect(files.filter((f) => f.data.includes(local)).map((f) => f.path)).toEqual([]);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it('the launch source the client names (X-Berth-Client) reaches Vault: a role that leaves out phones refuses a launch from one', async () => {
    const launch = (client: string) =>
      admin.req(
        'POST',
        '/api/v1/tasks',
        { environmentId: envId, command: ['sh', '-c', 'echo "[${#GITHUB_TOKEN}]"'] },
        { 'x-berth-client': client },
      );
    const fromWeb = await launch('web');
    expect(fromWeb.status).toBe(201);
    expect(fromWeb.json.task.launchSource).toBe('web');
    const web = await finished(admin, live, fromWeb.json.task.id as string);
    expect(web).toMatchObject({ state: 'succeeded', exitCode: 0 });
    expect(await storedLog(admin, web.id)).toBe(`[${canary.length}]\n`);

    const fromPhone = await launch('mobile');
    expect(fromPhone.json.task.launchSource).toBe('mobile');
    const phone = await finished(admin, live, fromPhone.json.task.id as string);
    expect(phone.state).toBe('failed');
    expect(phone.error).toMatch(/claim "launch_source" does not match/);
    expect(await storedLog(admin, phone.id)).not.toContain('[');

    const bad = await launch('toaster');
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatchObject({ code: 'bad_client_header' });
    expect(bad.json.error.hint).toMatch(/leave the header out/);
  });

  it('a task can ask for some of the owner’s references by name, or none; an unknown name is refused before anything runs', async () => {
    const loginsBefore = vault.requests.filter((r) => r.path.endsWith('/login')).length;
    const none = await admin.post('/api/v1/tasks', {
      environmentId: envId,
      secrets: [],
      command: ['sh', '-c', 'echo "[${GITHUB_TOKEN:-unset}]"'],
    });
    expect(none.status).toBe(201);
    expect(none.json.task.secrets).toEqual([]);
    const n = await finished(admin, live, none.json.task.id as string);
    expect(n).toMatchObject({ state: 'succeeded', exitCode: 0 });
    expect(await storedLog(admin, n.id)).toBe('[unset]\n');
    // Asking for nothing means no workload identity was even shown to Vault.
    expect(vault.requests.filter((r) => r.path.endsWith('/login')).length).toBe(loginsBefore);

    const named = await admin.post('/api/v1/tasks', {
      environmentId: envId,
      secrets: ['GITHUB_TOKEN'],
      command: ['sh', '-c', 'echo "[${#GITHUB_TOKEN}]"'],
    });
    expect(named.json.task.secrets).toEqual(['GITHUB_TOKEN']);
    const t = await finished(admin, live, named.json.task.id as string);
    expect(await storedLog(admin, t.id)).toBe(`[${canary.length}]\n`);

    const unknown = await admin.post('/api/v1/tasks', {
      environmentId: envId,
      secrets: ['GITHUB_TOKEN', 'NOPE'],
      command: ['true'],
    });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error).toMatchObject({
      code: 'unknown_secret_reference',
      details: { unknown: ['NOPE'] },
    });
    expect(unknown.json.error.message).toContain('NOPE');

    // The CLI says the same with --secret NAME / --no-secrets.
    const home = await mkdtemp(join(tmpdir(), 'berth-secrets-home-'));
    try {
      const token = (await admin.post('/api/v1/tokens', { name: 'cli-refs' })).json.token as string;
      const env = { HOME: home, BERTH_URL: s.url, BERTH_TOKEN: token };
      const show = ['--', 'sh', '-c', 'echo "[${#GITHUB_TOKEN}]"'];
      const without = await runCli(['run', '--env', envId, '--no-secrets', ...show], env);
      expect(without).toMatchObject({ code: 0, stdout: '[0]\n' });
      const withOne = await runCli(['run', '--env', envId, '--secret', 'GITHUB_TOKEN', ...show], env);
      expect(withOne).toMatchObject({ code: 0, stdout: `[${canary.length}]\n` });
      const typo = await runCli(['run', '--env', envId, '--secret', 'GITHUB_TOKN', ...show], env);
      expect(typo.code).not.toBe(0);
      expect(typo.stderr).toMatch(/no secret reference named GITHUB_TOKN/);
      expect(typo.stderr).toMatch(/berth secrets show/);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it('a Vault that does not answer fails the launch with the reason; a user with no settings runs as before', async () => {
    // A port where a Vault was and no longer is.
    const closed = await startFakeVault();
    const address = closed.address;
    await closed.close();
    const settings = { vaultAddress: address, authMount: 'berth', role: 'berth', audience: AUDIENCE };
    expect((await admin.req('PUT', '/api/v1/secrets/settings', settings)).status).toBe(200);
    const r = await admin.post('/api/v1/tasks', {
      environmentId: envId,
      command: ['sh', '-c', 'echo the process ran'],
    });
    const t = await finished(admin, live, (r.json.task ?? r.json).id as string);
    expect(t.state).toBe('failed');
    expect(t.error).toMatch(/could not get the task's secrets.*auth\/berth\/login.*could not reach/);
    expect(await storedLog(admin, t.id)).not.toContain('the process ran');

    expect((await admin.del('/api/v1/secrets/settings')).status).toBe(200);
    const plain = await admin.post('/api/v1/tasks', {
      environmentId: envId,
      command: ['sh', '-c', 'echo "[${GITHUB_TOKEN:-unset}]"'],
    });
    const p = await finished(admin, live, (plain.json.task ?? plain.json).id as string);
    expect(p).toMatchObject({ state: 'succeeded', exitCode: 0 });
    expect(await storedLog(admin, p.id)).toBe('[unset]\n');
    const asks = await admin.post('/api/v1/tasks', {
      environmentId: envId,
      secrets: ['GITHUB_TOKEN'],
      command: ['true'],
    });
    expect(asks.status).toBe(400);
    expect(asks.json.error).toMatchObject({ code: 'secrets_not_configured' });
    expect(asks.json.error.hint).toMatch(/berth secrets config/);
  });
});
