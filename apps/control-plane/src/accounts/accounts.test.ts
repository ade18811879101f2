import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

describe('sign in', () => {
  it('sets an httpOnly session cookie and /me answers with the user', async () => {
    const c = new Client(s.url);
    const r = await c.post('/api/v1/auth/login', ADMIN);
    expect(r.status).toBe(200);
    expect(r.json.user).toMatchObject({ email: ADMIN.email, role: 'admin' });
    expect(r.json.user.password_hash).toBeUndefined();
    expect(r.headers.getSetCookie().join()).toMatch(/berth_session=.*HttpOnly/i);
    const me = await c.get('/api/v1/me');
    expect(me.status).toBe(200);
    expect(me.json.user.email).toBe(ADMIN.email);
    expect(me.json.via).toBe('session');
  });

  it('refuses a wrong password with the error shape and a hint', async () => {
    const r = await new Client(s.url).post('/api/v1/auth/login', {
      email: ADMIN.email,
      password: 'nope nope',
    });
    expect(r.status).toBe(401);
    expect(r.json.error).toMatchObject({ code: 'invalid_credentials' });
    expect(r.json.error.hint).toBeTruthy();
  });

  it('rate-limits repeated sign-in attempts for one account', async () => {
    const c = new Client(s.url);
    const statuses: number[] = [];
    for (let i = 0; i < s.config.loginRateLimit + 2; i++)
      statuses.push(
        (await c.post('/api/v1/auth/login', { email: 'victim@example.com', password: 'guess' + i })).status,
      );
    expect(statuses.slice(0, s.config.loginRateLimit).every((x) => x === 401)).toBe(true);
    expect(statuses.at(-1)).toBe(429);
    const last = await c.post('/api/v1/auth/login', { email: 'victim@example.com', password: 'x' });
    expect(last.json.error.code).toBe('rate_limited');
  });

  it('logout ends the session', async () => {
    const c = new Client(s.url);
    await c.login(ADMIN.email, ADMIN.password);
    expect((await c.post('/api/v1/auth/logout')).status).toBe(200);
    expect((await c.get('/api/v1/me')).status).toBe(401);
  });

  it('refuses a cookie-authenticated write from another origin', async () => {
    const c = new Client(s.url);
    await c.login(ADMIN.email, ADMIN.password);
    const r = await c.req('POST', '/api/v1/tokens', { name: 'x' }, { origin: 'https://evil.example' });
    expect(r.status).toBe(403);
  });

  it('answers 401 with a hint when nobody is signed in', async () => {
    const r = await new Client(s.url).get('/api/v1/me');
    expect(r.status).toBe(401);
    expect(r.json.error.hint).toMatch(/login/);
  });
});

describe('API tokens', () => {
  it('create shows the token once; it authenticates; list never shows it again', async () => {
    const r = await admin.post('/api/v1/tokens', { name: 'ci', expiresInDays: 7 });
    expect(r.status).toBe(201);
    expect(r.json.token).toMatch(/^berth_pat_/);
    const api = new Client(s.url, r.json.token);
    const me = await api.get('/api/v1/me');
    expect(me.status).toBe(200);
    expect(me.json).toMatchObject({ via: 'token', tokenId: r.json.id });
    const list = await admin.get('/api/v1/tokens');
    const listed = list.json.items.find((t: { id: string }) => t.id === r.json.id);
    expect(listed).toMatchObject({ name: 'ci', prefix: r.json.token.slice(0, 14) });
    expect(JSON.stringify(list.json)).not.toContain(r.json.token);
    expect(listed.lastUsedAt).not.toBeNull();
  });

  it('a revoked token stops working at once', async () => {
    const r = await admin.post('/api/v1/tokens', { name: 'short' });
    const api = new Client(s.url, r.json.token);
    expect((await api.get('/api/v1/me')).status).toBe(200);
    expect((await admin.del(`/api/v1/tokens/${r.json.id}`)).status).toBe(200);
    const after = await api.get('/api/v1/me');
    expect(after.status).toBe(401);
    expect(after.json.error.message).toMatch(/revoked/);
    expect((await admin.del(`/api/v1/tokens/${r.json.id}`)).status).toBe(404);
  });

  it('a read-only token cannot write', async () => {
    const r = await admin.post('/api/v1/tokens', { name: 'ro', scopes: ['read'] });
    const ro = new Client(s.url, r.json.token);
    expect((await ro.get('/api/v1/tokens')).status).toBe(200);
    const w = await ro.post('/api/v1/tokens', { name: 'escalate' });
    expect(w.status).toBe(403);
    expect(w.json.error.code).toBe('forbidden');
  });

  it('a member cannot mint a token with the admin scope', async () => {
    const m = await memberClient(s, admin, 'scopes@example.com');
    const r = await m.post('/api/v1/tokens', { name: 'x', scopes: ['admin'] });
    expect(r.status).toBe(403);
  });

  it('renaming to the same name reports changed: false', async () => {
    const r = await admin.post('/api/v1/tokens', { name: 'same' });
    const same = await admin.patch(`/api/v1/tokens/${r.json.id}`, { name: 'same' });
    expect(same.status).toBe(200);
    expect(same.json.changed).toBe(false);
    const diff = await admin.patch(`/api/v1/tokens/${r.json.id}`, { name: 'other' });
    expect(diff.json).toMatchObject({ changed: true, token: { name: 'other' } });
  });
});

describe('cross-user isolation', () => {
  it('member A cannot read, list, update or delete B’s token or user (404, not 403)', async () => {
    const a = await memberClient(s, admin, 'a@example.com');
    const b = await memberClient(s, admin, 'b@example.com');
    const bToken = await b.post('/api/v1/tokens', { name: 'b-secret' });
    const bMe = await b.get('/api/v1/me');
    const bId = bMe.json.user.id as string;
    const tid = bToken.json.id as string;

    expect((await a.get(`/api/v1/tokens/${tid}`)).status).toBe(404);
    expect((await a.patch(`/api/v1/tokens/${tid}`, { name: 'stolen' })).status).toBe(404);
    expect((await a.del(`/api/v1/tokens/${tid}`)).status).toBe(404);
    const aList = await a.get('/api/v1/tokens?limit=200');
    expect(aList.json.items.map((t: { id: string }) => t.id)).not.toContain(tid);

    expect((await a.get(`/api/v1/users/${bId}`)).status).toBe(404);
    expect((await a.patch(`/api/v1/users/${bId}`, { displayName: 'pwned' })).status).toBe(404);
    expect((await a.del(`/api/v1/users/${bId}`)).status).toBe(404);
    const users = await a.get('/api/v1/users');
    expect(users.json.items).toHaveLength(1);
    expect(users.json.items[0].email).toBe('a@example.com');

    // B's things are untouched.
    expect((await b.get(`/api/v1/tokens/${tid}`)).json.token.name).toBe('b-secret');
    expect((await admin.get(`/api/v1/users/${bId}`)).json.user.displayName).toBeNull();
  });

  it('a member cannot create users or make themselves admin', async () => {
    const m = await memberClient(s, admin, 'climber@example.com');
    const me = (await m.get('/api/v1/me')).json.user.id as string;
    expect((await m.post('/api/v1/users', { email: 'x@example.com', password: 'password123' })).status).toBe(
      403,
    );
    expect((await m.patch(`/api/v1/users/${me}`, { role: 'admin' })).status).toBe(403);
    expect((await m.patch(`/api/v1/users/${me}`, { role: 'member' })).json.changed).toBe(false);
  });
});

describe('admin user CRUD', () => {
  it('creates, reads, updates and deletes a user; duplicate email is a 409', async () => {
    const c = await admin.post('/api/v1/users', { email: 'New@Example.com', password: 'password123' });
    expect(c.status).toBe(201);
    expect(c.json.user).toMatchObject({ email: 'new@example.com', role: 'member' });
    const dup = await admin.post('/api/v1/users', { email: 'new@example.com', password: 'password123' });
    expect(dup.status).toBe(409);
    const id = c.json.user.id as string;
    const u = await admin.patch(`/api/v1/users/${id}`, { role: 'admin' });
    expect(u.json).toMatchObject({ changed: true, user: { role: 'admin' } });
    expect((await admin.del(`/api/v1/users/${id}`)).status).toBe(200);
    expect((await admin.get(`/api/v1/users/${id}`)).status).toBe(404);
  });

  it('will not delete or demote the last admin', async () => {
    const me = (await admin.get('/api/v1/me')).json.user.id as string;
    const list = await admin.get('/api/v1/users?limit=200');
    const admins = list.json.items.filter((u: { role: string }) => u.role === 'admin');
    expect(admins).toHaveLength(1);
    expect((await admin.del(`/api/v1/users/${me}`)).status).toBe(409);
    expect((await admin.patch(`/api/v1/users/${me}`, { role: 'member' })).json.error.code).toBe('last_admin');
  });
});

describe('pagination', () => {
  it('walks every page with no duplicates or gaps, also while rows are added', async () => {
    const m = await memberClient(s, admin, 'pager@example.com');
    const made = new Set<string>();
    for (let i = 0; i < 23; i++) made.add((await m.post('/api/v1/tokens', { name: `t${i}` })).json.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r: Awaited<ReturnType<Client['get']>> = await m.get(
        `/api/v1/tokens?limit=5${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(r.status).toBe(200);
      seen.push(...r.json.items.map((t: { id: string }) => t.id));
      cursor = r.json.nextCursor;
      pages++;
      if (pages === 2) made.add((await m.post('/api/v1/tokens', { name: 'late' })).json.id);
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    // 23 + the member's own login token + the one added mid-walk (it sorts last, so it is seen).
    for (const id of made) expect(seen).toContain(id);
    expect(seen).toHaveLength(made.size + 1);
  });

  it('a forged cursor is a 400, not a 500', async () => {
    const r = await admin.get('/api/v1/tokens?cursor=not-a-cursor');
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('invalid_cursor');
  });
});

describe('validation', () => {
  it.each([
    ['wrong type', { name: 42 }],
    ['unknown field', { name: 'x', admin: true }],
    ['missing field', {}],
    ['out of range', { name: 'x', expiresInDays: 0 }],
  ])('%s → 400 with the error shape and details', async (_label, body) => {
    const r = await admin.post('/api/v1/tokens', body);
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('validation_failed');
    expect(r.json.error.hint).toBeTruthy();
    expect(Array.isArray(r.json.error.details)).toBe(true);
  });

  it('malformed JSON → 400 invalid_json', async () => {
    const r = await admin.req('POST', '/api/v1/tokens', '{"name":');
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('invalid_json');
  });

  it('an oversized body → 413 with the error shape', async () => {
    const r = await admin.post('/api/v1/tokens', { name: 'x'.repeat(64 * 1024) });
    expect(r.status).toBe(413);
    expect(r.json.error.code).toBe('payload_too_large');
  });

  it('unknown query parameters and ids that are not UUIDs are handled', async () => {
    expect((await admin.get('/api/v1/tokens?limit=abc')).status).toBe(400);
    expect((await admin.get('/api/v1/tokens?bogus=1')).status).toBe(400);
    expect((await admin.get('/api/v1/tokens/not-a-uuid')).status).toBe(404);
  });

  it('an unknown route answers 404 with the error shape', async () => {
    const r = await admin.get('/api/v1/nope');
    expect(r.status).toBe(404);
    expect(r.json.error.code).toBe('not_found');
  });

  it('no response in this file was a 500', async () => {
    const metrics = await new Client(s.url).get('/metrics');
    expect(metrics.text).toContain('berth_http_request_duration_seconds');
    expect(metrics.text).not.toMatch(/status="5\d\d"/);
  });
});
