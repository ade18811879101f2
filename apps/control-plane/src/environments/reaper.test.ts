import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeProvider } from '@berth/providers';
import { ADMIN, Client, memberClient, startTestServer, type TestServer } from '../testing/server.js';
import { LiveWaiter } from '../testing/live.js';
import { QuotasRepository } from '../quotas/quotas.repository.js';
import { EnvironmentsRepository } from './environments.repository.js';
import { PROVIDERS, type ProviderRegistry } from './providers.js';
import { QueueEnvironmentJobs } from './queue-environment-jobs.js';
import { EnvironmentReaper } from './reaper.js';

let s: TestServer;
let admin: Client;
let live: LiveWaiter;
let me: string;
/** One machine, like docker or local: it can only vouch for environments on its own node. */
class NodeFake extends FakeProvider {
  node() {
    return Promise.resolve('fake-node');
  }
}
const fake = new NodeFake();
let installation: string;
let now = new Date();
const clock = { now: () => now };
let attached = 0;

function reaper(opts: { idle?: number; lifetime?: number; hoursPerDay?: number } = {}) {
  const registry = s.app.get<ProviderRegistry>(PROVIDERS);
  const jobs = new QueueEnvironmentJobs(registry);
  return new EnvironmentReaper({
    pool: s.pool,
    envs: new EnvironmentsRepository(s.pool),
    providers: registry,
    clock,
    idleStopMinutes: opts.idle ?? 0,
    maxLifetimeHours: opts.lifetime ?? 0,
    quotas: new QuotasRepository(s.pool),
    envHoursPerDay: opts.hoursPerDay ?? 0,
    enqueue: (tx, kind, id) => jobs.enqueue(tx, kind, id),
    attachedClients: () => Promise.resolve(attached),
    logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
    installation,
  });
}

async function ready(as = admin, waiter = live): Promise<string> {
  const id = (await as.post('/api/v1/environments', {})).json.environment.id as string;
  await state(id, ['ready'], as, waiter);
  return id;
}

async function state(id: string, want: string[], as = admin, waiter = live) {
  const r = await waiter.until(
    () => as.get(`/api/v1/environments/${id}`),
    (x) => want.includes(x.json.environment.state as string),
  );
  return r.json.environment as { state: string; stateReason: string };
}

const eventsOf = async (as: Client, id: string) =>
  (await as.get(`/api/v1/environments/${id}/events`)).json.items as Array<{
    kind: string;
    message: string;
    data: unknown;
  }>;

beforeAll(async () => {
  s = await startTestServer({ BERTH_PROVIDERS: 'fake' }, { providers: { fake } });
  admin = new Client(s.url);
  await admin.login(ADMIN.email, ADMIN.password);
  live = await LiveWaiter.connect(admin);
  me = (await admin.get('/api/v1/me')).json.user.id as string;
  installation = (await new EnvironmentsRepository(s.pool).installationId())!;
});
afterAll(async () => {
  live.close();
  await s.stop();
});

describe('environment reaper (injected clock)', () => {
  it('stops an environment idle past the limit, but not one with a terminal attached', async () => {
    const id = await ready();
    now = new Date(Date.now() + 30 * 60_000);
    expect((await reaper({ idle: 60 }).sweep()).idleStopped).not.toContain(id);
    now = new Date(Date.now() + 61 * 60_000);
    attached = 1;
    expect((await reaper({ idle: 60 }).sweep()).idleStopped).not.toContain(id);
    attached = 0;
    // Being attached counted as activity at `now`: idle again only an hour after that.
    expect((await reaper({ idle: 60 }).sweep()).idleStopped).not.toContain(id);
    now = new Date(now.getTime() + 61 * 60_000);
    expect((await reaper({ idle: 60 }).sweep()).idleStopped).toContain(id);
    const env = await state(id, ['stopped']);
    expect(env.stateReason).toBe('stopped after 60 min without use; start it again when you need it');
    const ev = await admin.get(`/api/v1/environments/${id}/events`);
    expect(ev.json.items.map((e: { kind: string }) => e.kind)).toContain('auto-stop');
  });

  it('stops the ready environments of a user whose environment-hours for the UTC day reached their quota, and no one else’s', async () => {
    const over = await memberClient(s, admin, 'hours-over@example.com');
    const under = await memberClient(s, admin, 'hours-under@example.com');
    for (const [c, hours] of [
      [over, 2],
      [under, 10],
    ] as const) {
      const id = (await c.get('/api/v1/me')).json.user.id as string;
      expect((await admin.req('PUT', `/api/v1/users/${id}/quotas`, { envHoursPerDay: hours })).status).toBe(
        200,
      );
    }
    const overLive = await LiveWaiter.connect(over);
    const underLive = await LiveWaiter.connect(under);
    try {
      const started = Date.now();
      const a = await ready(over, overLive);
      const b = await ready(under, underLive);
      now = new Date();
      expect((await reaper().sweep()).quotaStopped).toEqual([]);

      // Three hours on. Should that cross 00:00 UTC, the new day has counted 2.5 h by then.
      now = new Date(started + 3 * 3_600_000);
      const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
      if (now.getTime() - midnight < 2 * 3_600_000) now = new Date(midnight + 2.5 * 3_600_000);
      expect((await reaper().sweep()).quotaStopped).toEqual([a]);

      const stopped = await state(a, ['stopped'], over, overLive);
      // The reason stays on the stopped environment, not only in its events.
      expect(stopped.stateReason).toMatch(/^stopped: quota envHoursPerDay 2 h reached today/);
      const stop = (await eventsOf(over, a)).find((e) => e.kind === 'quota-stop');
      expect(stop?.message).toMatch(
        /^stopped: quota envHoursPerDay 2 h reached today \(UTC, [\d.]+ h used\); start it again tomorrow or ask an admin to raise it$/,
      );
      expect(stop?.data).toMatchObject({ quota: 'envHoursPerDay', limit: 2 });
      expect((await eventsOf(over, a)).map((e) => e.kind)).toContain('stopped');

      expect((await under.get(`/api/v1/environments/${b}`)).json.environment.state).toBe('ready');
      expect((await eventsOf(under, b)).map((e) => e.kind)).not.toContain('quota-stop');
      // Nothing of the over-quota user is left running, so the next sweep has nothing to do.
      expect((await reaper().sweep()).quotaStopped).toEqual([]);

      // With an installation default of 2 h: a user without a quota of their own gets it; one
      // whose quota is higher keeps theirs.
      const plain = await memberClient(s, admin, 'hours-default@example.com');
      const plainLive = await LiveWaiter.connect(plain);
      try {
        const c = await ready(plain, plainLive);
        expect((await reaper({ hoursPerDay: 2 }).sweep()).quotaStopped).toEqual([c]);
        await state(c, ['stopped'], plain, plainLive);
        expect((await eventsOf(plain, c)).find((e) => e.kind === 'quota-stop')?.message).toMatch(
          /^stopped: quota envHoursPerDay 2 h reached today/,
        );
        expect((await under.get(`/api/v1/environments/${b}`)).json.environment.state).toBe('ready');
      } finally {
        plainLive.close();
      }
    } finally {
      overLive.close();
      underLive.close();
    }
  });

  it('destroys environments past the global lifetime', async () => {
    const id = await ready();
    now = new Date(Date.now() + 3 * 3_600_000);
    const r = await reaper({ lifetime: 2 }).sweep();
    expect(r.expired).toContain(id);
    await state(id, ['destroyed']);
    expect(fake.envs.has(id)).toBe(false);
  });

  it('notices an environment killed or removed outside Berth', async () => {
    now = new Date();
    const killed = await ready();
    const removed = await ready();
    fake.killFromOutside(killed);
    fake.envs.delete(removed);
    const r = await reaper().sweep();
    expect(r.gone).toEqual(expect.arrayContaining([killed, removed]));
    expect((await state(killed, ['failed'])).stateReason).toMatch(/failed outside Berth/);
    expect((await state(removed, ['failed'])).stateReason).toMatch(/gone/);
    // Start brings it back.
    await admin.post(`/api/v1/environments/${killed}/start`);
    await state(killed, ['ready']);
  });

  it('marks failed an environment whose lifecycle job died (a worker crashed on its last attempt)', async () => {
    now = new Date();
    const id = await ready();
    // What a worker that died holding the stop job on its last attempt leaves behind once its
    // lease is reaped: the environment says stopping, the job is dead.
    await s.pool.query(`UPDATE environments SET state = 'stopping' WHERE id = $1`, [id]);
    await s.pool.query(
      `INSERT INTO jobs (kind, payload, state, attempts, max_attempts, last_error)
       VALUES ('environment.stop', $1, 'dead', 5, 5, 'lease expired: worker w1 held it until then')`,
      [JSON.stringify({ environmentId: id })],
    );
    const r = await reaper().sweep();
    expect(r.deadJobs).toEqual([id]);
    const env = await state(id, ['failed']);
    expect(env.stateReason).toMatch(/stop could not finish .*lease expired: worker w1/);
    // Failed is not a dead end: start brings it back.
    await admin.post(`/api/v1/environments/${id}/start`);
    await state(id, ['ready']);
    expect((await reaper().sweep()).deadJobs).toEqual([]);
  });

  it('removes only provider resources labelled with this installation that have no environment', async () => {
    await fake.create({ id: 'orphan-of-ours', ownerId: me, installation });
    // Same owner id (a copy of our database behind another Berth on this host), other installation.
    await fake.create({ id: 'other-installation', ownerId: me, installation: 'someone-else' });
    await fake.create({ id: 'unlabelled', ownerId: me });
    const r = await reaper().sweep();
    expect(r.orphansDestroyed).toEqual(['orphan-of-ours']);
    expect(fake.envs.has('orphan-of-ours')).toBe(false);
    expect(fake.envs.has('other-installation')).toBe(true);
    expect(fake.envs.has('unlabelled')).toBe(true);
  });

  it('labels what it creates with the installation id', async () => {
    const id = await ready();
    expect(fake.envs.get(id)?.spec.installation).toBe(installation);
  });

  it('does not call gone an environment that runs on another node', async () => {
    now = new Date();
    const id = await ready();
    await s.pool.query(`UPDATE environments SET node = 'other-host' WHERE id = $1`, [id]);
    fake.envs.delete(id); // this worker's provider cannot see it: it is not on this machine
    expect((await reaper().sweep()).gone).not.toContain(id);
    expect((await admin.get(`/api/v1/environments/${id}`)).json.environment.state).toBe('ready');
  });
});
