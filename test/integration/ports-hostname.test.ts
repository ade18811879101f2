import { request, createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '@berth/gateway';
import {
  ADMIN,
  Client,
  startTestServer,
  type TestServer,
} from '../../apps/control-plane/src/testing/server.js';

/**
 * Hostname routing: with BERTH_PORTS_DOMAIN the control plane hands out
 * `<port>-<env>.<domain>` URLs; the gateway (behind the operator's wildcard proxy, simulated
 * here by sending that Host to it) serves the port at `/` with its own origin.
 */
let s: TestServer;
let admin: Client;
let gateway: Gateway;
let app: Server;
let envId: string;
let dir: string;

/** What the operator's wildcard proxy does: same request, to the environment's gateway. */
function viaProxy(url: string, cookie?: string) {
  const u = new URL(url);
  return new Promise<{
    status: number;
    headers: Record<string, string | string[] | undefined>;
    body: string;
  }>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: gateway.port,
        path: u.pathname + u.search,
        headers: { host: u.host, ...(cookie ? { cookie } : {}) },
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  // BERTH_ENV_REAP_SECONDS: the environment row below is not a provider's; keep the reaper off it.
  s = await startTestServer({ BERTH_PORTS_DOMAIN: 'preview.example.test', BERTH_ENV_REAP_SECONDS: '86400' });
  admin = new Client(s.url);
  await admin.login(ADMIN.email, ADMIN.password);
  const me = (await admin.get('/api/v1/me')).json.user.id as string;
  dir = await mkdtemp(join(tmpdir(), 'berth-ports-host-'));
  app = createServer((req, res) => res.end(`app at ${req.url}`));
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  const c = new pg.Client({ connectionString: s.db.url });
  await c.connect();
  try {
    envId = (
      await c.query<{ id: string }>(
        `INSERT INTO environments (owner_id, name, provider, spec, spec_hash, state)
         VALUES ($1, 'host-env', 'local', '{}', 'x', 'provisioning') RETURNING id`,
        [me],
      )
    ).rows[0]!.id;
    const jwks = (await (await fetch(`${s.url}/.well-known/jwks.json`)).json()) as {
      keys: Array<Record<string, unknown>>;
    };
    gateway = await startGateway(
      { environmentId: envId, host: '127.0.0.1', port: 0, issuer: s.url, jwks, dataDir: dir, workdir: dir },
      { logToStdout: false, shell: ['/bin/sh'] },
    );
    await c.query(`UPDATE environments SET state = 'ready', gateway_url = $2 WHERE id = $1`, [
      envId,
      `http://127.0.0.1:${gateway.port}`,
    ]);
  } finally {
    await c.end();
  }
});

afterAll(async () => {
  await gateway?.close();
  app?.closeAllConnections();
  await new Promise((r) => app?.close(r));
  await s?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('hostname routing', () => {
  it('hands out <port>-<env>.<domain> URLs; the gateway serves the port at / with a cookie on Path=/', async () => {
    const port = (app.address() as AddressInfo).port;
    const o = await admin.post(`/api/v1/environments/${envId}/ports/${port}/open`, {});
    expect(o.status).toBe(200);
    expect(o.json.url).toMatch(
      new RegExp(`^http://${port}-${envId}\\.preview\\.example\\.test/\\?berth_ticket=`),
    );
    const first = await viaProxy(o.json.url as string);
    expect(first.status).toBe(303);
    expect(first.headers.location).toBe('/');
    const setCookie = String(first.headers['set-cookie'] ?? '');
    expect(setCookie).toContain('Path=/;');
    const cookie = setCookie.split(';')[0]!;
    const page = await viaProxy(`http://${port}-${envId}.preview.example.test/deep/link?q=1`, cookie);
    expect(page.status).toBe(200);
    expect(page.body).toBe('app at /deep/link?q=1');
    // Without the cookie: 401, and the app is not asked.
    const anon = await viaProxy(`http://${port}-${envId}.preview.example.test/deep/link`);
    expect(anon.status).toBe(401);
  });

  it('refuses a domain that is not one', async () => {
    const { loadConfig } = await import('../../apps/control-plane/src/config.js');
    expect(() => loadConfig({ HOME: dir, BERTH_PORTS_DOMAIN: 'http://x/' })).toThrow(/portsDomain/);
  });
});
