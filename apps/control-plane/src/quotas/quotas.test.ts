import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FakeProvider } from '@berth/providers';
import { ADMIN, Client, memberClient, startTestServer, type TestServer } from '../testing/server.js';

// vi.waitFor gives up after 1 s unless told otherwise: too short for work that goes through the job
// queue (a worker, the provider, the Postgres the whole run shares) on a loaded CI machine. These
// waits allow 20 s; a state that never comes still fails them.
const SETTLE = { timeout: 20_000 };

let s: TestServer;
let admin: Client;
let member: Client;
let memberId: string;

beforeAll(async () => {
  s = await startTestServer({ BERTH_PROVIDERS: 'fake' }, { providers: { fake: new FakeProvider() } });
  admin = new Client(s.url);
  await admin.login(ADMIN.email, ADMIN.password);
  member = await memberClient(s, admin, 'quota@example.com');
  memberId = (await member.get('/api/v1/me')).json.user.id as string;
});
afterAll(() => s.stop());

const state = async (c: Client, id: string) =>
  (await c.get(`/api/v1/environments/${id}`)).json.environment.state;

describe('quotas', () => {
  it('an admin sets a member’s quotas; refusals name the limit and its value; null returns to the default', async () => {
    const before = await member.get('/api/v1/me/quotas');
    expect(before.json.quotas).toMatchObject({ maxEnvironments: 10, maxCpus: 4 });
    expect(before.json.usage).toEqual({ environments: 0, tasks: 0, envHoursToday: 0 });

    const put = await admin.req('PUT', `/api/v1/users/${memberId}/quotas`, {
      maxEnvironments: 1,
      maxCpus: 1,
      maxMemoryMb: 512,
    });
    expect(put.status).toBe(200);
    expect(put.json.quotas).toMatchObject({ maxEnvironments: 1, maxCpus: 1, maxMemoryMb: 512 });

    const big = await member.post('/api/v1/environments', { name: 'big', resources: { cpu: 2 } });
    expect(big.status).toBe(403);
    expect(big.json.error).toMatchObject({
      code: 'quota_exceeded',
      details: { quota: 'maxCpus', limit: 1, used: 2 },
    });
    expect(big.json.error.message).toContain('at most 1 CPUs per environment');
    const fat = await member.post('/api/v1/environments', { name: 'fat', resources: { memoryMb: 1024 } });
    expect(fat.json.error.details).toMatchObject({ quota: 'maxMemoryMb', limit: 512 });

    const one = await member.post('/api/v1/environments', {
      name: 'one',
      resources: { cpu: 1, memoryMb: 512 },
    });
    expect(one.status).toBe(201);
    const two = await member.post('/api/v1/environments', {
      name: 'two',
      resources: { cpu: 1, memoryMb: 512 },
    });
    expect(two.status).toBe(403);
    expect(two.json.error.message).toBe('quota maxEnvironments: at most 1 environments at once; you have 1');
    expect(two.json.error.hint).toContain('destroy one');
    // Refused creates left nothing behind.
    expect(
      (await member.get('/api/v1/environments')).json.items.map((e: { name: string }) => e.name),
    ).toEqual(['one']);

    await member.del(`/api/v1/environments/${one.json.environment.id}`);
    await vi.waitFor(
      async () => expect(await state(member, one.json.environment.id as string)).toBe('destroyed'),
      SETTLE,
    );
    const again = await member.post('/api/v1/environments', {
      name: 'two',
      resources: { cpu: 1, memoryMb: 256 },
    });
    expect(again.status).toBe(201);

    const reset = await admin.req('PUT', `/api/v1/users/${memberId}/quotas`, { maxEnvironments: null });
    expect(reset.json.quotas.maxEnvironments).toBe(10);
    expect(reset.json.overrides).toMatchObject({ maxEnvironments: null, maxCpus: 1 });
  });

  it('environment-hours per day: time spent running is recorded, and create and start are refused past the quota', async () => {
    const env = await admin.post('/api/v1/environments', { name: 'hours' });
    const id = env.json.environment.id as string;
    await vi.waitFor(async () => expect(await state(admin, id)).toBe('ready'), SETTLE);
    await admin.post(`/api/v1/environments/${id}/stop`);
    await vi.waitFor(async () => expect(await state(admin, id)).toBe('stopped'), SETTLE);
    const { rows } = await s.pool.query<{ open: boolean }>(
      `SELECT ended_at IS NULL AS open FROM environment_usage WHERE environment_id = $1`,
      [id],
    );
    expect(rows).toEqual([{ open: false }]);

    const adminId = (await admin.get('/api/v1/me')).json.user.id as string;
    await admin.req('PUT', `/api/v1/users/${adminId}/quotas`, { envHoursPerDay: 2 });
    // Two hours already used earlier today (clamped to today if it is not yet 02:00 UTC).
    await s.pool.query(
      `INSERT INTO environment_usage (environment_id, owner_id, started_at, ended_at)
       VALUES ($1, $2, greatest(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', now() - interval '3 hours'),
               greatest(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', now() - interval '3 hours') + interval '2 hours')`,
      [id, adminId],
    );
    const start = await admin.post(`/api/v1/environments/${id}/start`);
    expect(start.status).toBe(403);
    expect(start.json.error.details).toMatchObject({ quota: 'envHoursPerDay', limit: 2 });
    expect(start.json.error.message).toMatch(
      /at most 2 environment-hours per day \(UTC\); you have used 2\.\d\d today/,
    );
    expect(await state(admin, id)).toBe('stopped');
    expect((await admin.post('/api/v1/environments', { name: 'more' })).json.error.details.quota).toBe(
      'envHoursPerDay',
    );
    expect((await admin.get('/api/v1/me/quotas')).json.usage.envHoursToday).toBeGreaterThanOrEqual(2);
  });

  it('a per-user maxTasks quota limits tasks queued or running at once', async () => {
    await admin.req('PUT', `/api/v1/users/${memberId}/quotas`, { maxTasks: 1 });
    const first = await member.post('/api/v1/tasks', { command: ['fake:hang'] });
    expect(first.status).toBe(201);
    const second = await member.post('/api/v1/tasks', { command: ['fake:hang'] });
    expect(second.status).toBe(429);
    expect(second.json.error).toMatchObject({
      code: 'too_many_tasks',
      details: { quota: 'maxTasks', limit: 1, used: 1 },
    });
    expect(second.json.error.message).toContain('quota maxTasks');
    expect((await member.get('/api/v1/me/quotas')).json.usage.tasks).toBe(1);
    await member.post(`/api/v1/tasks/${first.json.task.id}/cancel`);
  });

  it('only an admin sets quotas; a member reads only their own', async () => {
    const self = await member.req('PUT', `/api/v1/users/${memberId}/quotas`, { maxEnvironments: 100 });
    expect(self.status).toBe(403);
    const adminId = (await admin.get('/api/v1/me')).json.user.id as string;
    expect((await member.get(`/api/v1/users/${adminId}/quotas`)).status).toBe(404);
    expect((await member.get(`/api/v1/users/${memberId}/quotas`)).status).toBe(200);
    const bad = await admin.req('PUT', `/api/v1/users/${memberId}/quotas`, { maxEnvironments: -1 });
    expect(bad.status).toBe(400);
    const nobody = await admin.req('PUT', `/api/v1/users/00000000-0000-4000-8000-000000000000/quotas`, {
      maxTasks: 1,
    });
    expect(nobody.status).toBe(404);
  });
});
