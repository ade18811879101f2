import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeProvider } from '@berth/providers';
import { ADMIN, Client, startTestServer, type TestServer } from '../testing/server.js';
import { LiveWaiter } from '../testing/live.js';

interface Gate {
  /** Resolves with the environment id once the provider call is in progress. */
  entered: Promise<string>;
  release(): void;
}

/** A fake whose next create or start waits, once it has done its work, until the test releases it. */
class GatedFake extends FakeProvider {
  private readonly next = new Map<
    'create' | 'start',
    { enter: (id: string) => void; opened: Promise<void> }
  >();

  hold(op: 'create' | 'start'): Gate {
    let release!: () => void;
    let enter!: (id: string) => void;
    const opened = new Promise<void>((r) => (release = r));
    const entered = new Promise<string>((r) => (enter = r));
    this.next.set(op, { enter, opened });
    return { entered, release };
  }

  private async pass(op: 'create' | 'start', id: string): Promise<void> {
    const g = this.next.get(op);
    if (!g) return;
    this.next.delete(op);
    g.enter(id);
    await g.opened;
  }

  override async create(...args: Parameters<FakeProvider['create']>) {
    const result = await super.create(...args);
    await this.pass('create', args[0].id);
    return result;
  }

  override async start(id: string) {
    const info = await super.start(id);
    await this.pass('start', id);
    return info;
  }
}

const fake = new GatedFake();
let s: TestServer;
let admin: Client;
let live: LiveWaiter;

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

const envOf = (id: string) => admin.get(`/api/v1/environments/${id}`);
const eventsOf = async (id: string) =>
  (await admin.get(`/api/v1/environments/${id}/events?limit=100`)).json.items as {
    kind: string;
    message: string;
  }[];
/** The compensation re-states the settled state with its story as the reason (a live notice). */
const untilReason = (id: string, re: RegExp) =>
  live.until(
    () => envOf(id),
    (r) => re.test((r.json.environment.stateReason as string | null) ?? ''),
  );
const untilState = (id: string, state: string) =>
  live.until(
    () => envOf(id),
    (r) => r.json.environment.state === state,
  );

/** Creates an environment whose create call is held until `release()`. */
async function provisioning() {
  const gate = fake.hold('create');
  const id = (await admin.post('/api/v1/environments', {})).json.environment.id as string;
  expect(await gate.entered).toBe(id);
  return { id, gate };
}

describe('a stop or destroy while provisioning or starting', { timeout: 60_000 }, () => {
  it('stop during provisioning: when the create finishes, the environment is stopped too', async () => {
    const { id, gate } = await provisioning();
    expect((await admin.post(`/api/v1/environments/${id}/stop`)).json.changed).toBe(true);
    await untilState(id, 'stopped'); // the stop job ran while the create was still busy
    gate.release();
    await untilReason(id, /provisioning finished after a stop was requested; stopped it/);
    expect((await envOf(id)).json.environment.state).toBe('stopped');
    expect(fake.envs.get(id)?.state).toBe('stopped');
    expect((await eventsOf(id)).map((e) => e.kind)).toEqual(
      expect.arrayContaining(['provisioning', 'stop', 'stopped']),
    );
  });

  it('destroy during provisioning: the late container is destroyed', async () => {
    const { id, gate } = await provisioning();
    await admin.del(`/api/v1/environments/${id}`);
    await untilState(id, 'destroyed');
    gate.release();
    await untilReason(id, /provisioning finished after a destroy was requested; destroyed it/);
    expect(fake.envs.has(id)).toBe(false);
  });

  it('stop while starting: the started container is stopped again', async () => {
    const id = (await admin.post('/api/v1/environments', {})).json.environment.id as string;
    await untilState(id, 'ready');
    await admin.post(`/api/v1/environments/${id}/stop`);
    await untilState(id, 'stopped');
    const gate = fake.hold('start');
    await admin.post(`/api/v1/environments/${id}/start`);
    expect(await gate.entered).toBe(id);
    await admin.post(`/api/v1/environments/${id}/stop`);
    await untilState(id, 'stopped');
    gate.release();
    await untilReason(id, /start finished after a stop was requested; stopped it/);
    expect(fake.envs.get(id)?.state).toBe('stopped');
  });
});

describe('a lifecycle job that cannot even load its environment', { timeout: 60_000 }, () => {
  it('marks the environment failed with the reason instead of leaving it pending', async () => {
    const { runWorker } = await import('../worker/run-worker.js');
    const { pino } = await import('pino');
    const apiOnly = await startTestServer({ BERTH_PROVIDERS: 'fake', BERTH_WORKERS: 'false' });
    // This worker offers only `local`, so an environment on `fake` is beyond it.
    const worker = await runWorker(
      { ...apiOnly.config, providers: ['local'] },
      { logger: pino({ level: 'silent' }) },
    );
    const c = new Client(apiOnly.url);
    await c.login(ADMIN.email, ADMIN.password);
    const w = await LiveWaiter.connect(c);
    try {
      const id = (await c.post('/api/v1/environments', {})).json.environment.id as string;
      const r = await w.until(
        () => c.get(`/api/v1/environments/${id}`),
        (x) => x.json.environment.state === 'failed',
      );
      // Failed by the job itself, at once (a permanent error), not later by the reaper's dead-job sweep.
      expect(r.json.environment.stateReason).toMatch(
        /^provisioning failed: provider fake is not enabled on this worker/,
      );
    } finally {
      w.close();
      await worker.stop();
      await apiOnly.stop();
    }
  });
});
