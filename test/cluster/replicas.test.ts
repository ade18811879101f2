import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type Pool } from '@berth/db';
import { createTestDatabase, type TestDatabase } from '@berth/db/testing';
import type { PoolClient } from 'pg';
import { newPrivateJwk } from '../../apps/control-plane/src/identity/keys.js';
import { BERTH_BIN, waitForExit, waitForLine } from '../helpers/cli.js';

/**
 * Three `berth server` processes on one Postgres, as an operator runs them behind a load
 * balancer: no sticky sessions, no coordination but the database. The first (A) serves the API
 * and live events but runs no workers (BERTH_WORKERS=false, as beside separate `berth worker`s):
 * whatever its clients see of a task was done by another process and reached A through NOTIFY.
 */
interface Replica {
  child: ChildProcess;
  url: string;
  home: string;
}

const ADMIN = { email: 'ops@example.com', password: 'replica password' };
const TERMINAL = ['succeeded', 'failed', 'canceled', 'timed_out'];
let db: TestDatabase;
let pool: Pool;
let listener: PoolClient;
/** Live notices seen so far; `changed(v)` waits for one after version v. */
let version = 0;
let wake: () => void = () => undefined;
async function changed(since: number): Promise<void> {
  while (version <= since) await new Promise<void>((r) => (wake = r));
}
let replicas: Replica[] = [];
let token = '';
let envId = '';

async function api(r: Replica, method: string, path: string, body?: unknown) {
  const res = await fetch(r.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  db = await createTestDatabase();
  pool = createPool(db.url, 4);
  listener = await pool.connect();
  listener.on('notification', () => {
    version++;
    wake();
  });
  await listener.query('LISTEN berth_live');
  const shared = {
    PATH: process.env.PATH ?? '',
    DATABASE_URL: db.url,
    BERTH_SIGNING_KEYS: JSON.stringify([await newPrivateJwk()]),
    BERTH_WEBHOOK_KEY: randomBytes(32).toString('base64'),
    BERTH_PUBLIC_URL: 'http://berth.test',
    BERTH_TASK_LEASE_SECONDS: '3',
    BERTH_LOG_LEVEL: 'warn',
    // fake: the live-events test is about relaying changes, so its task runs on the FAKE runner.
    BERTH_PROVIDERS: 'local,fake',
  };
  // All three at once: migrations and the first admin must not race.
  // One host, so one data dir: the local provider's environments live there for every replica.
  const home = await mkdtemp(join(tmpdir(), 'berth-replica-'));
  replicas = await Promise.all(
    [0, 1, 2].map(async (i) => {
      const child = spawn(BERTH_BIN, ['server', '--port', '0'], {
        env: {
          ...shared,
          HOME: home,
          BERTH_ADMIN_EMAIL: ADMIN.email,
          BERTH_ADMIN_PASSWORD: ADMIN.password,
          BERTH_WORKERS: i === 0 ? 'false' : 'true',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const [, url] = await waitForLine(child, /listening on (http:\/\/\S+)/);
      return { child, url: url!, home };
    }),
  );
  const login = await fetch(`${replicas[1]!.url}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(ADMIN),
  });
  const cookie = login.headers.getSetCookie()[0]!.split(';')[0]!;
  const t = await fetch(`${replicas[2]!.url}/api/v1/tokens`, {
    method: 'POST',
    headers: { cookie, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'replicas' }),
  });
  token = ((await t.json()) as { token: string }).token;
}, 120_000);

afterAll(async () => {
  const alive = replicas.filter((r) => r.child.exitCode === null && r.child.signalCode === null);
  // The environment's gateway is a process of its own: destroy it through the API, as a user would.
  if (envId && alive[0]) {
    let v = version;
    await api(alive[0], 'DELETE', `/api/v1/environments/${envId}`);
    while (
      (await api(alive[0], 'GET', `/api/v1/environments/${envId}`)).json.environment.state !== 'destroyed'
    ) {
      await changed(v);
      v = version;
    }
  }
  for (const r of alive) r.child.kill('SIGTERM');
  await Promise.all(replicas.map((r) => waitForExit(r.child)));
  await rm(replicas[0]!.home, { recursive: true, force: true });
  listener.release();
  await pool.end();
  await db.drop();
});

describe('three control planes on one database', () => {
  it('migrated once and made one admin', async () => {
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM users WHERE role = 'admin'`,
    );
    expect(rows[0]!.n).toBe(1);
    for (const r of replicas) expect((await fetch(`${r.url}/readyz`)).status).toBe(200);
  });

  it('a client connected to replica A sees changes made through replica B and run by another process', async () => {
    const [a, b] = replicas as [Replica, Replica];
    const socket: Socket = io(`${a.url}/events`, {
      transports: ['websocket'],
      reconnection: false,
      auth: { token },
    });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('ready', () => resolve());
        socket.once('connect_error', reject);
      });
      const seen: Array<{ id: string; state?: string }> = [];
      let notify: () => void = () => undefined;
      socket.on('change', (c: { id: string; state?: string }) => {
        seen.push(c);
        notify();
      });
      const created = await api(b, 'POST', '/api/v1/tasks', { command: ['fake:lines', '3'] });
      expect(created.status).toBe(201);
      const id = created.json.task.id as string;
      while (!seen.some((c) => c.id === id && c.state === 'succeeded'))
        await new Promise<void>((r) => (notify = r));
      expect(seen.filter((c) => c.id === id).map((c) => c.state)).toContain('running');
      // Run by a worker of B or C (worker ids are host:pid:…), never by A, which has none.
      const { rows } = await pool.query<{ worker_id: string | null }>(
        `SELECT worker_id FROM tasks WHERE id = $1`,
        [id],
      );
      const pid = Number(rows[0]?.worker_id?.split(':')[1]);
      expect(replicas.slice(1).map((r) => r.child.pid)).toContain(pid);
      expect(pid).not.toBe(a.child.pid);
    } finally {
      socket.close();
    }
  });

  it('tasks launched through each replica finish once; a replica killed while it holds leases has its work finished by the others', async () => {
    // A real environment (local provider): its gateway, not the control plane, runs the
    // processes and keeps their output, so it outlives any one replica.
    const env = await api(replicas[0]!, 'POST', '/api/v1/environments', { name: 'shared' });
    expect(env.status).toBe(201);
    envId = env.json.environment.id as string;
    let v = version;
    let state = env.json.environment.state as string;
    while (!['ready', 'failed'].includes(state)) {
      await changed(v);
      v = version;
      state = (await api(replicas[1]!, 'GET', `/api/v1/environments/${envId}`)).json.environment
        .state as string;
    }
    expect(state).toBe('ready');
    const ids: string[] = [];
    for (const r of replicas)
      for (let i = 0; i < 3; i++) {
        const t = await api(r, 'POST', '/api/v1/tasks', {
          environmentId: envId,
          command: ['sh', '-c', 'echo start; sleep 4; echo end'],
        });
        expect(t.status).toBe(201);
        ids.push(t.json.task.id as string);
      }
    // Wait until every task runs somewhere (no sleep: the table says so).
    const running = async () =>
      (
        await pool.query<{ worker_id: string | null; state: string }>(
          `SELECT worker_id, state FROM tasks WHERE id = ANY($1::uuid[])`,
          [ids],
        )
      ).rows;
    let seen = version;
    let rows = await running();
    while (!rows.every((r) => r.state === 'running') && !rows.some((r) => TERMINAL.includes(r.state))) {
      await changed(seen);
      seen = version;
      rows = await running();
    }
    // The replica holding the most running tasks dies without any chance to clean up.
    const pids = rows.filter((r) => r.state === 'running').map((r) => Number(r.worker_id!.split(':')[1]));
    const victim = replicas.reduce((best, r) =>
      pids.filter((p) => p === r.child.pid).length > pids.filter((p) => p === best.child.pid).length
        ? r
        : best,
    );
    const held = pids.filter((p) => p === victim.child.pid).length;
    expect(held).toBeGreaterThan(0);
    victim.child.kill('SIGKILL');
    expect((await waitForExit(victim.child)).signal).toBe('SIGKILL');

    const survivor = replicas.find((r) => r !== victim)!;
    for (const id of ids) {
      let seen = version;
      let t = await api(survivor, 'GET', `/api/v1/tasks/${id}`);
      while (!TERMINAL.includes(t.json.task.state as string)) {
        await changed(seen);
        seen = version;
        t = await api(survivor, 'GET', `/api/v1/tasks/${id}`);
      }
      expect(t.json.task.state).toBe('succeeded');
      const logs = await api(survivor, 'GET', `/api/v1/tasks/${id}/logs`);
      expect(logs.json.data).toBe('start\nend\n');
    }
    const { rows: ends } = await pool.query<{ task_id: string; n: number }>(
      `SELECT task_id, count(*)::int AS n FROM task_events
       WHERE task_id = ANY($1::uuid[]) AND to_state = ANY($2::text[]) GROUP BY task_id`,
      [ids, TERMINAL],
    );
    expect(ends).toHaveLength(ids.length);
    expect(ends.every((e) => e.n === 1)).toBe(true);
    const taken = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM job_lease_expirations WHERE worker_id LIKE $1`,
      [`%:${victim.child.pid}:%`],
    );
    expect(taken.rows[0]!.n).toBeGreaterThanOrEqual(held);
  });
});
