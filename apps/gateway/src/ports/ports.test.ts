import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { startTestGateway, type TestGateway } from '../testing.js';
import { parseProcNetTcp, reachableFromLoopback } from './listening.js';
import { TCP_EOF } from './forward.js';

/** A real app inside the "environment": echoes what it was sent, redirects, and a WebSocket echo. */
interface App {
  port: number;
  seen: Array<{ url: string; headers: IncomingHttpHeaders }>;
  close(): Promise<void>;
}

async function startApp(): Promise<App> {
  const seen: App['seen'] = [];
  const server: Server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    if (req.url === '/go-login') {
      res.writeHead(302, { location: '/login' });
      return void res.end();
    }
    res.writeHead(200, { 'content-type': 'application/json', 'x-app': 'yes', 'set-cookie': 'app=1; Path=/' });
    res.end(JSON.stringify({ url: req.url, headers: req.headers, method: req.method }));
  });
  const wss = new WebSocketServer({ server, path: '/ws' });
  wss.on('connection', (ws) => ws.on('message', (d, bin) => ws.send(d, { binary: bin })));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Raw bytes to the gateway and whatever comes back before it closes (proxy-abuse requests). */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(text));
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    s.on('error', reject);
  });
}

let gw: TestGateway;
let app: App;

beforeEach(async () => {
  gw = await startTestGateway();
  app = await startApp();
});
afterEach(async () => {
  await gw.close();
  await app.close();
});

const ticket = (port: number, extra: Record<string, unknown> = {}) =>
  gw.signer.sign({ scope: 'port', port, access: 'preview', ...extra });

async function openPort(port: number): Promise<{ cookie: string; setCookie: string }> {
  const r = await fetch(`${gw.http}/ports/${port}/some/page?x=1&berth_ticket=${await ticket(port)}`, {
    redirect: 'manual',
  });
  expect(r.status).toBe(303);
  expect(r.headers.get('location')).toBe(`/ports/${port}/some/page?x=1`);
  const setCookie = r.headers.get('set-cookie') ?? '';
  return { cookie: setCookie.split(';')[0]!, setCookie };
}

describe('port preview over HTTP', () => {
  it('trades a ticket for an httpOnly cookie scoped to the port, then proxies to the app', async () => {
    const { cookie, setCookie } = await openPort(app.port);
    expect(setCookie).toMatch(new RegExp(`^berth_port_${gw.environmentId.replace(/-/g, '')}_${app.port}=`));
    expect(setCookie).toContain(`Path=/ports/${app.port}/`);
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain('SameSite=Lax');

    const r = await fetch(`${gw.http}/ports/${app.port}/some/page?x=1`, {
      headers: {
        cookie: `${cookie}; berth_session=cp-secret; theme=dark`,
        authorization: 'Bearer not-for-the-app',
      },
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-app')).toBe('yes');
    expect(r.headers.get('set-cookie')).toBe('app=1; Path=/');
    const body = (await r.json()) as { url: string; headers: Record<string, string> };
    expect(body.url).toBe('/some/page?x=1');
    // Berth's credentials stop at the gateway; the app's own cookies pass.
    expect(body.headers.cookie).toBe('theme=dark');
    expect(body.headers.authorization).toBeUndefined();
    expect(body.headers.host).toBe(`localhost:${app.port}`);
    expect(body.headers['x-forwarded-prefix']).toBe(`/ports/${app.port}`);
  });

  it('without a ticket or cookie: 401 and nothing reaches the app', async () => {
    const r = await fetch(`${gw.http}/ports/${app.port}/`);
    expect(r.status).toBe(401);
    expect(await r.text()).toContain('Open it through Berth');
    const forged = await fetch(`${gw.http}/ports/${app.port}/`, {
      headers: { cookie: `berth_port_${gw.environmentId.replace(/-/g, '')}_${app.port}=eyJ4IjoxfQ.AAAA` },
    });
    expect(forged.status).toBe(401);
    expect(app.seen).toEqual([]);
  });

  it('refuses a used ticket, a ticket for another port, a forwarding ticket and another environment’s ticket', async () => {
    const t = await ticket(app.port);
    const first = await fetch(`${gw.http}/ports/${app.port}/?berth_ticket=${t}`, { redirect: 'manual' });
    expect(first.status).toBe(303);
    const again = await fetch(`${gw.http}/ports/${app.port}/?berth_ticket=${t}`, { redirect: 'manual' });
    expect(again.status).toBe(401);
    expect(await again.text()).toContain('already used');
    const other = await fetch(`${gw.http}/ports/${app.port}/?berth_ticket=${await ticket(app.port + 1)}`);
    expect(other.status).toBe(401);
    const fwd = await fetch(
      `${gw.http}/ports/${app.port}/?berth_ticket=${await ticket(app.port, { access: 'forward' })}`,
    );
    expect(fwd.status).toBe(401);
    const term = await fetch(
      `${gw.http}/ports/${app.port}/?berth_ticket=${await gw.signer.sign({ port: app.port })}`,
    );
    expect(term.status).toBe(401);
    const aud = await fetch(
      `${gw.http}/ports/${app.port}/?berth_ticket=${await ticket(app.port, { aud: 'another-env' })}`,
    );
    expect(aud.status).toBe(401);
    expect(app.seen).toEqual([]);
  });

  it('a cookie for one port does not open another', async () => {
    const other = await startApp();
    try {
      const { cookie } = await openPort(app.port);
      const r = await fetch(`${gw.http}/ports/${other.port}/`, { headers: { cookie } });
      expect(r.status).toBe(401);
      expect(other.seen).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('a closed port answers 502 with a page that says so', async () => {
    const closed = await startApp();
    const port = closed.port;
    await closed.close();
    const { cookie } = await openPort(port);
    const r = await fetch(`${gw.http}/ports/${port}/`, { headers: { cookie } });
    expect(r.status).toBe(502);
    expect(r.headers.get('content-type')).toContain('text/html');
    expect(await r.text()).toContain(`Nothing is listening on port ${port}`);
  });

  it('keeps redirects under the prefix and adds the trailing slash', async () => {
    const { cookie } = await openPort(app.port);
    const r = await fetch(`${gw.http}/ports/${app.port}/go-login`, {
      headers: { cookie },
      redirect: 'manual',
    });
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toBe(`/ports/${app.port}/login`);
    const bare = await fetch(`${gw.http}/ports/${app.port}?q=1`, { redirect: 'manual' });
    expect(bare.status).toBe(308);
    expect(bare.headers.get('location')).toBe(`/ports/${app.port}/?q=1`);
  });

  it('hostname routing: <port>-<env>.<domain> serves the app at /', async () => {
    const host = `${app.port}-${gw.environmentId}.preview.example.test`;
    const r = await raw(
      gw.gateway.port,
      `GET /?berth_ticket=${await ticket(app.port)} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    );
    expect(r).toMatch(/^HTTP\/1\.1 303/);
    const setCookie = /^set-cookie: (.*)$/im.exec(r)?.[1] ?? '';
    expect(setCookie).toContain('Path=/;');
    const cookie = setCookie.split(';')[0]!;
    const page = await raw(
      gw.gateway.port,
      `GET /hello HTTP/1.1\r\nHost: ${host}\r\nCookie: ${cookie}\r\nConnection: close\r\n\r\n`,
    );
    expect(page).toMatch(/^HTTP\/1\.1 200/);
    expect(app.seen.map((s) => s.url)).toEqual(['/hello']);
  });
});

describe('revocation', () => {
  it('DELETE /ports/<port> with a control-plane token ends existing cookies; a new ticket works again', async () => {
    const { cookie } = await openPort(app.port);
    const other = await openPort(app.port + 1);
    const del = (token?: string) =>
      fetch(`${gw.http}/ports/${app.port}`, {
        method: 'DELETE',
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
    expect((await del()).status).toBe(401);
    // A preview ticket (what any visitor of a shared port holds) cannot revoke.
    expect((await del(await ticket(app.port))).status).toBe(401);
    expect((await del(await gw.signer.sign({ scope: 'exec', port: app.port + 1 }))).status).toBe(401);
    expect((await fetch(`${gw.http}/ports/${app.port}/`, { headers: { cookie } })).status).toBe(200);
    expect((await del(await gw.signer.sign({ scope: 'exec', port: app.port }))).status).toBe(204);
    expect((await fetch(`${gw.http}/ports/${app.port}/`, { headers: { cookie } })).status).toBe(401);
    // Other ports keep their cookies.
    const r = await fetch(`${gw.http}/ports/${app.port + 1}/`, { headers: { cookie: other.cookie } });
    expect(r.status).not.toBe(401);
    const again = await openPort(app.port);
    expect((await fetch(`${gw.http}/ports/${app.port}/`, { headers: { cookie: again.cookie } })).status).toBe(
      200,
    );
  });
});

describe('no open proxy', () => {
  it('refuses absolute-form targets, CONNECT and the gateway’s own port; Host cannot pick the address', async () => {
    const { cookie } = await openPort(app.port);
    const abs = await raw(
      gw.gateway.port,
      `GET http://example.com/ports/${app.port}/ HTTP/1.1\r\nHost: example.com\r\nCookie: ${cookie}\r\nConnection: close\r\n\r\n`,
    );
    expect(abs).toMatch(/^HTTP\/1\.1 400/);
    const conn = await raw(
      gw.gateway.port,
      `CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n`,
    );
    expect(conn).toMatch(/^HTTP\/1\.1 405/);
    const self = await fetch(
      `${gw.http}/ports/${gw.gateway.port}/healthz?berth_ticket=${await ticket(gw.gateway.port)}`,
    );
    expect(self.status).toBe(403);
    // Whatever Host says, the request goes to 127.0.0.1:<port> of this environment.
    const tricked = await raw(
      gw.gateway.port,
      `GET /ports/${app.port}/x HTTP/1.1\r\nHost: 10.0.0.1:80\r\nCookie: ${cookie}\r\nConnection: close\r\n\r\n`,
    );
    expect(tricked).toMatch(/^HTTP\/1\.1 200/);
    expect(app.seen.at(-1)?.headers['x-forwarded-host']).toBe('10.0.0.1:80');
    expect(app.seen.map((s) => s.url)).toEqual(['/x']);
    // Upgrades other than WebSocket are refused: they would turn into an unfiltered pipe.
    const h2c = await raw(
      gw.gateway.port,
      `GET /ports/${app.port}/ HTTP/1.1\r\nHost: x\r\nCookie: ${cookie}\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n`,
    );
    expect(h2c).toMatch(/^HTTP\/1\.1 400/);
    expect(app.seen.map((s) => s.url)).toEqual(['/x']);
  });
});

describe('WebSocket through the preview', () => {
  it('echoes with the cookie; refused with 401 without it', async () => {
    const { cookie } = await openPort(app.port);
    const ws = new WebSocket(`ws://127.0.0.1:${gw.gateway.port}/ports/${app.port}/ws`, {
      headers: { cookie },
    });
    await once(ws, 'open');
    ws.send('hello through the gateway');
    const [msg] = (await once(ws, 'message')) as [Buffer];
    expect(msg.toString()).toBe('hello through the gateway');
    ws.close();
    await once(ws, 'close');

    const anon = new WebSocket(`ws://127.0.0.1:${gw.gateway.port}/ports/${app.port}/ws`);
    const [err] = (await once(anon, 'error')) as [Error];
    expect(err.message).toBe('Unexpected server response: 401');
  });
});

describe('TCP forwarding over a WebSocket', () => {
  it('carries bytes both ways with a forwarding ticket; refuses preview tickets', async () => {
    const tcp = createTcpServer({ allowHalfOpen: true }, (s) => s.pipe(s));
    tcp.listen(0, '127.0.0.1');
    await once(tcp, 'listening');
    const port = (tcp.address() as AddressInfo).port;
    try {
      const token = await ticket(port, { access: 'forward' });
      const ws = new WebSocket(`ws://127.0.0.1:${gw.gateway.port}/tcp/${port}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      await once(ws, 'open');
      const got: Buffer[] = [];
      const closed = new Promise<number>((resolve) => {
        ws.on('message', (d: Buffer, bin) => (bin ? got.push(d) : undefined));
        ws.on('close', (code) => resolve(code));
      });
      ws.send(Buffer.from('ping over tcp'));
      ws.send(TCP_EOF);
      expect(await closed).toBe(1000);
      expect(Buffer.concat(got).toString()).toBe('ping over tcp');

      const preview = new WebSocket(`ws://127.0.0.1:${gw.gateway.port}/tcp/${port}`, {
        headers: { authorization: `Bearer ${await ticket(port)}` },
      });
      const [err] = (await once(preview, 'error')) as [Error];
      expect(err.message).toBe('Unexpected server response: 401');
    } finally {
      tcp.close();
    }
  });
});

describe('listening ports', () => {
  it('lists the app’s port (read from /proc) but not the gateway’s own; needs a port ticket', async () => {
    const denied = await fetch(`${gw.http}/ports`);
    expect(denied.status).toBe(401);
    const r = await fetch(`${gw.http}/ports`, {
      headers: { authorization: `Bearer ${await gw.signer.sign({ scope: 'port' })}` },
    });
    expect(r.status).toBe(200);
    const { ports } = (await r.json()) as { ports: Array<{ port: number; addresses: string[] }> };
    expect(ports.find((p) => p.port === app.port)?.addresses).toEqual(['127.0.0.1']);
    expect(ports.some((p) => p.port === gw.gateway.port)).toBe(false);
  });

  it('parses /proc/net/tcp and tcp6 LISTEN rows', () => {
    const v4 = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2 1 0 100 0 0 10 0
   2: 0100007F:0BB8 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 100 0 0 10 0
   3: 0202A8C0:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4 1 0 100 0 0 10 0`;
    expect(parseProcNetTcp(v4, 4)).toEqual([
      { address: '127.0.0.1', port: 3000 },
      { address: '0.0.0.0', port: 8080 },
      { address: '192.168.2.2', port: 5432 },
    ]);
    const v6 = `  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:1389 00000000000000000000000000000000:0000 0A
   1: 00000000000000000000000000000000:2328 00000000000000000000000000000000:0000 0A`;
    expect(parseProcNetTcp(v6, 6)).toEqual([
      { address: '::1', port: 5001 },
      { address: '::', port: 9000 },
    ]);
    expect(reachableFromLoopback('192.168.2.2')).toBe(false);
    expect(reachableFromLoopback('::')).toBe(true);
  });
});
