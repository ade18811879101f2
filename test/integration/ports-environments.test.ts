import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as connectTcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { connectTerminal, type TerminalClient } from '@berth/terminal';
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
import { BERTH_BIN, waitForLine } from '../helpers/cli.js';

/**
 * Port previews and `berth port-forward` against real environments: an HTTP server, a WebSocket
 * echo and a TCP echo run inside a `local` and a `docker` environment (started from a Berth
 * terminal, node built-ins only), and are reached only through the environment's gateway.
 */

// The app inside the environment: HTTP (with a 10 MB download), a minimal WebSocket echo (the
// environment has no `ws` package) and a TCP echo on PORT+1. With PORT 0 it takes two adjacent free
// ports itself and prints which: a pair found free beforehand and released could be taken by
// anything on the host (another test's connection) before the app binds it.
const APP = String.raw`
import http from 'node:http'; import net from 'node:net'; import crypto from 'node:crypto';
const want = Number(process.argv[2]);
const big = Buffer.alloc(10 * 1024 * 1024); for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 251;
const server = http.createServer((req, res) => {
  if (req.url === '/big') { res.writeHead(200, { 'content-length': big.length }); return res.end(big); }
  res.writeHead(200, { 'content-type': 'text/plain', 'x-env-app': 'yes' });
  res.end('hello from inside ' + req.url);
});
server.on('upgrade', (req, sock) => {
  const acc = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ' + acc + '\r\n\r\n');
  let buf = Buffer.alloc(0);
  sock.on('error', () => {});
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (buf.length < 2) return;
      const op = buf[0] & 15; let len = buf[1] & 127, off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      if (buf.length < off + 4 + len) return;
      const mask = buf.subarray(off, off + 4); const data = Buffer.from(buf.subarray(off + 4, off + 4 + len));
      for (let i = 0; i < len; i++) data[i] ^= mask[i % 4];
      buf = buf.subarray(off + 4 + len);
      if (op === 8) return void sock.end(Buffer.from([0x88, 0]));
      const h = len < 126 ? Buffer.from([0x80 | op, len]) : Buffer.from([0x80 | op, 126, len >> 8, len & 255]);
      sock.write(Buffer.concat([h, data]));
    }
  });
});
const echo = net.createServer({ allowHalfOpen: true }, (s) => { s.on('error', () => {}); s.pipe(s); });
const start = () => server.listen(want, '127.0.0.1', () => {
  const port = server.address().port;
  const again = (e) => { if (want) throw e; server.close(start); };
  if (port >= 65535) return again(new Error('no port after ' + port));
  // Listeners, not listen's callback: a failed listen would leave its callback for the next one.
  const onError = (e) => { echo.off('listening', onListening); again(e); };
  const onListening = () => { echo.off('error', onError); console.log('app-' + 'listening-' + port); };
  echo.once('error', onError).once('listening', onListening).listen(port + 1, '127.0.0.1');
});
start();
`;
const BIG_SHA = (() => {
  const big = Buffer.alloc(10 * 1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 251;
  return createHash('sha256').update(big).digest('hex');
})();

function suite(provider: 'local' | 'docker', env: () => Record<string, string>) {
  let s: TestServer;
  let admin: Client;
  let live: LiveWaiter;
  let home: string;
  let envId: string;
  let gatewayUrl: string;
  let appPort: number;
  let term: TerminalClient | undefined;

  beforeAll(async () => {
    if (provider === 'docker') ensureDocker();
    ensureGatewayBundle();
    s = await startTestServer({ BERTH_PROVIDERS: provider, ...env() });
    admin = new Client(s.url);
    await admin.login(ADMIN.email, ADMIN.password);
    admin.token = (await admin.post('/api/v1/tokens', { name: 'ports' })).json.token as string;
    live = await LiveWaiter.connect(admin);
    home = await mkdtemp(join(tmpdir(), 'berth-ports-env-'));
    const r = await admin.post('/api/v1/environments', { name: `ports-${provider}` });
    expect(r.status).toBe(201);
    envId = r.json.environment.id as string;
    const ready = await live.until(
      () => admin.get(`/api/v1/environments/${envId}`),
      (x) => ['ready', 'failed'].includes(x.json.environment.state as string),
    );
    expect(ready.json.environment.state).toBe('ready');
    gatewayUrl = ready.json.environment.gatewayUrl as string;
    // A local environment shares the host's loopback: the app picks its own ports there (0).
    const wantPort = provider === 'local' ? 0 : 38080;

    // Start the app from a Berth terminal and keep it in the foreground there.
    const t = await admin.post(`/api/v1/environments/${envId}/terminals`, {});
    term = connectTerminal({
      url: t.json.url,
      token: t.json.token,
      socketFactory: nodeSocketFactory,
      command: ['/bin/sh'],
    });
    await term.ready();
    let out = '';
    appPort = await new Promise<number>((resolve, reject) => {
      term!.onOutput((d) => {
        out += Buffer.from(d).toString();
        const m = /app-listening-(\d+)\r?\n/.exec(out); // the whole number, not a part of it
        if (m) resolve(Number(m[1]));
      });
      // The app runs in the shell's place (exec): if it dies, the session ends; say so at once.
      void term!.closed.then((c) =>
        reject(new Error(`the terminal closed (${c.code} ${c.reason}) before the app listened:\n${out}`)),
      );
      const b64 = Buffer.from(APP).toString('base64');
      term!.write(
        `echo ${b64} | base64 -d > port-app.mjs && exec "$(command -v node || echo /opt/berth/bin/node)" port-app.mjs ${wantPort}\n`,
      );
    });
  }, 240_000);

  afterAll(async () => {
    term?.close();
    if (envId) {
      await admin.del(`/api/v1/environments/${envId}`);
      await live.until(
        () => admin.get(`/api/v1/environments/${envId}`),
        (x) => ['destroyed', 'failed'].includes(x.json.environment.state as string),
      );
      if (provider === 'docker')
        await new Docker()
          .getContainer(containerName(envId))
          .remove({ force: true })
          .catch(() => undefined);
    }
    live?.close();
    await s?.stop();
    if (home) await rm(home, { recursive: true, force: true });
  }, 120_000);

  async function browse(port: number): Promise<{ cookie: string; base: string }> {
    const o = await admin.post(`/api/v1/environments/${envId}/ports/${port}/open`, {});
    expect(o.status).toBe(200);
    const r = await fetch(o.json.url as string, { redirect: 'manual' });
    expect(r.status).toBe(303);
    return {
      cookie: (r.headers.get('set-cookie') ?? '').split(';')[0]!,
      base: `${gatewayUrl}/ports/${port}/`,
    };
  }

  it('lists the app’s ports as listening', async () => {
    const r = await admin.get(`/api/v1/environments/${envId}/ports`);
    expect(r.json.gateway).toBe('ok');
    const ports = (r.json.ports as Array<{ port: number; listening: boolean }>).filter((p) => p.listening);
    expect(ports.map((p) => p.port)).toEqual(expect.arrayContaining([appPort, appPort + 1]));
  });

  it('preview URL: status, headers, body, 10 MB download, WebSocket echo; 401 without the cookie', async () => {
    const { cookie, base } = await browse(appPort);
    const page = await fetch(`${base}hi?x=1`, { headers: { cookie } });
    expect(page.status).toBe(200);
    expect(page.headers.get('x-env-app')).toBe('yes');
    expect(await page.text()).toBe('hello from inside /hi?x=1');
    const t0 = performance.now();
    const big = Buffer.from(await (await fetch(`${base}big`, { headers: { cookie } })).arrayBuffer());
    console.log(`[ports] ${provider}: 10 MB preview download in ${Math.round(performance.now() - t0)} ms`);
    expect(big.length).toBe(10 * 1024 * 1024);
    expect(createHash('sha256').update(big).digest('hex')).toBe(BIG_SHA);

    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}echo`, { headers: { cookie } });
    await once(ws, 'open');
    ws.send(`echo from ${provider}`);
    const [msg] = (await once(ws, 'message')) as [Buffer];
    expect(msg.toString()).toBe(`echo from ${provider}`);
    ws.close();
    await once(ws, 'close');

    const anon = await fetch(`${base}hi`);
    expect(anon.status).toBe(401);
    expect(await anon.text()).not.toContain('hello from inside');
  });

  it('a closed port answers 502; CONNECT and absolute URLs are refused', async () => {
    const { cookie, base } = await browse(appPort + 2);
    const r = await fetch(base, { headers: { cookie } });
    expect(r.status).toBe(502);
    expect(await r.text()).toContain(`Nothing is listening on port ${appPort + 2}`);
    const { hostname, port } = new URL(gatewayUrl);
    const rawReq = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const sock = connectTcp(Number(port), hostname, () => sock.write(text));
        let got = '';
        sock.on('data', (d: Buffer) => (got += d.toString()));
        sock.on('close', () => resolve(got));
        sock.on('error', reject);
      });
    expect(await rawReq('CONNECT 1.1.1.1:443 HTTP/1.1\r\nHost: 1.1.1.1:443\r\n\r\n')).toMatch(
      /^HTTP\/1\.1 405/,
    );
    expect(
      await rawReq(
        `GET http://1.1.1.1/ports/${appPort}/ HTTP/1.1\r\nHost: 1.1.1.1\r\nCookie: ${cookie}\r\nConnection: close\r\n\r\n`,
      ),
    ).toMatch(/^HTTP\/1\.1 400/);
  });

  it(
    'berth port-forward: 100 parallel connections and a 50 MB round trip intact',
    { timeout: 180_000 },
    async () => {
      const child = spawn(BERTH_BIN, ['port-forward', envId, `0:${appPort + 1}`], {
        env: { PATH: process.env.PATH ?? '', HOME: home, BERTH_URL: s.url, BERTH_TOKEN: admin.token! },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        const [, local] = await waitForLine(child, /forwarding 127\.0\.0\.1:(\d+) -> \d+/);
        const roundTrip = (payload: Buffer) =>
          new Promise<Buffer>((resolve, reject) => {
            const sock = connectTcp(Number(local), '127.0.0.1');
            const got: Buffer[] = [];
            sock.on('data', (d: Buffer) => got.push(d));
            sock.on('end', () => resolve(Buffer.concat(got)));
            sock.on('error', reject);
            sock.end(payload);
          });
        const payloads = Array.from({ length: 100 }, (_, i) => randomBytes(2000 + i * 131));
        const echoed = await Promise.all(payloads.map(roundTrip));
        echoed.forEach((e, i) => expect(e.equals(payloads[i]!)).toBe(true));
        const big = randomBytes(50 * 1024 * 1024);
        const started = performance.now();
        const back = await roundTrip(big);
        const ms = performance.now() - started;
        expect(createHash('sha256').update(back).digest('hex')).toBe(
          createHash('sha256').update(big).digest('hex'),
        );
        console.log(`[ports] ${provider}: 50 MB round trip through port-forward in ${Math.round(ms)} ms`);
        child.kill('SIGINT');
        const [code] = (await once(child, 'exit')) as [number | null];
        expect(code).toBe(0);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    },
  );
}

describe('ports in a local environment', () => suite('local', () => ({})));

describe.skipIf(process.env.BERTH_SKIP_DOCKER === '1')('ports in a docker environment', () =>
  suite('docker', () => ({ BERTH_DOCKER_BASE_IMAGE: ensureDocker(), BERTH_ENV_DEFAULT_MEMORY_MB: '512' })),
);
