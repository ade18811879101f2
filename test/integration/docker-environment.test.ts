import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Docker from 'dockerode';
import { connectTerminal } from '@berth/terminal';
import { nodeSocketFactory } from '@berth/terminal/node';
import { containerName, ensureDocker, LABEL_ENV, LABEL_OWNER } from '@berth/providers';
import { ensureGatewayBundle } from '@berth/providers/testing';
import {
  ADMIN,
  Client,
  memberClient,
  startTestServer,
  type TestServer,
} from '../../apps/control-plane/src/testing/server.js';
import { LiveWaiter } from '../../apps/control-plane/src/testing/live.js';
import { WARM_POOL_OWNER, WarmPools } from '../../apps/control-plane/src/environments/warm-pools.js';

/** The docker provider through the API: a container, a direct terminal, not root, gone on destroy. */
const skip = process.env.BERTH_SKIP_DOCKER === '1';
let s: TestServer;
let admin: Client;
let live: LiveWaiter;
const made: string[] = [];

describe.skipIf(skip)('docker environments through the control plane', () => {
  beforeAll(async () => {
    const base = ensureDocker();
    ensureGatewayBundle();
    s = await startTestServer({
      BERTH_PROVIDERS: 'docker',
      BERTH_DOCKER_BASE_IMAGE: base,
      BERTH_ENV_DEFAULT_MEMORY_MB: '512',
    });
    admin = new Client(s.url);
    await admin.login(ADMIN.email, ADMIN.password);
    live = await LiveWaiter.connect(admin);
  });
  afterAll(async () => {
    // A failed test must not leave its container running on the shared engine.
    for (const id of made)
      await new Docker()
        .getContainer(containerName(id))
        .remove({ force: true })
        .catch(() => undefined);
    live?.close();
    await s?.stop();
  });

  it(
    'creates a container, opens a terminal as a non-root user, and leaves nothing after destroy',
    { timeout: 180_000 },
    async () => {
      const r = await admin.post('/api/v1/environments', {
        name: 'in-docker',
        berthYaml: 'setup:\n  - echo built-by-setup > /etc/berth-setup\n',
      });
      expect(r.status).toBe(201);
      const id = r.json.environment.id as string;
      made.push(id);
      const settle = () =>
        live.until(
          () => admin.get(`/api/v1/environments/${id}`),
          (x) => ['ready', 'stopped', 'destroyed', 'failed'].includes(x.json.environment.state as string),
        );
      const env = (await settle()).json.environment;
      expect(env.stateReason ?? '').toBe('');
      expect(env.state).toBe('ready');
      expect(env.gatewayUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const docker = new Docker();
      const info = await docker.getContainer(containerName(id)).inspect();
      expect(info.HostConfig.CapDrop).toEqual(['ALL']);
      expect(info.HostConfig.Memory).toBe(512 * 1024 * 1024);

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
          if (/uid=\d+[\s\S]*\nbuilt-by-setup/.test(out)) resolve();
        });
        term.write('id; cat /etc/berth-setup\n');
      });
      term.close();
      expect(out).toMatch(/uid=1000/);
      expect(out).not.toMatch(/uid=0\(/);

      await admin.del(`/api/v1/environments/${id}`);
      expect((await settle()).json.environment.state).toBe('destroyed');
      await expect(docker.getContainer(containerName(id)).inspect()).rejects.toThrow(/no such container/i);
    },
  );
});

/** BERTH_WARM_POOL through the API: a default-image create claims a running member at once. */
describe.skipIf(skip)('docker warm pool through the control plane', () => {
  let ws: TestServer;
  let owner: Client;
  let warm: WarmPools;
  const docker = new Docker();
  const poolMembers = async () =>
    (await docker.listContainers({ all: true, filters: { label: [`${LABEL_OWNER}=${WARM_POOL_OWNER}`] } }))
      .map((c) => c.Labels[LABEL_ENV] ?? '')
      .filter((id) => !made.includes(id));

  beforeAll(async () => {
    const base = ensureDocker();
    ensureGatewayBundle();
    ws = await startTestServer({
      BERTH_PROVIDERS: 'docker',
      BERTH_DOCKER_BASE_IMAGE: base,
      BERTH_ENV_DEFAULT_MEMORY_MB: '512',
      BERTH_WARM_POOL: 'docker:1',
    });
    const admin = new Client(ws.url);
    await admin.login(ADMIN.email, ADMIN.password);
    owner = await memberClient(ws, admin, 'warm-owner@example.com');
    warm = ws.app.get(WarmPools);
    await warm.filled('docker');
  }, 180_000);
  afterAll(async () => {
    for (const id of made)
      await docker
        .getContainer(containerName(id))
        .remove({ force: true })
        .catch(() => undefined);
    await ws?.stop();
  });

  it(
    'hands a pre-started environment to the user, which works, and refills the pool',
    { timeout: 180_000 },
    async () => {
      const [member] = await poolMembers();
      expect(member).toBeDefined();

      const r = await owner.post('/api/v1/environments', { name: 'from-the-pool' });
      expect(r.status).toBe(201);
      const env = r.json.environment;
      made.push(env.id as string);
      // Ready in the create response itself: nothing was provisioned for it.
      expect(env.id).toBe(member);
      expect(env.state).toBe('ready');
      expect(env.name).toBe('from-the-pool');
      expect(env.gatewayUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const events = await owner.get(`/api/v1/environments/${env.id}/events`);
      expect(events.json.items.map((e: { message: string }) => e.message).join('\n')).toMatch(
        /from the warm pool/,
      );
      // Another user does not see it.
      const admin = new Client(ws.url);
      await admin.login(ADMIN.email, ADMIN.password);
      expect((await admin.get(`/api/v1/environments/${env.id}`)).status).toBe(404);

      const t = await owner.post(`/api/v1/environments/${env.id}/terminals`, {});
      expect(t.status).toBe(201);
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
          if (/uid=\d+[\s\S]*pwd=\/workspace/.test(out)) resolve();
        });
        term.write('id; echo pwd=$(pwd)\n');
      });
      term.close();
      expect(out).toMatch(/uid=1000/);

      await warm.filled('docker');
      const refilled = await poolMembers();
      expect(refilled).toHaveLength(1);
      expect(refilled[0]).not.toBe(member);
      const next = await docker.getContainer(containerName(refilled[0]!)).inspect();
      expect(next.State.Running).toBe(true);

      // A request for more than the default image is provisioned as usual.
      const custom = await owner.post('/api/v1/environments', {
        name: 'not-pooled',
        resources: { memoryMb: 256 },
      });
      expect(custom.status, custom.text).toBe(201);
      made.push(custom.json.environment.id as string);
      expect(custom.json.environment.state).toBe('pending');
      expect(await poolMembers()).toEqual(refilled);

      const settle = (id: string) =>
        LiveWaiter.connect(owner).then(async (live) => {
          try {
            return await live.until(
              () => owner.get(`/api/v1/environments/${id}`),
              (x) => ['destroyed', 'failed'].includes(x.json.environment.state as string),
            );
          } finally {
            live.close();
          }
        });
      await owner.del(`/api/v1/environments/${env.id}`);
      await owner.del(`/api/v1/environments/${custom.json.environment.id}`);
      expect((await settle(env.id as string)).json.environment.state).toBe('destroyed');
      expect((await settle(custom.json.environment.id as string)).json.environment.state).toBe('destroyed');
      await expect(docker.getContainer(containerName(env.id as string)).inspect()).rejects.toThrow(
        /no such container/i,
      );
    },
  );

  it('destroys the unclaimed members when the server stops', { timeout: 120_000 }, async () => {
    expect(await poolMembers()).toHaveLength(1);
    await ws.stop();
    ws = undefined as unknown as TestServer;
    expect(await poolMembers()).toEqual([]);
  });
});
