import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditService } from '../audit/audit.service.js';
import { ADMIN, Client, startTestServer, type TestServer } from '../testing/server.js';

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

async function member(email: string, password: string): Promise<{ id: string; c: Client }> {
  const r = await admin.post('/api/v1/users', { email, password, role: 'member' });
  const c = new Client(s.url);
  await c.login(email, password);
  return { id: r.json.user.id as string, c };
}

describe('changing a password', () => {
  it('your own needs the current password; a stolen session alone cannot change it', async () => {
    const { id, c } = await member('self@example.com', 'first password 1');
    const missing = await c.patch(`/api/v1/users/${id}`, { password: 'second password 2' });
    expect(missing.status).toBe(400);
    expect(missing.json.error).toMatchObject({ code: 'current_password_required' });
    expect(missing.json.error.hint).toMatch(/currentPassword/);
    const wrong = await c.patch(`/api/v1/users/${id}`, {
      password: 'second password 2',
      currentPassword: 'not it at all',
    });
    expect(wrong.status).toBe(403);
    await new Client(s.url).login('self@example.com', 'first password 1'); // unchanged

    const ok = await c.patch(`/api/v1/users/${id}`, {
      password: 'second password 2',
      currentPassword: 'first password 1',
    });
    expect(ok.status).toBe(200);
    await new Client(s.url).login('self@example.com', 'second password 2');
  });

  it('an admin resets another user’s without it, and the audit log says who', async () => {
    const { id } = await member('forgetful@example.com', 'old password 1');
    const r = await admin.req(
      'PATCH',
      `/api/v1/users/${id}`,
      { password: 'reset password 1' },
      {
        'x-request-id': 'admin-reset-1',
      },
    );
    expect(r.status).toBe(200);
    await new Client(s.url).login('forgetful@example.com', 'reset password 1');
    await s.app.get(AuditService).settled();
    const row = await s.pool.query<{
      action: string;
      actor_email: string;
      target_id: string;
      result: number;
    }>(`SELECT action, actor_email, target_id, result FROM audit_log WHERE request_id = 'admin-reset-1'`);
    expect(row.rows).toEqual([
      { action: 'users.update', actor_email: ADMIN.email, target_id: id, result: 200 },
    ]);
    expect(JSON.stringify(row.rows)).not.toContain('reset password 1');
  });

  it('an admin changing their own password needs it too', async () => {
    const me = (await admin.get('/api/v1/me')).json.user.id as string;
    const r = await admin.patch(`/api/v1/users/${me}`, { password: 'whatever password' });
    expect(r.json.error.code).toBe('current_password_required');
  });
});
