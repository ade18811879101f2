import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Docker from 'dockerode';
import { connectTerminal } from '@berth/terminal';
import { nodeSocketFactory } from '@berth/terminal/node';
import { containerName, ensureDocker } from '@berth/providers';
import { ensureGatewayBundle } from '@berth/providers/testing';
import {
  ADMIN,
  Client,
  startTestServer,
  type TestServer,
} from '../../apps/control-plane/src/testing/server.js';
import { LiveWaiter } from '../../apps/control-plane/src/testing/live.js';

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
