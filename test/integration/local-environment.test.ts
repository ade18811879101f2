import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTerminal } from '@berth/terminal';
import { nodeSocketFactory } from '@berth/terminal/node';
import {
  ADMIN,
  Client,
  startTestServer,
  type TestServer,
} from '../../apps/control-plane/src/testing/server.js';
import { LiveWaiter } from '../../apps/control-plane/src/testing/live.js';
import { runCli } from '../helpers/cli.js';

/**
 * The embedded default end to end: `local` provider (gateway as a child process), created
 * through the API, a terminal through a ticket, stop/start keeping files, destroy.
 */
let s: TestServer;
let admin: Client;
let live: LiveWaiter;

beforeAll(async () => {
  s = await startTestServer({ BERTH_PROVIDERS: 'local' });
  admin = new Client(s.url);
  await admin.login(ADMIN.email, ADMIN.password);
  admin.token = (await admin.post('/api/v1/tokens', { name: 'local-e2e' })).json.token;
  live = await LiveWaiter.connect(admin);
});
afterAll(async () => {
  live.close();
  await s.stop();
});

const settledStates = ['ready', 'stopped', 'destroyed', 'failed'];
async function settle(id: string) {
  const r = await live.until(
    () => admin.get(`/api/v1/environments/${id}`),
    (x) => settledStates.includes(x.json.environment.state as string),
  );
  return r.json.environment as {
    id: string;
    state: string;
    gatewayUrl: string | null;
    stateReason: string | null;
    node: string;
  };
}

async function shell(id: string, input: string, until: RegExp): Promise<string> {
  const t = await admin.post(`/api/v1/environments/${id}/terminals`, {});
  expect(t.status).toBe(201);
  const client = connectTerminal({
    url: t.json.url,
    token: t.json.token,
    socketFactory: nodeSocketFactory,
    command: ['/bin/sh'],
  });
  let out = '';
  try {
    await client.ready();
    return await new Promise<string>((resolve) => {
      client.onOutput((d) => {
        out += Buffer.from(d).toString();
        if (until.test(out)) resolve(out);
      });
      client.write(input);
    });
  } finally {
    client.close();
  }
}

describe('local provider through the API', () => {
  it('creates, opens a terminal, keeps files across stop/start, and destroys', async () => {
    const r = await admin.post('/api/v1/environments', { name: 'local-one' });
    expect(r.status).toBe(201);
    const env = await settle(r.json.environment.id as string);
    expect(env.state).toBe('ready');
    expect(env.gatewayUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await (await fetch(`${env.gatewayUrl}/healthz`)).json();
    expect(health).toMatchObject({ ok: true, environmentId: env.id });

    await shell(env.id, 'echo kept > note.txt && echo $((6*7))\n', /42/);
    await admin.post(`/api/v1/environments/${env.id}/stop`);
    expect((await settle(env.id)).state).toBe('stopped');
    await expect(fetch(`${env.gatewayUrl}/healthz`)).rejects.toThrow();
    await admin.post(`/api/v1/environments/${env.id}/start`);
    expect((await settle(env.id)).state).toBe('ready');
    expect(await shell(env.id, 'cat note.txt\n', /kept/)).toMatch(/kept/);

    await admin.del(`/api/v1/environments/${env.id}`);
    expect((await settle(env.id)).state).toBe('destroyed');
  });

  it('berth env create | ls | show | stop | rm, with progress, against the same server', async () => {
    const home = `${s.dataDir}/cli-home`;
    const env = { HOME: home, BERTH_URL: s.url, BERTH_TOKEN: admin.token! };
    const c = await runCli(['env', 'create', '--name', 'cli-env', '--json'], env);
    expect(c.stderr).toBe('');
    expect(c.code).toBe(0);
    const created = JSON.parse(c.stdout);
    expect(created).toMatchObject({ name: 'cli-env', state: 'ready', provider: 'local' });
    const ls = await runCli(['env', 'ls'], env);
    expect(ls.stdout).toMatch(/cli-env\s+local\s+ready/);
    const show = await runCli(['env', 'show', 'cli-env'], env);
    expect(show.stdout).toMatch(/events:[\s\S]*ready/);
    const stop = await runCli(['env', 'stop', created.id], env);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toContain('cli-env stopped');
    const rm1 = await runCli(['env', 'rm', created.id], env);
    expect(rm1.code).toBe(0);
    expect(rm1.stdout).toContain('cli-env destroyed');
    await rm(home, { recursive: true, force: true });
  });

  it('berth env create shows progress and fails clearly on a bad berth.yaml', async () => {
    const home = `${s.dataDir}/cli-home2`;
    const env = { HOME: home, BERTH_URL: s.url, BERTH_TOKEN: admin.token! };
    const { writeFile, mkdir } = await import('node:fs/promises');
    await mkdir(home, { recursive: true });
    await writeFile(`${home}/berth.yaml`, 'setup: 42\n');
    const r = await runCli(['env', 'create', '--file', `${home}/berth.yaml`], env);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/error: .*setup/);
    expect(r.stderr).toMatch(/hint: /);
  });
});
