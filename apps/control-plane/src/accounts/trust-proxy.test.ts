import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN, Client, startTestServer, type TestServer } from '../testing/server.js';
import { AuditService } from '../audit/audit.service.js';

let s: TestServer | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

/** Signs in with a forged X-Forwarded-For and returns the address the audit log recorded. */
async function recordedIp(env: Record<string, string>): Promise<string | null> {
  s = await startTestServer(env);
  await new Client(s.url).req('POST', '/api/v1/auth/login', ADMIN, {
    'x-forwarded-for': '203.0.113.9',
    'x-request-id': 'trust-proxy-login',
  });
  await s.app.get(AuditService).settled();
  const r = await s.pool.query<{ ip: string | null }>(
    `SELECT ip FROM audit_log WHERE request_id = 'trust-proxy-login'`,
  );
  return r.rows[0]?.ip ?? null;
}

describe('BERTH_TRUST_PROXY', () => {
  it('false: a client cannot choose the address the audit log records', async () => {
    expect(await recordedIp({ BERTH_TRUST_PROXY: 'false' })).toMatch(/127\.0\.0\.1|::1/);
  });

  it('the default (loopback) believes a proxy on this machine', async () => {
    expect(await recordedIp({})).toBe('203.0.113.9');
  });

  it('a proxy address that is not this client: its header is ignored', async () => {
    expect(await recordedIp({ BERTH_TRUST_PROXY: '10.0.0.1' })).toMatch(/127\.0\.0\.1|::1/);
  });
});
