import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeProvider, ProviderError } from '@berth/providers';
import { ADMIN, Client, memberClient, startTestServer, type TestServer } from '../testing/server.js';
import { LiveWaiter } from '../testing/live.js';

let s: TestServer;
let admin: Client;
let live: LiveWaiter;
/** The named fake, plus one scripted fault: the first create of image `flaky/once` is a transient error. */
class FlakyFake extends FakeProvider {
  readonly failedOnce = new Set<string>();
  override async create(...args: Parameters<FakeProvider['create']>) {
    const [spec] = args;
    if (spec.image === 'flaky/once' && !this.failedOnce.has(spec.id)) {
      this.failedOnce.add(spec.id);
      throw Object.assign(new ProviderError('engine_busy', 'engine busy', 'it is retried'), {
        retryable: true,
      });
    }
    return super.create(...args);
  }
}
const fake = new FlakyFake();

beforeAll(async () => {
  s = await startTestServer({ BERTH_PROVIDERS: 'fake' }, { providers: { fake } });
  admin = new Client(s.url);
  await admin.login(ADMIN.email, ADMIN.password);
  live = await LiveWaiter.connect(admin);
});
afterAll(async () => {
  live.close();
  await s.stop();
});

async function settled(id: string, state: string) {
  const r = await live.until(
    () => admin.get(`/api/v1/environments/${id}`),
    (x) => ['ready', 'stopped', 'destroyed', 'failed'].includes(x.json.environment.state as string),
  );
  expect(r.json.environment.state).toBe(state);
  return r.json.environment;
}

describe('environments API (fake provider)', () => {
  it('create provisions through a job; events tell the story; the list shows it', async () => {
    const r = await admin.post('/api/v1/environments', {
      name: 'first',
      berthYaml: 'setup:\n  - echo one\n  - echo two\n',
    });
    expect(r.status).toBe(201);
    expect(r.json.environment).toMatchObject({ name: 'first', provider: 'fake', state: 'pending' });
    const id = r.json.environment.id as string;
    await settled(id, 'ready');
    const ev = await admin.get(`/api/v1/environments/${id}/events`);
    const kinds = ev.json.items.map((e: { kind: string }) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['created', 'provisioning', 'build', 'ready']));
    expect(
      ev.json.items
        .filter((e: { kind: string }) => e.kind === 'build')
        .map((e: { message: string }) => e.message),
    ).toEqual(['echo one', 'echo two']);
    const list = await admin.get('/api/v1/environments');
    expect(list.json.items.map((e: { id: string }) => e.id)).toContain(id);
    expect(fake.calls.filter((c) => c.id === id).map((c) => c.op)).toEqual(['create']);
  });

  it('stop, start and destroy go through their states; repeating one says changed: false', async () => {
    const id = (await admin.post('/api/v1/environments', {})).json.environment.id as string;
    await settled(id, 'ready');
    const stop = await admin.post(`/api/v1/environments/${id}/stop`);
    expect(stop.json).toMatchObject({ changed: true, environment: { state: 'stopping' } });
    await settled(id, 'stopped');
    expect((await admin.post(`/api/v1/environments/${id}/stop`)).json.changed).toBe(false);
    await admin.post(`/api/v1/environments/${id}/start`);
    await settled(id, 'ready');
    const del = await admin.del(`/api/v1/environments/${id}`);
    expect(del.json.environment.state).toBe('destroying');
    await settled(id, 'destroyed');
    expect(fake.envs.has(id)).toBe(false);
    expect((await admin.post(`/api/v1/environments/${id}/start`)).json.error).toMatchObject({
      code: 'invalid_state',
    });
    expect(
      (await admin.get('/api/v1/environments')).json.items.map((e: { id: string }) => e.id),
    ).not.toContain(id);
    expect(
      (await admin.get('/api/v1/environments?all=true')).json.items.map((e: { id: string }) => e.id),
    ).toContain(id);
  });

  it('a bad berth.yaml or limits over the maximum are a 400 with a hint, and nothing is created', async () => {
    const before = (await admin.get('/api/v1/environments?all=true')).json.items.length;
    const bad = await admin.post('/api/v1/environments', { berthYaml: 'setup: "not a list"\n' });
    expect(bad.status).toBe(400);
    expect(bad.json.error.hint).toBeTruthy();
    const big = await admin.post('/api/v1/environments', { resources: { cpu: 64 } });
    expect(big.status).toBe(400);
    expect(big.json.error.message).toMatch(/cpus/);
    const unknown = await admin.post('/api/v1/environments', { provider: 'kubernetes' });
    expect(unknown.json.error).toMatchObject({ code: 'unknown_provider' });
    expect((await admin.get('/api/v1/environments?all=true')).json.items.length).toBe(before);
  });

  it('a provider failure marks the environment failed with the reason and hint', async () => {
    const r = await admin.post('/api/v1/environments', { image: 'missing/nothing:1' });
    const env = await settled(r.json.environment.id as string, 'failed');
    expect(env.stateReason).toMatch(/image missing\/nothing:1 not found/);
    const ev = await admin.get(`/api/v1/environments/${env.id}/events`);
    const failed = ev.json.items.find((e: { kind: string }) => e.kind === 'failed');
    expect(failed.data.hint).toMatch(/base image/);
  });

  it('a transient failure is retried and then succeeds', async () => {
    const created = await admin.post('/api/v1/environments', { image: 'flaky/once' });
    const id = created.json.environment.id as string;
    await settled(id, 'ready');
    expect(fake.failedOnce.has(id)).toBe(true);
    const ev = await admin.get(`/api/v1/environments/${id}/events`);
    expect(ev.json.items.find((e: { kind: string }) => e.kind === 'retry').message).toMatch(
      /engine busy; retrying/,
    );
  });

  it('names are unique per owner; another member sees none of mine (404)', async () => {
    const r = await admin.post('/api/v1/environments', { name: 'dup' });
    expect((await admin.post('/api/v1/environments', { name: 'dup' })).status).toBe(409);
    const m = await memberClient(s, admin, 'env-member@example.com');
    const id = r.json.environment.id as string;
    expect((await m.get(`/api/v1/environments/${id}`)).status).toBe(404);
    expect((await m.get(`/api/v1/environments/${id}/events`)).status).toBe(404);
    expect((await m.post(`/api/v1/environments/${id}/stop`)).status).toBe(404);
    expect((await m.del(`/api/v1/environments/${id}`)).status).toBe(404);
    expect((await m.get('/api/v1/environments')).json.items).toEqual([]);
    // The same name is free for someone else.
    expect((await m.post('/api/v1/environments', { name: 'dup' })).status).toBe(201);
  });
});

describe('berth worker', () => {
  it('drives environment jobs for a server that runs no workers', async () => {
    const { runWorker } = await import('../worker/run-worker.js');
    const { pino } = await import('pino');
    const apiOnly = await startTestServer({ BERTH_PROVIDERS: 'fake', BERTH_WORKERS: 'false' });
    const worker = await runWorker(apiOnly.config, { logger: pino({ level: 'silent' }) });
    try {
      const c = new Client(apiOnly.url);
      await c.login(ADMIN.email, ADMIN.password);
      const w = await LiveWaiter.connect(c);
      const id = (await c.post('/api/v1/environments', {})).json.environment.id as string;
      const r = await w.until(
        () => c.get(`/api/v1/environments/${id}`),
        (x) => x.json.environment.state !== 'pending' && x.json.environment.state !== 'provisioning',
      );
      expect(r.json.environment.state).toBe('ready');
      w.close();
    } finally {
      await worker.stop();
      await apiOnly.stop();
    }
  });
});
