import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startGateway, type Gateway } from '@berth/gateway';
import { connectTerminal, type TerminalClient, type TerminalStatus } from '@berth/terminal';
import { nodeSocketFactory } from '@berth/terminal/node';
import {
  ADMIN,
  Client,
  memberClient,
  startTestServer,
  type TestServer,
} from '../../apps/control-plane/src/testing/server.js';
import { collect, until } from '../helpers/terminal-output.js';

/**
 * Read-only links: the owner shares a terminal session; another signed-in user opens it as an
 * observer under their own name (a real gateway with real PTYs), cannot type, and loses the
 * screen at once when the link is revoked or expires.
 */
let s: TestServer;
let owner: Client;
let viewer: Client;
let gateway: Gateway;
let envId: string;
let dir: string;
const clients: TerminalClient[] = [];

beforeAll(async () => {
  // The environment row below is not one a provider made: keep the reaper from reconciling it
  // while this file runs. Its first sweep (30 s after start) finds no local process for it and
  // marks it failed (gateway URL gone), and every test after that mark would fail; a loaded
  // machine gets there (test/integration/terminals.test.ts lost its attach tests so once).
  s = await startTestServer({ BERTH_ENV_REAP_SECONDS: '86400' });
  owner = new Client(s.url);
  await owner.login(ADMIN.email, ADMIN.password);
  viewer = await memberClient(s, owner, 'share-viewer@example.com');
  const me = (await owner.get('/api/v1/me')).json.user.id as string;
  dir = await mkdtemp(join(tmpdir(), 'berth-share-'));
  const db = new pg.Client({ connectionString: s.db.url });
  await db.connect();
  try {
    // The environment id is the gateway's audience: the row first, then the gateway.
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO environments (owner_id, name, provider, spec, spec_hash, state)
       VALUES ($1, 'shared', 'local', '{}', 'x', 'provisioning') RETURNING id`,
      [me],
    );
    envId = rows[0]!.id;
    const jwks = (await (await fetch(`${s.url}/.well-known/jwks.json`)).json()) as {
      keys: Array<Record<string, unknown>>;
    };
    gateway = await startGateway(
      { environmentId: envId, host: '127.0.0.1', port: 0, issuer: s.url, jwks, dataDir: dir, workdir: dir },
      { logToStdout: false, shell: ['/bin/sh'] },
    );
    await db.query(`UPDATE environments SET state = 'ready', gateway_url = $2 WHERE id = $1`, [
      envId,
      `http://127.0.0.1:${gateway.port}`,
    ]);
  } finally {
    await db.end();
  }
});

/** How the gateway answers a reconnect with this resume token (`attached` if it lets it in). */
function resume(ticketUrl: string, sid: string, token: string): Promise<{ code: number; reason: string }> {
  const ws = new WebSocket(`${ticketUrl}?resume=${encodeURIComponent(token)}&sid=${sid}&offset=0`);
  ws.on('error', () => undefined);
  return new Promise((resolve) => {
    ws.on('message', () => {
      resolve({ code: 0, reason: 'attached' });
      ws.terminate();
    });
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
}

/** A client's status changes, to see that it never tried to reconnect. */
function statuses(client: TerminalClient): TerminalStatus[] {
  const seen: TerminalStatus[] = [];
  client.onStatus((st) => seen.push(st));
  return seen;
}

/** The owner's own shell in the environment: a new session, as its driver. */
async function openDriver(): Promise<TerminalClient> {
  const t = await owner.post(`/api/v1/environments/${envId}/terminals`, {});
  // Without a ticket the client would never open, and the test wait for it until its timeout.
  if (t.status !== 201) throw new Error(`no terminal ticket: ${t.status} ${t.text}`);
  const driver = connectTerminal({ url: t.json.url, token: t.json.token, socketFactory: nodeSocketFactory });
  clients.push(driver);
  return driver;
}

/** A viewer on the observer ticket a share gave them: what it shows, and its statuses. */
function watch(ticket: { url: string; token: string }, sessionId: string) {
  const watcher = connectTerminal({
    url: ticket.url,
    token: ticket.token,
    sessionId,
    socketFactory: nodeSocketFactory,
  });
  clients.push(watcher);
  return { watcher, seen: collect(watcher), watcherStatus: statuses(watcher) };
}

afterAll(async () => {
  for (const c of clients) c.close();
  await gateway?.close();
  await s?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('read-only terminal links', () => {
  it('another user opens the shared session read-only, under their own name, until the owner revokes the link, which cuts them off', async () => {
    const driver = await openDriver();
    const mine = collect(driver);
    const { sessionId } = await driver.ready();

    // Only the owner can share, and only with a sane lifetime.
    expect(
      (await viewer.post(`/api/v1/environments/${envId}/terminals/${sessionId}/shares`, {})).status,
    ).toBe(404);
    const tooLong = await owner.post(`/api/v1/environments/${envId}/terminals/${sessionId}/shares`, {
      expiresInMinutes: 100_000,
    });
    expect(tooLong.status).toBe(400);
    const made = await owner.post(`/api/v1/environments/${envId}/terminals/${sessionId}/shares`, {});
    expect(made.status).toBe(201);
    expect(made.json.token).toMatch(/^berth_shr_/);
    expect(made.json.path).toBe(`/share/?token=${encodeURIComponent(made.json.token as string)}`);
    expect(made.json.share).toMatchObject({ environmentId: envId, sessionId });
    // The token is shown once: the list has the share, not its token.
    const list = await owner.get(`/api/v1/environments/${envId}/terminals/shares`);
    expect(list.json.items).toEqual([made.json.share]);
    expect(list.text).not.toContain(made.json.token);
    expect((await viewer.get(`/api/v1/environments/${envId}/terminals/shares`)).status).toBe(404);

    const got = await viewer.post('/api/v1/terminal-shares/tickets', { token: made.json.token });
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({
      environment: { id: envId, name: 'shared' },
      sharedBy: ADMIN.email,
      ticket: { role: 'observer', sessionId },
    });
    const { watcher, seen, watcherStatus } = watch(got.json.ticket, sessionId);
    const { resumeToken } = await watcher.ready();
    watcher.write('echo viewer-typed-this\n');
    driver.write('echo shared-$((6*7))\n');
    await until(watcher, seen, /shared-42/);
    // The gateway handles a socket's frames in order: once the viewer's ping is answered, its
    // input has been dealt with, so anything it put into the shell comes before the driver's marker.
    watcher.write('echo viewer-again\n');
    await new Promise<void>((resolve) => {
      const off = watcher.onPong(() => {
        off();
        resolve();
      });
      watcher.ping(new Uint8Array([7]));
    });
    driver.write('echo after-$((2*3))\n');
    await until(driver, mine, /after-6/);
    expect(mine.text()).not.toContain('viewer-typed-this');
    expect(mine.text()).not.toContain('viewer-again');
    // A ticket to one session cannot list the environment's sessions (their commands).
    const listed = await fetch(`http://127.0.0.1:${gateway.port}/sessions`, {
      headers: { authorization: `Bearer ${got.json.ticket.token}` },
    });
    expect(listed.status).toBe(401);
    // The session list shows the viewer attached as an observer, under their own id.
    const viewerId = (await viewer.get('/api/v1/me')).json.user.id as string;
    const sessions = JSON.stringify(
      (await owner.get(`/api/v1/environments/${envId}/terminals`)).json.sessions,
    );
    expect(sessions).toContain(viewerId);

    expect(
      (await owner.del(`/api/v1/environments/${envId}/terminals/shares/${made.json.share.id}`)).json,
    ).toEqual({ revoked: true, viewersCutOff: true });
    // The viewer who is watching loses the screen at once, for good: no reconnect, and the resume
    // token it holds is refused.
    expect(await watcher.closed).toEqual({ code: 4430, reason: 'share revoked' });
    expect(watcherStatus).toEqual(['connecting', 'open', 'closed']);
    expect(await resume(got.json.ticket.url as string, sessionId, resumeToken)).toEqual({
      code: 4430,
      reason: 'share revoked',
    });
    // The owner's own connection goes on.
    driver.write('echo owner-still-$((5*5))\n');
    await until(driver, mine, /owner-still-25/);
    expect(seen.text()).not.toContain('owner-still-25');
    const after = await viewer.post('/api/v1/terminal-shares/tickets', { token: made.json.token });
    expect(after.status).toBe(404);
    expect(after.json.error).toMatchObject({ code: 'share_not_found' });
    expect(after.json.error.hint).toMatch(/new link/);
    expect((await owner.get(`/api/v1/environments/${envId}/terminals/shares`)).json.items).toEqual([]);

    // Neither the token nor its hash is anything an audit reader can reuse.
    const audit = await owner.get('/api/v1/audit?limit=100');
    expect(audit.text).not.toContain(made.json.token);
    expect(audit.text).toContain('terminals.attach.shared');
  });

  it('an expired link says so; a made-up one is not found', async () => {
    const made = await owner.post(`/api/v1/environments/${envId}/terminals/any-session/shares`, {
      expiresInMinutes: 1,
    });
    expect(made.status).toBe(201);
    await s.db.query(`UPDATE terminal_shares SET expires_at = now() - interval '1 second' WHERE id = $1`, [
      made.json.share.id,
    ]);
    const r = await viewer.post('/api/v1/terminal-shares/tickets', { token: made.json.token });
    expect(r.status).toBe(410);
    expect(r.json.error.code).toBe('share_expired');
    const fresh = await owner.post(`/api/v1/environments/${envId}/terminals/any-session/shares`, {});
    const db2 = new pg.Client({ connectionString: s.db.url });
    await db2.connect();
    await db2.query(`UPDATE environments SET state = 'stopped' WHERE id = $1`, [envId]);
    try {
      const stopped = await viewer.post('/api/v1/terminal-shares/tickets', { token: fresh.json.token });
      expect(stopped.status).toBe(409);
      expect(stopped.json.error.hint).toBe(
        `ask ${ADMIN.email}, who shared it, to start it; then open the link again`,
      );
    } finally {
      await db2.query(`UPDATE environments SET state = 'ready' WHERE id = $1`, [envId]);
      await db2.end();
    }
    const bogus = await viewer.post('/api/v1/terminal-shares/tickets', { token: 'berth_shr_nope' });
    expect(bogus.status).toBe(404);
    expect(
      (await new Client(s.url).post('/api/v1/terminal-shares/tickets', { token: made.json.token })).status,
    ).toBe(401);
  });
  it('a viewer is cut off when the link expires, and cannot resume', async () => {
    const driver = await openDriver();
    const { sessionId } = await driver.ready();
    const made = await owner.post(`/api/v1/environments/${envId}/terminals/${sessionId}/shares`, {
      expiresInMinutes: 1,
    });
    expect(made.status).toBe(201);
    // A minute is the shortest lifetime the API gives; the row is brought forward to 2–3 s away,
    // on a whole second as the ticket carries it, and the test awaits the close, not the clock.
    await s.db.query(
      `UPDATE terminal_shares SET expires_at = date_trunc('second', now()) + interval '3 seconds' WHERE id = $1`,
      [made.json.share.id],
    );
    const got = await viewer.post('/api/v1/terminal-shares/tickets', { token: made.json.token });
    expect(got.status).toBe(200);
    const { watcher, seen, watcherStatus } = watch(got.json.ticket, sessionId);
    const { resumeToken } = await watcher.ready();
    driver.write('echo before-expiry-$((3*3))\n');
    await until(watcher, seen, /before-expiry-9/);

    expect(await watcher.closed).toEqual({ code: 4440, reason: 'share expired' });
    expect(watcherStatus).toEqual(['connecting', 'open', 'closed']);
    expect(await resume(got.json.ticket.url as string, sessionId, resumeToken)).toEqual({
      code: 4440,
      reason: 'share expired',
    });
    const again = await viewer.post('/api/v1/terminal-shares/tickets', { token: made.json.token });
    expect(again.json.error.code).toBe('share_expired');
  });

  it('revoking still works when the gateway cannot be told, and says so; a stopped environment needs no telling', async () => {
    const share = async () =>
      (await owner.post(`/api/v1/environments/${envId}/terminals/any-session/shares`, {})).json.share
        .id as string;
    const unreached = await share();
    const stopped = await share();
    const db = new pg.Client({ connectionString: s.db.url });
    await db.connect();
    try {
      // Port 1 on loopback: nothing listens, the connection is refused at once.
      await db.query(`UPDATE environments SET gateway_url = 'http://127.0.0.1:1' WHERE id = $1`, [envId]);
      const r = await owner.del(`/api/v1/environments/${envId}/terminals/shares/${unreached}`);
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ revoked: true, viewersCutOff: false });
      expect(r.json.warning).toMatch(/the link is revoked, but the environment did not answer/);
      await db.query(`UPDATE environments SET state = 'stopped' WHERE id = $1`, [envId]);
      const st = await owner.del(`/api/v1/environments/${envId}/terminals/shares/${stopped}`);
      expect(st.json).toEqual({ revoked: true, viewersCutOff: true });
    } finally {
      await db.query(`UPDATE environments SET state = 'ready', gateway_url = $2 WHERE id = $1`, [
        envId,
        `http://127.0.0.1:${gateway.port}`,
      ]);
      await db.end();
    }
    expect((await owner.get(`/api/v1/environments/${envId}/terminals/shares`)).json.items).toEqual(
      expect.not.arrayContaining([expect.objectContaining({ id: unreached })]),
    );
    // Someone else's revoke of the owner's link is not found, and changes nothing.
    const mine = await share();
    expect((await viewer.del(`/api/v1/environments/${envId}/terminals/shares/${mine}`)).status).toBe(404);
    expect((await owner.del(`/api/v1/environments/${envId}/terminals/shares/${mine}`)).json).toEqual({
      revoked: true,
      viewersCutOff: true,
    });
  });
});
