import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, Client, memberClient, startTestServer, type TestServer } from '../testing/server.js';
import { AuditService } from './audit.service.js';

let s: TestServer;
let admin: Client;
let adminToken: string;

interface Row {
  id: string;
  user_id: string | null;
  actor_email: string | null;
  token_id: string | null;
  ip: string | null;
  action: string;
  route: string | null;
  target_type: string | null;
  target_id: string | null;
  result: number;
  request_id: string | null;
  details: Record<string, unknown>;
}

async function rows(where = 'true', params: unknown[] = []): Promise<Row[]> {
  await s.app.get(AuditService).settled();
  const r = await s.pool.query<Row>(
    `SELECT *, id::text AS id FROM audit_log WHERE ${where} ORDER BY audit_log.id`,
    params,
  );
  return r.rows;
}

beforeAll(async () => {
  s = await startTestServer();
  const session = new Client(s.url);
  await session.login(ADMIN.email, ADMIN.password);
  const t = await session.post('/api/v1/tokens', { name: 'audit-admin' });
  adminToken = t.json.token as string;
  admin = new Client(s.url, adminToken);
});
afterAll(async () => {
  await s?.stop();
});

describe('audit coverage', () => {
  it('writes a row for every mutating operation in the OpenAPI document, 4xx included', async () => {
    const doc = (await admin.get('/api/docs/openapi.json')).json as {
      paths: Record<string, Record<string, unknown>>;
    };
    const ops: Array<{ method: string; path: string }> = [];
    for (const [path, item] of Object.entries(doc.paths))
      for (const m of ['post', 'put', 'patch', 'delete'])
        if (item[m]) ops.push({ method: m.toUpperCase(), path });
    // Guards against walking an empty or truncated document and passing vacuously.
    expect(ops.length).toBeGreaterThanOrEqual(10);
    expect(ops).toContainEqual({ method: 'POST', path: '/api/v1/auth/login' });

    const missing: string[] = [];
    for (const [i, op] of ops.entries()) {
      const reqId = `audit-walk-${i}-${randomUUID().slice(0, 8)}`;
      // Random ids: the parent does not exist, so deletes and actions answer 404 and harm nothing;
      // an unknown field makes every strict body invalid (400), so no create starts real work
      // (an environment, a task). Either way the call must be audited.
      const url = op.path.replace(/\{[^}]+\}/g, () => randomUUID());
      const res = await admin.req(op.method, url, { auditProbe: 'unknown field' }, { 'x-request-id': reqId });
      const found = await rows('request_id = $1', [reqId]);
      const pattern = `${op.method} ${op.path.replace(/\{([^}]+)\}/g, ':$1')}`;
      const row = found[0];
      if (found.length !== 1 || row?.route !== pattern || row.result !== res.status)
        missing.push(`${pattern} → ${res.status}: ${JSON.stringify(found)}`);
    }
    expect(missing).toEqual([]);
    // Terminal tickets (open, attach) are the terminal attach events, named as such.
    const attach = await rows(`action = 'terminals.attach'`);
    expect(attach.length).toBeGreaterThan(0);
    expect(attach[0]).toMatchObject({ target_type: 'terminal', result: 400 });
    expect(attach[0]?.details.environmentId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('records actor, token, address, verb and target of a successful change', async () => {
    const created = await admin.post('/api/v1/tokens', { name: 'rename-me' });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    const me = await admin.get('/api/v1/me');
    const r = await admin.req(
      'PATCH',
      `/api/v1/tokens/${id}`,
      { name: 'renamed' },
      { 'x-request-id': 'audit-patch-1' },
    );
    expect(r.status).toBe(200);
    const [create] = await rows(`action = 'tokens.create' AND target_id = $1`, [id]);
    expect(create).toMatchObject({
      user_id: me.json.user.id,
      token_id: me.json.tokenId,
      target_type: 'token',
      result: 201,
    });
    const [patch] = await rows(`request_id = 'audit-patch-1'`);
    expect(patch).toMatchObject({
      action: 'tokens.update',
      route: 'PATCH /api/v1/tokens/:id',
      target_type: 'token',
      target_id: id,
      result: 200,
      user_id: me.json.user.id,
      actor_email: ADMIN.email,
    });
    expect(patch?.ip).toMatch(/127\.0\.0\.1|::1/);
  });

  it('records unauthenticated and malformed calls, and unknown endpoints', async () => {
    const anon = new Client(s.url);
    await anon.req('POST', '/api/v1/tokens', { name: 'x' }, { 'x-request-id': 'audit-anon' });
    await admin.req('POST', '/api/v1/tokens', '{not json', { 'x-request-id': 'audit-badjson' });
    await admin.req('DELETE', `/api/v1/no-such-thing/${randomUUID()}`, undefined, {
      'x-request-id': 'audit-404',
    });
    const [a] = await rows(`request_id = 'audit-anon'`);
    expect(a).toMatchObject({ action: 'tokens.create', result: 401, user_id: null });
    const [b] = await rows(`request_id = 'audit-badjson'`);
    expect(b).toMatchObject({ action: 'tokens.create', route: 'POST /api/v1/tokens', result: 400 });
    const [c] = await rows(`request_id = 'audit-404'`);
    expect(c).toMatchObject({ route: 'DELETE /api/v1/no-such-thing/:id', result: 404 });
  });

  it('records sign-in attempts with the email tried, never the password', async () => {
    const c = new Client(s.url);
    await c.req(
      'POST',
      '/api/v1/auth/login',
      { email: 'nobody@example.com', password: 'wrong-pass-123' },
      { 'x-request-id': 'audit-login-bad' },
    );
    await c.req('POST', '/api/v1/auth/login', ADMIN, { 'x-request-id': 'audit-login-ok' });
    const [bad] = await rows(`request_id = 'audit-login-bad'`);
    expect(bad).toMatchObject({
      action: 'auth.login',
      result: 401,
      user_id: null,
      details: { email: 'nobody@example.com' },
    });
    const [ok] = await rows(`request_id = 'audit-login-ok'`);
    expect(ok).toMatchObject({
      action: 'auth.login',
      result: 200,
      actor_email: ADMIN.email,
      target_type: 'user',
    });
    expect(ok?.user_id).toBeTruthy();
  });

  it('AuditService.record keeps small facts and drops anything that looks like a credential', async () => {
    const svc = s.app.get(AuditService);
    await svc.record({
      action: 'terminals.attach',
      result: 200,
      targetType: 'environment',
      targetId: 'env-1',
      details: { role: 'driver', token: 'eyJ.secret', password: 'p', apiKey: 'k' },
    });
    const [r] = await rows(`action = 'terminals.attach' AND target_id = 'env-1'`);
    expect(r?.details).toEqual({ role: 'driver' });
  });
});

describe('reading the audit log', () => {
  it('is refused to members, with a hint', async () => {
    const member = await memberClient(s, admin, 'audit-member@example.com');
    const r = await member.get('/api/v1/audit');
    expect(r.status).toBe(403);
    expect(r.json.error.hint).toMatch(/admin/);
  });

  it('filters by user, action, target and time, and pages newest first without gaps', async () => {
    const member = await memberClient(s, admin, 'audit-pager@example.com');
    const me = (await member.get('/api/v1/me')).json;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await member.post('/api/v1/tokens', { name: `pg-${i}` })).json.id as string);
    await member.del(`/api/v1/tokens/${ids[0]}`);
    await s.app.get(AuditService).settled();

    const seen: Array<{ id: string; at: string; targetId: string }> = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `/api/v1/audit?user=${me.user.id}&action=tokens.create&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const r = await admin.get(q);
      expect(r.status).toBe(200);
      seen.push(...(r.json.items as typeof seen));
      cursor = r.json.nextCursor as string | null;
      pages++;
    } while (cursor);
    // memberClient itself created one token ("test") before the five above.
    expect(seen.length).toBe(6);
    expect(pages).toBe(3);
    expect(new Set(seen.map((x) => x.id)).size).toBe(6);
    expect(seen.map((x) => x.targetId).slice(0, 5)).toEqual([...ids].reverse());
    const ats = seen.map((x) => Date.parse(x.at));
    expect([...ats].sort((a, b) => b - a)).toEqual(ats);

    const prefix = await admin.get(`/api/v1/audit?user=${me.user.id}&action=tokens.*`);
    expect(new Set((prefix.json.items as Array<{ action: string }>).map((x) => x.action))).toEqual(
      new Set(['tokens.create', 'tokens.delete']),
    );
    const byTarget = await admin.get(`/api/v1/audit?target=token:${ids[0]}`);
    expect((byTarget.json.items as Array<{ action: string }>).map((x) => x.action)).toEqual([
      'tokens.delete',
      'tokens.create',
    ]);
    const future = await admin.get(
      `/api/v1/audit?since=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`,
    );
    expect(future.json.items).toEqual([]);
    const past = await admin.get(`/api/v1/audit?user=${me.user.id}&until=2000-01-01`);
    expect(past.json.items).toEqual([]);
    expect((await admin.get('/api/v1/audit?cursor=bogus')).json.error.code).toBe('invalid_cursor');
    expect((await admin.get('/api/v1/audit?since=yesterday')).status).toBe(400);
  });

  it('keeps rows of a deleted user, with the user id cleared', async () => {
    const member = await memberClient(s, admin, 'audit-gone@example.com');
    const me = (await member.get('/api/v1/me')).json;
    expect((await rows('user_id = $1', [me.user.id])).length).toBeGreaterThan(0);
    expect((await admin.del(`/api/v1/users/${me.user.id}`)).status).toBe(200);
    expect(await rows('user_id = $1', [me.user.id])).toEqual([]);
    expect((await rows(`actor_email = 'audit-gone@example.com'`)).length).toBeGreaterThan(0);
  });

  it('never holds a password, token or session value', async () => {
    const session = new Client(s.url);
    await session.login(ADMIN.email, ADMIN.password);
    const sessionValue = decodeURIComponent(session.cookie!.split('=')[1]!);
    expect(sessionValue.length).toBeGreaterThan(16);
    const t = await session.post('/api/v1/tokens', { name: 'secret-check' });
    await session.post('/api/v1/auth/logout');
    await s.app.get(AuditService).settled();
    const dump = (
      await s.pool.query<{ t: string }>(
        `SELECT coalesce(string_agg(row_to_json(a)::text, E'\\n'), '') AS t FROM audit_log a`,
      )
    ).rows[0]!.t;
    expect(dump.length).toBeGreaterThan(1000);
    for (const secret of [
      ADMIN.password,
      'member password 1',
      'wrong-pass-123',
      adminToken,
      t.json.token as string,
      sessionValue,
    ])
      expect(dump.includes(secret), `audit table contains a secret (${secret.slice(0, 4)}…)`).toBe(false);
  });
});
