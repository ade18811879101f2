import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { ADMIN, Client, memberClient, startTestServer, type TestServer } from '../testing/server.js';

let s: TestServer;
let admin: Client;
beforeAll(async () => {
  s = await startTestServer();
  admin = new Client(s.url);
  await admin.login(ADMIN.email, ADMIN.password);
});
afterAll(async () => {
  await s.stop();
});

const settings = {
  vaultAddress: 'https://vault.example.com:8200/',
  role: 'berth',
  audience: 'vault.example.com',
};

describe('secret settings and references', () => {
  it('stores where secrets live; an identical PUT reports changed: false', async () => {
    expect((await admin.get('/api/v1/secrets/settings')).json).toEqual({ settings: null });
    const put = await admin.req('PUT', '/api/v1/secrets/settings', settings);
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({
      changed: true,
      settings: {
        vaultAddress: 'https://vault.example.com:8200',
        authMount: 'jwt',
        kvMount: 'secret',
        role: 'berth',
      },
    });
    expect((await admin.req('PUT', '/api/v1/secrets/settings', settings)).json.changed).toBe(false);
    const changed = await admin.req('PUT', '/api/v1/secrets/settings', { ...settings, namespace: 'team-a' });
    expect(changed.json).toMatchObject({ changed: true, settings: { namespace: 'team-a' } });
  });

  it('adds, lists and removes references; one per env var', async () => {
    const r = await admin.post('/api/v1/secrets/refs', {
      env: 'GITHUB_TOKEN',
      path: 'users/me/github',
      key: 'token',
    });
    expect(r.status).toBe(201);
    expect(r.json.ref).toMatchObject({ env: 'GITHUB_TOKEN', path: 'users/me/github', key: 'token' });
    expect(
      (await admin.post('/api/v1/secrets/refs', { env: 'GITHUB_TOKEN', path: 'x', key: 'y' })).status,
    ).toBe(409);
    const list = await admin.get('/api/v1/secrets/refs');
    expect(list.json.items.map((x: { env: string }) => x.env)).toEqual(['GITHUB_TOKEN']);
    expect((await admin.del(`/api/v1/secrets/refs/${r.json.ref.id}`)).status).toBe(200);
    expect((await admin.get('/api/v1/secrets/refs')).json.items).toEqual([]);
  });

  it('never accepts a secret value, and says where it belongs', async () => {
    const canary = 'canary-value-3f9a1c';
    const r = await admin.post('/api/v1/secrets/refs', {
      env: 'API_KEY',
      path: 'p',
      key: 'k',
      value: canary,
    });
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('values_not_accepted');
    expect(r.json.error.hint).toMatch(/vault kv put/);
    const r2 = await admin.req('PUT', '/api/v1/secrets/settings', { ...settings, token: canary });
    expect(r2.json.error.code).toBe('values_not_accepted');
    const key = await admin.req('PUT', '/api/v1/secrets/settings', {
      ...settings,
      caCert: `-----BEGIN PRIVATE KEY-----\n${canary}`,
    });
    expect(key.status).toBe(400);
    // Nothing of it reached the database or the log.
    const c = new pg.Client({ connectionString: s.db.url });
    await c.connect();
    const dump = await c.query(
      `SELECT row_to_json(t)::text AS j FROM (SELECT * FROM secret_settings) t UNION ALL SELECT row_to_json(r)::text FROM secret_refs r`,
    );
    await c.end();
    expect(dump.rows.map((x) => x.j as string).join('\n')).not.toContain(canary);
    expect(s.logs.join('\n')).not.toContain(canary);
  });

  it('validates names and paths', async () => {
    expect((await admin.post('/api/v1/secrets/refs', { env: '1BAD', path: 'p', key: 'k' })).status).toBe(400);
    expect((await admin.post('/api/v1/secrets/refs', { env: 'OK', path: '../etc', key: 'k' })).status).toBe(
      400,
    );
    expect(
      (await admin.req('PUT', '/api/v1/secrets/settings', { ...settings, vaultAddress: 'ftp://x' })).status,
    ).toBe(400);
  });

  it('is per user: another member sees none of it and cannot delete it', async () => {
    const r = await admin.post('/api/v1/secrets/refs', { env: 'MINE', path: 'users/a/x', key: 'k' });
    const m = await memberClient(s, admin, 'secrets-member@example.com');
    expect((await m.get('/api/v1/secrets/settings')).json).toEqual({ settings: null });
    expect((await m.get('/api/v1/secrets/refs')).json.items).toEqual([]);
    expect((await m.del(`/api/v1/secrets/refs/${r.json.ref.id}`)).status).toBe(404);
    expect((await admin.get('/api/v1/secrets/refs')).json.items.map((x: { env: string }) => x.env)).toContain(
      'MINE',
    );
  });
});
