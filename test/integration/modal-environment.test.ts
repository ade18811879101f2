import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTerminal } from '@berth/terminal';
import { nodeSocketFactory } from '@berth/terminal/node';
import { createPool, type Pool } from '@berth/db';
import { ModalProvider, type ProviderStateStore } from '@berth/providers';
import {
  FAKE_TOKEN,
  fakeProcesses,
  fakeProvider,
  startFake,
} from '../../packages/providers/src/modal/testing.js';
import type { FakeModal } from '../../packages/providers/src/modal/fake/modal.js';
import {
  ADMIN,
  Client,
  startTestServer,
  type TestServer,
} from '../../apps/control-plane/src/testing/server.js';
import { LiveWaiter } from '../../apps/control-plane/src/testing/live.js';
import { createProviders } from '../../apps/control-plane/src/environments/providers.js';
import { PostgresProviderStateStore } from '../../apps/control-plane/src/environments/provider-state.js';
import { loadConfig } from '../../apps/control-plane/src/config.js';

/**
 * The control plane unchanged, environments on Modal: API → lifecycle job → ModalProvider →
 * the SDK → FakeModal (a named fake of Modal's gRPC API, real sandbox processes) → a gateway
 * behind the tunnel → a terminal.
 */
let dir: string;
let fake: FakeModal;
let s: TestServer;
let admin: Client;
let live: LiveWaiter;
let pool: Pool | undefined;
// The provider is made before the server (and its database) exists; the store reaches it later.
const pg = (): PostgresProviderStateStore => new PostgresProviderStateStore(pool!, 'modal');
const state: ProviderStateStore = {
  get: (id) => pg().get(id),
  put: (id, v) => pg().put(id, v),
  delete: (id) => pg().delete(id),
  list: () => pg().list(),
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-modal-api-'));
  fake = await startFake(dir);
  s = await startTestServer(
    {
      BERTH_PROVIDERS: 'modal',
      MODAL_TOKEN_ID: FAKE_TOKEN.tokenId,
      MODAL_TOKEN_SECRET: FAKE_TOKEN.tokenSecret,
      BERTH_MODAL_SERVER_URL: fake.url,
    },
    { providers: { modal: fakeProvider(fake, { state }) } },
  );
  pool = createPool(s.db.url, 2);
  admin = new Client(s.url);
  await admin.login(ADMIN.email, ADMIN.password);
  live = await LiveWaiter.connect(admin);
});
afterAll(async () => {
  live?.close();
  await pool?.end();
  await s?.stop();
  await fake?.close();
  expect(fakeProcesses(dir)).toEqual([]);
  await rm(dir, { recursive: true, force: true });
});

describe('modal provider through the control plane', () => {
  it('config builds the Modal provider only with a token, and never logs it', async () => {
    expect(() => loadConfig({ HOME: dir, BERTH_PROVIDERS: 'modal' })).toThrow(/MODAL_TOKEN_ID/);
    const config = loadConfig({
      HOME: dir,
      BERTH_DATA_DIR: dir,
      BERTH_PROVIDERS: 'local,modal',
      MODAL_TOKEN_ID: 'ak-x',
      MODAL_TOKEN_SECRET: 'as-secret-canary',
    });
    await expect(createProviders(config, {}, 'inst1')).rejects.toThrow(/Postgres/);
    const registry = await createProviders(config, {}, 'inst1', pool);
    expect(registry.names).toEqual(['local', 'modal']);
    expect(registry.get('modal')).toBeInstanceOf(ModalProvider);
    // The sandbox timeouts come from the operator's settings (Modal's 24 h cap, no idle timeout by default).
    const opts = (p: unknown) => (p as { opts: { timeoutMs?: number; idleTimeoutMs?: number } }).opts;
    expect(opts(registry.get('modal'))).toMatchObject({ timeoutMs: 24 * 3_600_000 });
    expect(opts(registry.get('modal')).idleTimeoutMs).toBeUndefined();
    const tuned = await createProviders(
      loadConfig({
        HOME: dir,
        BERTH_DATA_DIR: dir,
        BERTH_PROVIDERS: 'modal',
        MODAL_TOKEN_ID: 'ak-x',
        MODAL_TOKEN_SECRET: 'as-secret-canary',
        BERTH_MODAL_TIMEOUT_HOURS: '2',
        BERTH_MODAL_IDLE_TIMEOUT_MINUTES: '30',
      }),
      {},
      'inst1',
      pool,
    );
    expect(opts(tuned.get('modal'))).toMatchObject({ timeoutMs: 7_200_000, idleTimeoutMs: 1_800_000 });
    expect(() =>
      loadConfig({
        HOME: dir,
        BERTH_PROVIDERS: 'modal',
        MODAL_TOKEN_ID: 'a',
        MODAL_TOKEN_SECRET: 'b',
        BERTH_MODAL_TIMEOUT_HOURS: '48',
      }),
    ).toThrow(/BERTH_MODAL_TIMEOUT_HOURS|modalTimeoutHours|24/);
    expect(s.logs.join('\n')).not.toContain(FAKE_TOKEN.tokenSecret);
  });

  it('creates an environment, opens a terminal through the tunnel, stops, starts and destroys it', async () => {
    const r = await admin.post('/api/v1/environments', { name: 'on-modal' });
    expect(r.status).toBe(201);
    const id = r.json.environment.id as string;
    const settled = () =>
      live.until(
        () => admin.get(`/api/v1/environments/${id}`),
        (x) => ['ready', 'stopped', 'destroyed', 'failed'].includes(x.json.environment.state as string),
      );
    const ready = (await settled()).json.environment;
    expect(ready.state).toBe('ready');
    expect(ready.provider).toBe('modal');

    const t = await admin.post(`/api/v1/environments/${id}/terminals`, {});
    const term = connectTerminal({
      url: t.json.url,
      token: t.json.token,
      socketFactory: nodeSocketFactory,
      command: ['/bin/sh'],
    });
    let out = '';
    await term.ready();
    await new Promise<void>((resolve) => {
      term.onOutput((d) => {
        out += Buffer.from(d).toString();
        if (/\n42 uid=\d+\r?\n/.test(out)) resolve();
      });
      term.write('echo $((6*7)) uid=$(id -u)\n');
    });
    term.close();
    // The terminal's shell runs as the environment user, not as Modal's root.
    expect(/\n42 uid=(\d+)/.exec(out)?.[1]).not.toBe('0');

    await admin.post(`/api/v1/environments/${id}/stop`);
    expect((await settled()).json.environment.state).toBe('stopped');
    // What start needs is in Postgres, where every control plane of the installation finds it.
    const { rows } = await pool!.query<{ state: { desired: string; imageId: string } }>(
      `SELECT state FROM provider_state WHERE provider = 'modal' AND environment_id = $1`,
      [id],
    );
    expect(rows[0]?.state).toMatchObject({ desired: 'stopped', imageId: expect.stringMatching(/^im-/) });
    await admin.post(`/api/v1/environments/${id}/start`);
    expect((await settled()).json.environment.state).toBe('ready');
    await admin.del(`/api/v1/environments/${id}`);
    expect((await settled()).json.environment.state).toBe('destroyed');
    expect([...fake.sandboxes.values()].filter((x) => x.running)).toEqual([]);
    expect((await pool!.query('SELECT 1 FROM provider_state WHERE environment_id = $1', [id])).rowCount).toBe(
      0,
    );
  });
  it('a Modal outage during provisioning is retried by the job engine; the user sees the retry, then ready', async () => {
    // The SDK retries UNAVAILABLE three times itself; the fourth failure reaches the job.
    fake.failNext('SandboxListV2', status.UNAVAILABLE, 'upstream connect error', 4);
    const r = await admin.post('/api/v1/environments', { name: 'modal-outage' });
    const id = r.json.environment.id as string;
    const env = await live.until(
      () => admin.get(`/api/v1/environments/${id}`),
      (x) => ['ready', 'failed'].includes(x.json.environment.state as string),
    );
    expect(env.json.environment.state).toBe('ready');
    const ev = await admin.get(`/api/v1/environments/${id}/events`);
    const retry = ev.json.items.find((e: { kind: string }) => e.kind === 'retry');
    expect(retry.message).toMatch(/Modal: listing sandboxes failed: .*upstream connect error; retrying/);
    await admin.del(`/api/v1/environments/${id}`);
    await live.until(
      () => admin.get(`/api/v1/environments/${id}`),
      (x) => x.json.environment.state === 'destroyed',
    );
  });

  it('a Modal quota fails the environment at once, with the reason and a hint', async () => {
    fake.failNext('SandboxCreateV2', status.RESOURCE_EXHAUSTED, 'Sandbox quota reached');
    const r = await admin.post('/api/v1/environments', { name: 'modal-quota' });
    const id = r.json.environment.id as string;
    const env = await live.until(
      () => admin.get(`/api/v1/environments/${id}`),
      (x) => ['ready', 'failed'].includes(x.json.environment.state as string),
    );
    expect(env.json.environment.state).toBe('failed');
    expect(env.json.environment.stateReason).toMatch(/Sandbox quota reached/);
    const ev = await admin.get(`/api/v1/environments/${id}/events`);
    expect(ev.json.items.some((e: { kind: string }) => e.kind === 'retry')).toBe(false);
    const failed = ev.json.items.find((e: { kind: string }) => e.kind === 'failed');
    expect(failed.data.hint).toMatch(/Modal workspace limit/);
    // Neither half of the Modal token in any event, or in any line the server logged so far.
    for (const secret of [FAKE_TOKEN.tokenId, FAKE_TOKEN.tokenSecret]) {
      expect(JSON.stringify(ev.json)).not.toContain(secret);
      expect(s.logs.join('\n')).not.toContain(secret);
    }
    expect(s.logs.length).toBeGreaterThan(0);
    await admin.del(`/api/v1/environments/${id}`);
    await live.until(
      () => admin.get(`/api/v1/environments/${id}`),
      (x) => x.json.environment.state === 'destroyed',
    );
  });
});
