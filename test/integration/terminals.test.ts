import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { startGateway, type Gateway } from '@berth/gateway';
import { connectTerminal, type TerminalClient } from '@berth/terminal';
import { nodeSocketFactory } from '@berth/terminal/node';
import * as pty from 'node-pty';
import {
  ADMIN,
  Client,
  memberClient,
  startTestServer,
  type TestServer,
} from '../../apps/control-plane/src/testing/server.js';
import { collect, until } from '../helpers/terminal-output.js';
import { BERTH_BIN, runCli } from '../helpers/cli.js';

/**
 * The ticket path end to end: the control plane signs, a real gateway (in-process, real PTYs)
 * verifies offline against the control plane's JWKS, and keystrokes never touch the API.
 */
let s: TestServer;
let admin: Client;
let gateway: Gateway;
let envId: string;
let dir: string;
const clients: TerminalClient[] = [];

async function insertReadyEnvironment(
  ownerId: string,
  gatewayUrl: string | null,
  state = 'ready',
): Promise<string> {
  const c = new pg.Client({ connectionString: s.db.url });
  await c.connect();
  try {
    const { rows } = await c.query<{ id: string }>(
      `INSERT INTO environments (owner_id, name, provider, spec, spec_hash, state, gateway_url)
       VALUES ($1, 'term-' || substr(md5(random()::text), 1, 6), 'local', '{}', 'x', $2, $3) RETURNING id`,
      [ownerId, state, gatewayUrl],
    );
    return rows[0]!.id;
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  // The environment rows below are not ones a provider made: keep the reaper from reconciling
  // them while this file runs. Its first sweep (30 s after start) finds no local process for them
  // and marks them failed, and every later `berth attach` then ends at once with "environment is
  // failed": on a loaded machine the attach tests start past that mark (how all four failed once).
  s = await startTestServer({ BERTH_ENV_REAP_SECONDS: '86400' });
  admin = new Client(s.url);
  await admin.login(ADMIN.email, ADMIN.password);
  const me = (await admin.get('/api/v1/me')).json.user.id as string;
  dir = await mkdtemp(join(tmpdir(), 'berth-gw-'));
  // The environment id is the gateway's audience, so create the row first, then the gateway.
  envId = await insertReadyEnvironment(me, null, 'provisioning');
  const jwks = (await (await fetch(`${s.url}/.well-known/jwks.json`)).json()) as {
    keys: Array<Record<string, unknown>>;
  };
  gateway = await startGateway(
    { environmentId: envId, host: '127.0.0.1', port: 0, issuer: s.url, jwks, dataDir: dir, workdir: dir },
    { logToStdout: false, shell: ['/bin/sh'] },
  );
  const c = new pg.Client({ connectionString: s.db.url });
  await c.connect();
  await c.query(`UPDATE environments SET state = 'ready', gateway_url = $2 WHERE id = $1`, [
    envId,
    `http://127.0.0.1:${gateway.port}`,
  ]);
  await c.end();
});

afterAll(async () => {
  for (const c of clients) c.close();
  await gateway?.close();
  await s.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('terminal tickets', () => {
  it('a ticket opens a session on the gateway directly; typed input comes back', async () => {
    const t = await admin.post(`/api/v1/environments/${envId}/terminals`, {});
    expect(t.status).toBe(201);
    expect(t.json).toMatchObject({ role: 'driver', sessionId: null });
    expect(t.json.url).toBe(`ws://127.0.0.1:${gateway.port}/terminal`);
    const client = connectTerminal({
      url: t.json.url,
      token: t.json.token,
      socketFactory: nodeSocketFactory,
      cols: 100,
      rows: 30,
    });
    clients.push(client);
    const out = collect(client);
    const info = await client.ready();
    client.write('echo $((6*7))\n');
    await until(client, out, /^42\r?$/m);

    // The session list, fetched by the control plane from the gateway, shows the driver.
    const list = await admin.get(`/api/v1/environments/${envId}/terminals`);
    expect(list.status).toBe(200);
    expect(JSON.stringify(list.json.sessions)).toContain(info.sessionId);

    // An observer ticket for that session sees output but cannot type.
    const o = await admin.post(`/api/v1/environments/${envId}/terminals/${info.sessionId}/tickets`, {
      role: 'observer',
    });
    expect(o.json).toMatchObject({ role: 'observer', sessionId: info.sessionId });
    const observer = connectTerminal({
      url: o.json.url,
      token: o.json.token,
      sessionId: info.sessionId,
      socketFactory: nodeSocketFactory,
    });
    clients.push(observer);
    const seen = collect(observer);
    await observer.ready();
    observer.write('echo observer-was-here\n');
    client.write('echo driver-$((1+1))\n');
    await until(observer, seen, /driver-2/);
    expect(seen.text()).not.toContain('observer-was-here');
    expect(out.text()).not.toContain('observer-was-here');
  });

  it('another user gets 404 for the environment, its sessions and tickets', async () => {
    const m = await memberClient(s, admin, 'term-member@example.com');
    expect((await m.post(`/api/v1/environments/${envId}/terminals`, {})).status).toBe(404);
    expect((await m.get(`/api/v1/environments/${envId}/terminals`)).status).toBe(404);
    expect(
      (await m.post(`/api/v1/environments/${envId}/terminals/abc/tickets`, { role: 'observer' })).status,
    ).toBe(404);
  });

  it('an environment that is not ready says so with a hint', async () => {
    const me = (await admin.get('/api/v1/me')).json.user.id as string;
    const stopped = await insertReadyEnvironment(me, null, 'stopped');
    const r = await admin.post(`/api/v1/environments/${stopped}/terminals`, {});
    expect(r.status).toBe(409);
    expect(r.json.error.hint).toMatch(/berth env start/);
  });

  it('a ticket for one environment is refused by another environment’s gateway', async () => {
    const me = (await admin.get('/api/v1/me')).json.user.id as string;
    const otherId = await insertReadyEnvironment(me, `http://127.0.0.1:${gateway.port}`);
    const t = await admin.post(`/api/v1/environments/${otherId}/terminals`, {});
    const client = connectTerminal({
      url: t.json.url,
      token: t.json.token,
      socketFactory: nodeSocketFactory,
      reconnect: false,
    });
    clients.push(client);
    const out = collect(client);
    const closed = new Promise<{ code: number; reason: string } | undefined>((resolve) =>
      client.onStatus((st, close) => st === 'closed' && resolve(close)),
    );
    const close = await closed;
    expect(close?.reason).toMatch(/aud/);
    expect(out.text()).toBe('');
  });
});

describe('operator switch', () => {
  it('BERTH_INTERACTIVE_ATTACH=false refuses tickets with a hint', async () => {
    const off = await startTestServer({ BERTH_INTERACTIVE_ATTACH: 'false' });
    try {
      const a = new Client(off.url);
      await a.login(ADMIN.email, ADMIN.password);
      const r = await a.post(`/api/v1/environments/00000000-0000-4000-8000-000000000000/terminals`, {});
      expect(r.status).toBe(403);
      expect(r.json.error.code).toBe('attach_disabled');
    } finally {
      await off.stop();
    }
  });
});

describe('berth attach', () => {
  /** Runs the CLI in a real PTY, as a person at a terminal would. */
  async function attach(args: string[]) {
    const token = (await admin.post('/api/v1/tokens', { name: 'attach' })).json.token as string;
    const p = pty.spawn(BERTH_BIN, ['attach', envId, ...args], {
      cols: 90,
      rows: 20,
      env: { PATH: process.env.PATH ?? '', HOME: dir, BERTH_URL: s.url, BERTH_TOKEN: token, TERM: 'xterm' },
    });
    let screen = '';
    // A CLI that never shows what a test waits for fails by the test's timeout: show its screen.
    onTestFailed(() => console.error(`berth attach ${args.join(' ')}: the CLI's screen was:\n${screen}`));
    const waiters: Array<() => void> = [];
    p.onData((d) => {
      screen += d;
      for (const w of waiters.splice(0)) w();
    });
    let gone = false;
    const exited = new Promise<number>((resolve) =>
      p.onExit((e) => {
        gone = true;
        resolve(e.exitCode);
        for (const w of waiters.splice(0)) w();
      }),
    );
    // A CLI that exits before showing `re` (an error, say) fails the wait at once, with its screen,
    // instead of leaving it to the test's timeout.
    const see = (re: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (re.test(screen)) resolve();
          else if (gone)
            reject(new Error(`berth attach exited before showing ${re}; its screen:\n${screen}`));
          else waiters.push(check);
        };
        check();
      });
    return { p, see, exited, screen: () => screen };
  }

  it('types into a shell and exits with the shell’s exit code', async () => {
    const a = await attach([]);
    a.p.write('echo $((6*7))\r');
    await a.see(/\n42\r*\n/);
    a.p.write('exit 3\r');
    expect(await a.exited).toBe(3);
  });

  it('typing then ~. in one chunk: what was typed is sent before detaching', async () => {
    const a = await attach([]);
    await a.see(/[$#] $/);
    a.p.write('echo typed-$((3+4))\r~.');
    expect(await a.exited).toBe(0);
    const m = a.screen().match(/--session (\S+)\]/);
    const b = await attach(['--session', m![1]!]);
    await b.see(/typed-7/);
    b.p.write('exit 0\r');
    expect(await b.exited).toBe(0);
  });

  it('input from a pipe: its end ends the session with the shell’s exit code', async () => {
    const token = (await admin.post('/api/v1/tokens', { name: 'attach-pipe' })).json.token as string;
    const env = { HOME: dir, BERTH_URL: s.url, BERTH_TOKEN: token };
    const ok = await runCli(['attach', envId], env, 'echo piped-$((1+1))\n');
    expect(ok.stdout, `stderr: ${ok.stderr}`).toContain('piped-2');
    expect(ok.code).toBe(0);
    const failed = await runCli(['attach', envId], env, 'false\n');
    expect(failed.code).toBe(1);
  });

  it('~. detaches and leaves the session running', async () => {
    const a = await attach([]);
    a.p.write('echo attached-$((2+3))\r');
    await a.see(/attached-5/);
    a.p.write('\r~.');
    expect(await a.exited).toBe(0);
    const m = a.screen().match(/--session (\S+)\]/);
    expect(m).not.toBeNull();
    const list = await admin.get(`/api/v1/environments/${envId}/terminals`);
    expect(JSON.stringify(list.json.sessions)).toContain(m![1]!);
    // Back in, the screen still has what was typed before.
    const b = await attach(['--session', m![1]!]);
    await b.see(/attached-5/);
    b.p.write('exit 0\r');
    expect(await b.exited).toBe(0);
  });
});
