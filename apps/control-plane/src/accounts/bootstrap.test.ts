import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from '@berth/db/testing';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { startServer, type RunningServer } from '../server.js';
import { Client } from '../testing/server.js';

// Real control planes against one database, restarted in between like an operator would.
let db: TestDatabase | undefined;
let dataDir: string | undefined;
const running: RunningServer[] = [];
let now = new Date('2026-11-23T10:00:00Z');
const clock = { now: () => now };

afterEach(async () => {
  for (const s of running.splice(0)) await s.close();
  await db?.drop();
  db = undefined;
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  now = new Date('2026-11-23T10:00:00Z');
});

async function start(env: Record<string, string> = {}) {
  db ??= await createTestDatabase();
  dataDir ??= await mkdtemp(join(tmpdir(), 'berth-boot-'));
  const lines: string[] = [];
  const config = loadConfig({
    HOME: dataDir,
    BERTH_DATA_DIR: dataDir,
    DATABASE_URL: db.url,
    BERTH_PORT: '0',
    ...env,
  });
  const server = await startServer(config, {
    logger: pino({ level: 'silent' }),
    clock,
    announce: (l) => lines.push(l),
  });
  running.push(server);
  return { server, lines, client: new Client(server.url) };
}

async function stop(server: RunningServer) {
  running.splice(running.indexOf(server), 1);
  await server.close();
}

function tokenOf(server: RunningServer): string {
  if (server.bootstrap.kind !== 'token-issued') throw new Error(`got ${server.bootstrap.kind}`);
  return server.bootstrap.token;
}

describe('bootstrap token', { timeout: 60_000 }, () => {
  it('two concurrent redeems: exactly one admin is created, the other is refused', async () => {
    const { server, client } = await start();
    const token = tokenOf(server);
    const [a, b] = await Promise.all([
      client.post('/api/v1/auth/bootstrap', { token, email: 'a@example.com', password: 'password of a' }),
      client.post('/api/v1/auth/bootstrap', { token, email: 'b@example.com', password: 'password of b' }),
    ]);
    expect([a.status, b.status].sort()).toEqual([201, 409]);
    const loser = a.status === 409 ? a : b;
    expect(loser.json.error.code).toBe('admin_exists');
    expect(loser.json.error.hint).toContain('sign in');
    const admins = await server.pool.query(`SELECT email FROM users WHERE role = 'admin'`);
    expect(admins.rows).toHaveLength(1);

    // Later attempts cannot overwrite the winner's password.
    const winner = a.status === 201 ? 'a' : 'b';
    const again = await client.post('/api/v1/auth/bootstrap', {
      token,
      email: `${winner}@example.com`,
      password: 'attacker password',
    });
    expect(again.status).toBe(409);
    await new Client(server.url).login(`${winner}@example.com`, `password of ${winner}`);
  });

  it('an admin created from BERTH_ADMIN_EMAIL makes the earlier token useless', async () => {
    const first = await start();
    const token = tokenOf(first.server);
    await stop(first.server);

    const env = { BERTH_ADMIN_EMAIL: 'ops@example.com', BERTH_ADMIN_PASSWORD: 'ops password 1' };
    const second = await start(env);
    expect(second.lines.join('\n')).toContain('Admin ops@example.com created');
    const r = await second.client.post('/api/v1/auth/bootstrap', {
      token,
      email: 'ops@example.com',
      password: 'taken over',
    });
    expect(r.status).toBe(409);
    expect(r.json.error).toMatchObject({ code: 'admin_exists' });
    await new Client(second.server.url).login('ops@example.com', 'ops password 1');
    const rec = await second.server.pool.query<{ used: string | null }>(
      `SELECT value->>'usedAt' AS used FROM metadata WHERE key = 'bootstrap'`,
    );
    expect(rec.rows[0]?.used).toBeTruthy();
  });

  it('expires after a day; a later start says how to get an admin without printing a token', async () => {
    const first = await start();
    const token = tokenOf(first.server);
    expect(first.lines.join('\n')).toContain('create the admin account at');

    now = new Date(now.getTime() + 25 * 60 * 60 * 1000);
    const r = await first.client.post('/api/v1/auth/bootstrap', {
      token,
      email: 'late@example.com',
      password: 'a long password',
    });
    expect(r.status).toBe(410);
    expect(r.json.error.code).toBe('bootstrap_expired');
    expect(r.json.error.hint).toContain('BERTH_ADMIN_EMAIL');
    await stop(first.server);

    const second = await start();
    const out = second.lines.join('\n');
    expect(second.server.bootstrap.kind).toBe('token-expired');
    expect(out).toContain('no longer valid');
    expect(out).toContain('BERTH_ADMIN_EMAIL and BERTH_ADMIN_PASSWORD');
    expect(out).not.toContain('token=');
  });

  it('a start within the day reminds that the link was already printed, without printing it', async () => {
    const first = await start();
    tokenOf(first.server);
    await stop(first.server);
    const second = await start();
    expect(second.server.bootstrap.kind).toBe('token-already-issued');
    expect(second.lines.join('\n')).toContain('printed on the first start');
    expect(second.lines.join('\n')).not.toContain('token=');
  });
});
