import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { connect as connectTcp, createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { startGateway, type Gateway } from '@berth/gateway';
import {
  ADMIN,
  Client,
  memberClient,
  startTestServer,
  type TestServer,
} from '../../apps/control-plane/src/testing/server.js';
import { BERTH_BIN, runCli, waitForLine } from '../helpers/cli.js';

/**
 * Port previews end to end with an in-process gateway: the control plane decides and signs,
 * the gateway trades the ticket for a cookie and proxies to a real app on 127.0.0.1.
 */
const BIG = randomBytes(10 * 1024 * 1024);
const BIG_SHA = createHash('sha256').update(BIG).digest('hex');

let s: TestServer;
let admin: Client;
let member: Client;
let gateway: Gateway;
let envId: string;
let dir: string;
let app: { port: number; server: Server; wss: WebSocketServer; seen: IncomingHttpHeaders[] };

async function sql<T extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: s.db.url });
  await c.connect();
  try {
    return (await c.query<T>(text, params)).rows;
  } finally {
    await c.end();
  }
}

async function startApp() {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG.length });
      return void res.end(BIG);
    }
    res.writeHead(201, { 'content-type': 'text/plain', 'x-from-app': 'hello' });
    res.end(`app says hi to ${req.url}`);
  });
  const wss = new WebSocketServer({ server, path: '/echo' });
  wss.on('connection', (ws) => ws.on('message', (d, bin) => ws.send(d, { binary: bin })));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, server, wss, seen };
}

/** What a browser does with an `open` URL: follow the 303, keep the cookie. */
async function browse(url: string): Promise<{ cookie: string; location: string }> {
  const r = await fetch(url, { redirect: 'manual' });
  expect(r.status).toBe(303);
  const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]!;
  expect(cookie).toMatch(/^berth_port_/);
  return { cookie, location: new URL(r.headers.get('location')!, url).toString() };
}

beforeAll(async () => {
  // The environment row below is not one a provider made: keep the reaper from reconciling it
  // (it would mark it failed, the local provider not knowing it) while this file runs.
  s = await startTestServer({ BERTH_ENV_REAP_SECONDS: '86400' });
  admin = new Client(s.url);
  await admin.login(ADMIN.email, ADMIN.password);
  member = await memberClient(s, admin, 'ports-member@example.com');
  const me = (await admin.get('/api/v1/me')).json.user.id as string;
  dir = await mkdtemp(join(tmpdir(), 'berth-ports-'));
  app = await startApp();
  const spec = { devcontainer: JSON.stringify({ image: 'x', forwardPorts: [4999, '5000'] }) };
  [{ id: envId }] = (await sql<{ id: string }>(
    `INSERT INTO environments (owner_id, name, provider, spec, spec_hash, state)
     VALUES ($1, 'ports-env', 'local', $2, 'x', 'provisioning') RETURNING id`,
    [me, JSON.stringify(spec)],
  )) as [{ id: string }];
  const jwks = (await (await fetch(`${s.url}/.well-known/jwks.json`)).json()) as {
    keys: Array<Record<string, unknown>>;
  };
  gateway = await startGateway(
    { environmentId: envId, host: '127.0.0.1', port: 0, issuer: s.url, jwks, dataDir: dir, workdir: dir },
    { logToStdout: false, shell: ['/bin/sh'] },
  );
  await sql(`UPDATE environments SET state = 'ready', gateway_url = $2 WHERE id = $1`, [
    envId,
    `http://127.0.0.1:${gateway.port}`,
  ]);
});

afterAll(async () => {
  await gateway?.close();
  for (const c of app?.wss.clients ?? []) c.terminate();
  app?.wss.close();
  app?.server.closeAllConnections();
  await new Promise((r) => app?.server.close(r));
  await s?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('ports API', () => {
  it('lists listening and declared ports with their sharing and preview links', async () => {
    const r = await admin.get(`/api/v1/environments/${envId}/ports`);
    expect(r.status).toBe(200);
    expect(r.json.gateway).toBe('ok');
    const byPort = new Map((r.json.ports as Array<{ port: number }>).map((p) => [p.port, p]));
    expect(byPort.get(app.port)).toMatchObject({
      listening: true,
      declared: false,
      sharing: 'owner',
      addresses: ['127.0.0.1'],
      previewUrl: `${s.url}/p/${envId}/${app.port}`,
    });
    expect(byPort.get(4999)).toMatchObject({ listening: false, declared: true });
    expect(byPort.get(5000)).toMatchObject({ declared: true });
    expect(byPort.has(gateway.port)).toBe(false);
  });

  it('opens a port: status, headers, body, a 10 MB download and a WebSocket echo through the gateway', async () => {
    const o = await admin.post(`/api/v1/environments/${envId}/ports/${app.port}/open`, {});
    expect(o.status).toBe(200);
    expect(o.json.url).toMatch(
      new RegExp(`^http://127\\.0\\.0\\.1:${gateway.port}/ports/${app.port}/\\?berth_ticket=`),
    );
    const { cookie, location } = await browse(o.json.url as string);
    expect(location).toBe(`http://127.0.0.1:${gateway.port}/ports/${app.port}/`);

    const page = await fetch(`${location}hello?x=1`, { headers: { cookie: `${cookie}; ${admin.cookie}` } });
    expect(page.status).toBe(201);
    expect(page.headers.get('x-from-app')).toBe('hello');
    expect(await page.text()).toBe('app says hi to /hello?x=1');
    // The control plane's session cookie never reaches the app.
    expect(app.seen.at(-1)?.cookie).toBeUndefined();

    const big = await fetch(`${location}big`, { headers: { cookie } });
    expect(big.status).toBe(200);
    const body = Buffer.from(await big.arrayBuffer());
    expect(body.length).toBe(BIG.length);
    expect(createHash('sha256').update(body).digest('hex')).toBe(BIG_SHA);

    const ws = new WebSocket(`ws://127.0.0.1:${gateway.port}/ports/${app.port}/echo`, {
      headers: { cookie },
    });
    await once(ws, 'open');
    ws.send(Buffer.from('binary echo'));
    const [msg] = (await once(ws, 'message')) as [Buffer];
    expect(msg.toString()).toBe('binary echo');
    ws.close();
    await once(ws, 'close');
  });

  it('without a ticket or cookie the gateway answers 401 and the app sees nothing', async () => {
    const before = app.seen.length;
    const r = await fetch(`http://127.0.0.1:${gateway.port}/ports/${app.port}/hello`);
    expect(r.status).toBe(401);
    expect(await r.text()).not.toContain('app says hi');
    expect(app.seen.length).toBe(before);
  });

  it('a closed port: 502 with a page that says nothing listens there', async () => {
    const o = await admin.post(`/api/v1/environments/${envId}/ports/4999/open`, {});
    const { cookie, location } = await browse(o.json.url as string);
    const r = await fetch(location, { headers: { cookie } });
    expect(r.status).toBe(502);
    expect(await r.text()).toContain('Nothing is listening on port 4999');
  });

  it('validates ports and answers 409 for an environment that is not running', async () => {
    expect((await admin.post(`/api/v1/environments/${envId}/ports/0/open`, {})).status).toBe(400);
    expect((await admin.post(`/api/v1/environments/${envId}/ports/70000/open`, {})).status).toBe(400);
    expect(
      (await admin.req('PUT', `/api/v1/environments/${envId}/ports/80/sharing`, { sharing: 'everyone' }))
        .status,
    ).toBe(400);
    const me = (await admin.get('/api/v1/me')).json.user.id as string;
    const [stopped] = await sql<{ id: string }>(
      `INSERT INTO environments (owner_id, name, provider, spec, spec_hash, state)
       VALUES ($1, 'ports-stopped', 'local', '{}', 'x', 'stopped') RETURNING id`,
      [me],
    );
    const r = await admin.post(`/api/v1/environments/${stopped!.id}/ports/3000/open`, {});
    expect(r.status).toBe(409);
    expect(r.json.error.hint).toMatch(/berth env start/);
    expect((await admin.get(`/api/v1/environments/${stopped!.id}/ports`)).json.gateway).toBe('not_ready');
  });
});

describe('sharing', () => {
  const link = () => `${s.url}/p/${envId}/${app.port}`;
  const visit = (who?: Client) =>
    fetch(link(), {
      redirect: 'manual',
      headers: { accept: 'text/html', ...(who?.token ? { authorization: `Bearer ${who.token}` } : {}) },
    });

  it('owner only by default: another user gets 404 everywhere, a stranger 401', async () => {
    expect((await member.get(`/api/v1/environments/${envId}/ports`)).status).toBe(404);
    expect((await member.post(`/api/v1/environments/${envId}/ports/${app.port}/open`, {})).status).toBe(404);
    expect((await member.post(`/api/v1/environments/${envId}/ports/${app.port}/forward`, {})).status).toBe(
      404,
    );
    expect(
      (
        await member.req('PUT', `/api/v1/environments/${envId}/ports/${app.port}/sharing`, {
          sharing: 'public',
        })
      ).status,
    ).toBe(404);
    const m = await visit(member);
    expect(m.status).toBe(404);
    const anon = await visit();
    expect(anon.status).toBe(401);
    expect(await anon.text()).toContain('Sign in');
    // Unknown environments look the same as private ones.
    const none = await fetch(`${s.url}/p/00000000-0000-4000-8000-000000000000/80`, {
      redirect: 'manual',
      headers: { authorization: `Bearer ${member.token}` },
    });
    expect(none.status).toBe(404);
    // The owner's own link redirects to the gateway with a ticket.
    const own = await fetch(link(), { redirect: 'manual', headers: { cookie: admin.cookie! } });
    expect(own.status).toBe(302);
    const { cookie } = await browse(own.headers.get('location')!);
    expect(
      (await fetch(`http://127.0.0.1:${gateway.port}/ports/${app.port}/`, { headers: { cookie } })).status,
    ).toBe(201);
  });

  it('authenticated: any signed-in user opens it; strangers still cannot', async () => {
    const r = await admin.req('PUT', `/api/v1/environments/${envId}/ports/${app.port}/sharing`, {
      sharing: 'authenticated',
    });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ sharing: 'authenticated', previous: 'owner' });
    const m = await visit(member);
    expect(m.status).toBe(302);
    const { cookie } = await browse(m.headers.get('location')!);
    const page = await fetch(`http://127.0.0.1:${gateway.port}/ports/${app.port}/shared`, {
      headers: { cookie },
    });
    expect(await page.text()).toBe('app says hi to /shared');
    expect((await visit()).status).toBe(401);
    // Sharing the preview does not let anyone else forward raw TCP or manage the port.
    expect((await member.post(`/api/v1/environments/${envId}/ports/${app.port}/forward`, {})).status).toBe(
      404,
    );
  });

  it('public: anyone with the link, shown as public in the list; every change is audited', async () => {
    const r = await admin.req('PUT', `/api/v1/environments/${envId}/ports/${app.port}/sharing`, {
      sharing: 'public',
    });
    expect(r.json).toMatchObject({ sharing: 'public', previous: 'authenticated' });
    const list = await admin.get(`/api/v1/environments/${envId}/ports`);
    expect(
      (list.json.ports as Array<{ port: number; sharing: string }>).find((p) => p.port === app.port)?.sharing,
    ).toBe('public');
    const anon = await visit();
    expect(anon.status).toBe(302);
    const { cookie } = await browse(anon.headers.get('location')!);
    expect(
      (await fetch(`http://127.0.0.1:${gateway.port}/ports/${app.port}/`, { headers: { cookie } })).status,
    ).toBe(201);

    // Back to owner only: new visits by others are refused at once, and so is the browser that
    // opened it while it was public (the gateway was told to drop its cookies).
    const back = await admin.req('PUT', `/api/v1/environments/${envId}/ports/${app.port}/sharing`, {
      sharing: 'owner',
    });
    expect(back.json).toMatchObject({ sharing: 'owner', previous: 'public', openBrowsersRevoked: true });
    expect(
      (await fetch(`http://127.0.0.1:${gateway.port}/ports/${app.port}/`, { headers: { cookie } })).status,
    ).toBe(401);
    expect((await visit()).status).toBe(401);
    expect((await visit(member)).status).toBe(404);

    const changes = await sql<{ details: Record<string, unknown>; user_id: string }>(
      `SELECT details, user_id FROM audit_log WHERE action = 'ports.sharing.change' ORDER BY id`,
    );
    expect(changes.map((c) => [c.details.from, c.details.to])).toEqual([
      ['owner', 'authenticated'],
      ['authenticated', 'public'],
      ['public', 'owner'],
    ]);
    const memberId = (await member.get('/api/v1/me')).json.user.id as string;
    const opens = await sql<{ user_id: string | null; result: number; details: Record<string, unknown> }>(
      `SELECT user_id, result, details FROM audit_log WHERE action = 'ports.open' ORDER BY id`,
    );
    expect(
      opens.some((o) => o.user_id === memberId && o.result === 302 && o.details.sharing === 'authenticated'),
    ).toBe(true);
    expect(opens.some((o) => o.user_id === null && o.result === 302 && o.details.sharing === 'public')).toBe(
      true,
    );
    expect(opens.some((o) => o.user_id === memberId && o.result === 404)).toBe(true);
    // API opens are in the audit trail too (the audit middleware), with the port as target.
    const apiOpens = await sql<{ target_id: string; target_type: string; details: Record<string, unknown> }>(
      `SELECT target_id, target_type, details FROM audit_log
       WHERE action = 'ports.open' AND route = 'POST /api/v1/environments/:id/ports/:port/open' AND result = 200`,
    );
    expect(apiOpens.map((a) => [a.target_type, a.target_id, a.details.environmentId])).toContainEqual([
      'port',
      String(app.port),
      envId,
    ]);
    const sets = await sql<{ result: number }>(
      `SELECT result FROM audit_log WHERE action = 'ports.sharing.set'`,
    );
    expect(sets.map((r) => r.result)).toContain(404); // the member's attempt
    expect((await sql(`SELECT 1 FROM audit_log WHERE action = 'ports.forward'`)).length).toBeGreaterThan(0);

    // Tickets and port cookies reach neither the control plane's log nor the gateway's.
    const gatewayLog = await readFile(join(dir, 'gateway.log'), 'utf8');
    expect(gatewayLog).toContain('port opened');
    for (const text of [s.logs.join('\n'), gatewayLog]) {
      expect(text).not.toMatch(/berth_ticket=ey/);
      expect(text).not.toContain(cookie.split('=')[1]!);
    }
  });
});

describe('berth ports and berth port-forward', () => {
  let token: string;
  let home: string;
  const cliEnv = () => ({ HOME: home, BERTH_URL: s.url, BERTH_TOKEN: token });

  beforeAll(async () => {
    token = (await admin.post('/api/v1/tokens', { name: 'ports-cli' })).json.token as string;
    home = await mkdtemp(join(tmpdir(), 'berth-ports-home-'));
  });
  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it('berth ports lists ports with sharing and links; public needs --yes', async () => {
    const r = await runCli(['ports', 'ports-env'], cliEnv());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`^${app.port}\\s+yes\\s+no\\s+owner only\\s+${s.url}/p/${envId}/${app.port}$`, 'm'),
    );
    expect(r.stdout).toMatch(/^4999\s+no\s+yes\s+owner only/m);
    const refused = await runCli(['ports', 'ports-env', String(app.port), '--share', 'public'], cliEnv());
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--yes');
    const open = await runCli(['ports', 'ports-env', String(app.port)], cliEnv());
    expect(open.code).toBe(0);
    const url = /open within 60 s \(one use\): (\S+)/.exec(open.stdout)?.[1];
    expect(url).toBeDefined();
    const { cookie, location } = await browse(url!);
    expect((await fetch(location, { headers: { cookie } })).status).toBe(201);
  });

  it(
    '100 parallel connections and a 50 MB round trip arrive intact; Ctrl-C closes cleanly',
    { timeout: 120_000 },
    async () => {
      // An echo server inside the "environment" (it shares the host's loopback, like `local`).
      const echo = createTcpServer({ allowHalfOpen: true }, (sock) => sock.pipe(sock));
      echo.listen(0, '127.0.0.1');
      await once(echo, 'listening');
      const remote = (echo.address() as AddressInfo).port;
      const child = spawn(BERTH_BIN, ['port-forward', envId, `0:${remote}`], {
        env: { PATH: process.env.PATH ?? '', ...cliEnv() },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        const [, localPort] = await waitForLine(child, /forwarding 127\.0\.0\.1:(\d+) -> \d+/);
        const roundTrip = (payload: Buffer) =>
          new Promise<Buffer>((resolve, reject) => {
            const sock = connectTcp(Number(localPort), '127.0.0.1');
            const got: Buffer[] = [];
            sock.on('data', (d: Buffer) => got.push(d));
            sock.on('end', () => resolve(Buffer.concat(got)));
            sock.on('error', reject);
            sock.end(payload);
          });
        const payloads = Array.from({ length: 100 }, (_, i) => randomBytes(1000 + i * 97));
        const echoed = await Promise.all(payloads.map(roundTrip));
        echoed.forEach((e, i) => expect(e.equals(payloads[i]!)).toBe(true));

        const big = randomBytes(50 * 1024 * 1024);
        const back = await roundTrip(big);
        expect(back.length).toBe(big.length);
        expect(createHash('sha256').update(back).digest('hex')).toBe(
          createHash('sha256').update(big).digest('hex'),
        );

        child.kill('SIGINT');
        const [code] = (await once(child, 'exit')) as [number | null];
        expect(code).toBe(0);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
        echo.close();
      }
    },
  );

  it('Ctrl-C with a connection open: the client gets an end and the command exits 0', async () => {
    const echo = createTcpServer({ allowHalfOpen: true }, (sock) => sock.pipe(sock));
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    const child = spawn(BERTH_BIN, ['port-forward', envId, `0:${(echo.address() as AddressInfo).port}`], {
      env: { PATH: process.env.PATH ?? '', ...cliEnv() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const [, localPort] = await waitForLine(child, /forwarding 127\.0\.0\.1:(\d+) -> \d+/);
      const sock = connectTcp(Number(localPort), '127.0.0.1');
      sock.write('still open');
      const [first] = (await once(sock, 'data')) as [Buffer];
      expect(first.toString()).toBe('still open');
      const ended = once(sock, 'end');
      child.kill('SIGINT');
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code).toBe(0);
      await ended;
      sock.destroy();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      echo.close();
    }
  });

  it('a closed remote port: the local connection is closed and the reason printed', async () => {
    const child = spawn(BERTH_BIN, ['port-forward', envId, '0:4999'], {
      env: { PATH: process.env.PATH ?? '', ...cliEnv() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const [, localPort] = await waitForLine(child, /forwarding 127\.0\.0\.1:(\d+) -> \d+/);
      const reason = waitForLine(child, /port 4999: (.*)/);
      const sock = connectTcp(Number(localPort), '127.0.0.1');
      sock.on('error', () => undefined);
      await once(sock, 'close');
      expect((await reason)[1]).toContain('502');
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        await once(child, 'exit');
      }
    }
  });

  it('another user cannot forward: the command fails with the API’s 404', async () => {
    const r = await runCli(['port-forward', envId, `0:${app.port}`], {
      HOME: home,
      BERTH_URL: s.url,
      BERTH_TOKEN: member.token!,
    });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('not found');
  });
});

describe('preview links under a flood', () => {
  it('are braked per client like mutating calls (429 with Retry-After)', async () => {
    const limited = await startTestServer({
      BERTH_MUTATION_RATE_PER_MINUTE: '1',
      BERTH_MUTATION_RATE_BURST: '2',
    });
    try {
      const link = `${limited.url}/p/00000000-0000-4000-8000-000000000000/80`;
      const codes = [];
      for (let i = 0; i < 3; i++) codes.push((await fetch(link, { redirect: 'manual' })).status);
      expect(codes).toEqual([401, 401, 429]);
      const r = await fetch(link, { redirect: 'manual' });
      expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
    } finally {
      await limited.stop();
    }
  });
});
