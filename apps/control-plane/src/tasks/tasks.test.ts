import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { inject } from 'vitest';
import { openConnections } from '@berth/db/testing';
import { pino } from 'pino';
import { loadConfig } from '../config.js';
import { startServer } from '../server.js';
import { ADMIN, Client, memberClient, startTestServer, type TestServer } from '../testing/server.js';

let s: TestServer;
let alice: Client;
let bob: Client;

beforeAll(async () => {
  // These tests are about task mechanics, so they opt into the FAKE runner like an operator would.
  s = await startTestServer({ BERTH_PROVIDERS: 'local,fake' });
  const admin = new Client(s.url);
  await admin.login(ADMIN.email, ADMIN.password);
  alice = await memberClient(s, admin, 'alice@example.com');
  bob = await memberClient(s, admin, 'bob@example.com');
});
afterAll(async () => {
  const name = s.db.name;
  await s.stop();
  expect(await openConnections(inject('pgAdminUrl'), name)).toBe(0);
});

/** The API is the only window here: re-read the task until it reaches one of `states`. */
async function untilState(c: Client, id: string, states: string[]) {
  for (let i = 0; i < 600; i++) {
    const r = await c.get(`/api/v1/tasks/${id}`);
    if (states.includes(r.json.task.state)) return r.json.task;
    await sleep(50);
  }
  throw new Error(`task ${id} never reached ${states.join('|')}`);
}

describe('tasks API (workers in-process, fake runner)', () => {
  it('POST with an Idempotency-Key returns the same task on retry, and refuses the key for another request', async () => {
    const body = { command: ['echo', 'hi'] };
    const a = await alice.post('/api/v1/tasks', body, { 'idempotency-key': 'req-1' });
    expect(a.status).toBe(201);
    const b = await alice.post('/api/v1/tasks', body, { 'idempotency-key': 'req-1' });
    expect(b.status).toBe(200);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    expect(b.json.task.id).toBe(a.json.task.id);
    const c = await alice.post(
      '/api/v1/tasks',
      { command: ['echo', 'other'] },
      { 'idempotency-key': 'req-1' },
    );
    expect(c.status).toBe(409);
    expect(c.json.error).toMatchObject({ code: 'idempotency_key_reused' });
    expect(c.json.error.hint).toBeTruthy();
    // Keys are per user: bob's req-1 is his own task.
    const d = await bob.post('/api/v1/tasks', body, { 'idempotency-key': 'req-1' });
    expect(d.status).toBe(201);
    expect(d.json.task.id).not.toBe(a.json.task.id);
  });

  it('runs a task to success with its timeline and its output readable from any offset', async () => {
    const r = await alice.post('/api/v1/tasks', { command: ['fake:lines', '50'] });
    expect(r.status).toBe(201);
    expect(r.json.task).toMatchObject({
      state: 'queued',
      command: ['fake:lines', '50'],
      timeoutSeconds: 3600,
    });
    const id = r.json.task.id as string;
    const done = await untilState(alice, id, ['succeeded', 'failed']);
    expect(done).toMatchObject({ state: 'succeeded', exitCode: 0, node: 'fake-node' });

    const tl = await alice.get(`/api/v1/tasks/${id}/timeline`);
    expect(tl.json.events.map((e: { to: string }) => e.to)).toEqual([
      'queued',
      'provisioning',
      'running',
      'succeeded',
    ]);
    expect(tl.json.events[3].workerId).toMatch(/\/run$/);

    const expected = Array.from({ length: 50 }, (_, i) => `line ${i + 1}\n`).join('');
    const all = await alice.get(`/api/v1/tasks/${id}/logs`);
    expect(all.json).toMatchObject({
      offset: 0,
      totalBytes: expected.length,
      nextOffset: expected.length,
      complete: true,
    });
    expect(all.json.data).toBe(expected);
    const page = await alice.get(`/api/v1/tasks/${id}/logs?offset=7&limit=10&encoding=base64`);
    expect(Buffer.from(page.json.data, 'base64').toString()).toBe(expected.slice(7, 17));
    expect(page.json).toMatchObject({ nextOffset: 17, complete: false });
  });

  it('cancel stops a running task; a second cancel changes nothing and says so', async () => {
    const r = await alice.post('/api/v1/tasks', { command: ['fake:hang'] });
    const id = r.json.task.id as string;
    await untilState(alice, id, ['running']);
    const c1 = await alice.post(`/api/v1/tasks/${id}/cancel`);
    expect(c1.status).toBe(200);
    expect(c1.json).toMatchObject({ changed: true, task: { cancelRequested: true } });
    const done = await untilState(alice, id, ['canceled', 'succeeded', 'failed']);
    expect(done.state).toBe('canceled');
    const c2 = await alice.post(`/api/v1/tasks/${id}/cancel`);
    expect(c2.json).toMatchObject({ changed: false, task: { state: 'canceled' } });
  });

  it('a failing command is failed; a timeout over the global maximum is refused with a hint', async () => {
    const r = await alice.post('/api/v1/tasks', { command: ['fake:fail'] });
    expect((await untilState(alice, r.json.task.id, ['failed', 'succeeded'])).state).toBe('failed');
    const long = await alice.post('/api/v1/tasks', { command: ['x'], timeoutSeconds: 10 * 24 * 3600 });
    expect(long.status).toBe(400);
    expect(long.json.error.code).toBe('timeout_too_long');
  });

  it("validates input, hides other users' tasks, paginates the list", async () => {
    expect((await alice.post('/api/v1/tasks', { command: [] })).status).toBe(400);
    expect((await alice.post('/api/v1/tasks', { command: ['x'], extra: 1 })).status).toBe(400);
    expect(
      (await alice.post('/api/v1/tasks', { command: ['x'] }, { 'idempotency-key': 'has space' })).status,
    ).toBe(400);
    const mine = await alice.post('/api/v1/tasks', { command: ['x'] });
    const other = await bob.get(`/api/v1/tasks/${mine.json.task.id}`);
    expect(other.status).toBe(404);
    expect(other.json.error.code).toBe('not_found');
    expect((await bob.post(`/api/v1/tasks/${mine.json.task.id}/cancel`)).status).toBe(404);
    expect((await bob.get(`/api/v1/tasks/not-a-uuid/logs`)).status).toBe(404);
    const p1 = await alice.get('/api/v1/tasks?limit=2');
    expect(p1.json.items).toHaveLength(2);
    expect(p1.json.nextCursor).toBeTruthy();
    const p2 = await alice.get(`/api/v1/tasks?limit=2&cursor=${p1.json.nextCursor}`);
    expect(p2.json.items[0].id).not.toBe(p1.json.items[0].id);
  });

  it('exposes the queue metrics on /metrics', async () => {
    const m = await alice.get('/metrics');
    expect(m.status).toBe(200);
    expect(m.text).toContain('berth_jobs_queue_depth{state="ready"}');
    expect(m.text).toMatch(/berth_jobs_duration_seconds_count\{kind="task.run",outcome="completed"\} [1-9]/);
    expect(m.text).toContain('berth_jobs_claim_latency_seconds');
  });

  it('two control planes on one database: every task runs once, whichever plane took the request', async () => {
    const second = await startServer(
      loadConfig({
        HOME: s.dataDir,
        BERTH_DATA_DIR: s.dataDir,
        DATABASE_URL: s.db.url,
        BERTH_PORT: '0',
        BERTH_PROVIDERS: 'local,fake',
        BERTH_LOG_LEVEL: 'silent',
      }),
      { logger: pino({ level: 'silent' }), announce: () => undefined },
    );
    try {
      const alice2 = new Client(second.url, alice.token);
      const ids: string[] = [];
      for (let i = 0; i < 16; i++) {
        const c = i % 2 === 0 ? alice : alice2;
        const r = await c.post('/api/v1/tasks', { command: ['fake:lines', '3'] });
        expect(r.status).toBe(201);
        ids.push(r.json.task.id as string);
      }
      for (const id of ids)
        expect((await untilState(alice, id, ['succeeded', 'failed'])).state).toBe('succeeded');
      const workers = new Set<string>();
      for (const id of ids) {
        const tl = await alice2.get(`/api/v1/tasks/${id}/timeline`);
        // One claim, one start, one end: no task was driven by both planes.
        expect(tl.json.events.map((e: { to: string }) => e.to)).toEqual([
          'queued',
          'provisioning',
          'running',
          'succeeded',
        ]);
        workers.add(tl.json.events[1].workerId as string);
        const log = await alice2.get(`/api/v1/tasks/${id}/logs`);
        expect(log.json.data).toBe('line 1\nline 2\nline 3\n');
      }
      expect(workers.size).toBeGreaterThanOrEqual(1);
    } finally {
      await second.close();
    }
  });
});

describe('a server without the fake provider', () => {
  let plain: TestServer;
  beforeAll(async () => {
    plain = await startTestServer(); // BERTH_PROVIDERS defaults to local
  });
  afterAll(async () => {
    await plain.stop();
  });

  it('refuses a task that names no environment with 400 environment_required and a hint, and creates nothing', async () => {
    const admin = new Client(plain.url);
    await admin.login(ADMIN.email, ADMIN.password);
    const r = await admin.post('/api/v1/tasks', { command: ['echo', 'hi'] }, { 'idempotency-key': 'k1' });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ code: 'environment_required' });
    expect(r.json.error.message).toContain('environmentId');
    expect(r.json.error.hint).toContain('berth run --env NAME -- CMD');
    expect(r.json.error.hint).toContain('--provider local');
    expect(r.json.error.hint).toContain('pick an environment');
    expect((await admin.get('/api/v1/tasks')).json.items).toEqual([]);
    // An environment that is not yours is still a 404, not a 400 about its absence.
    const foreign = await admin.post('/api/v1/tasks', {
      command: ['echo', 'hi'],
      environmentId: '00000000-0000-4000-8000-000000000000',
    });
    expect(foreign.status).toBe(404);
  });
});
