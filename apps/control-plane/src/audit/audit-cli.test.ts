import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../../test/helpers/cli.js';
import { ADMIN, Client, memberClient, startTestServer, type TestServer } from '../testing/server.js';
import { AuditService } from './audit.service.js';

let s: TestServer;
let home: string;
let adminEnv: Record<string, string>;
let member: Client;

beforeAll(async () => {
  s = await startTestServer();
  home = await mkdtemp(join(tmpdir(), 'berth-audit-cli-'));
  const session = new Client(s.url);
  await session.login(ADMIN.email, ADMIN.password);
  const admin = new Client(
    s.url,
    (await session.post('/api/v1/tokens', { name: 'cli' })).json.token as string,
  );
  adminEnv = { HOME: home, BERTH_URL: s.url, BERTH_TOKEN: admin.token! };
  member = await memberClient(s, admin, 'cli-member@example.com');
  await member.post('/api/v1/tokens', { name: 'from-member' });
  await s.app.get(AuditService).settled();
});
afterAll(async () => {
  await s?.stop();
  if (home) await rm(home, { recursive: true, force: true });
});

describe('berth audit', () => {
  it('lists rows as a table and as JSON, with filters', async () => {
    const table = await runCli(['audit'], adminEnv);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^AT\s+WHO\s+IP\s+ACTION\s+TARGET\s+RESULT$/);
    expect(table.stdout).toContain('auth.login');
    const me = (await member.get('/api/v1/me')).json;
    const json = await runCli(
      [
        'audit',
        '--user',
        me.user.id as string,
        '--action',
        'tokens.create',
        '--since',
        '2000-01-01',
        '--json',
      ],
      adminEnv,
    );
    expect(json.code).toBe(0);
    const items = JSON.parse(json.stdout) as Array<{ action: string; userId: string }>;
    expect(items.length).toBe(2);
    expect(items.every((i) => i.action === 'tokens.create' && i.userId === me.user.id)).toBe(true);
  });

  it('exits non-zero with the server hint for a member, and on a bad date', async () => {
    const r = await runCli(['audit'], { HOME: home, BERTH_URL: s.url, BERTH_TOKEN: member.token! });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/admin/);
    const bad = await runCli(['audit', '--since', 'last tuesday'], adminEnv);
    expect(bad.code).toBe(2);
  });
});
