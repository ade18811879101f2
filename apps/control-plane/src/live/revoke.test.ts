import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import { ADMIN, Client, startTestServer, type TestServer } from '../testing/server.js';
import { LiveService } from './live.service.js';

// Live sockets outlive the request that opened them: ending the credential must end them too.
let s: TestServer;
let now = new Date();
const clock = { now: () => now };
const sockets: Socket[] = [];

beforeAll(async () => {
  s = await startTestServer({ BERTH_SESSION_TTL_HOURS: '1' }, { clock });
});
afterAll(async () => {
  for (const x of sockets) x.close();
  await s.stop();
});

function connect(auth: { token?: string; cookie?: string }): Promise<Socket> {
  const socket = io(`${s.url}/events`, {
    transports: ['websocket'],
    reconnection: false,
    ...(auth.token ? { auth: { token: auth.token } } : {}),
    ...(auth.cookie ? { extraHeaders: { cookie: auth.cookie } } : {}),
  });
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once('ready', () => resolve(socket));
    socket.once('connect_error', (err) => reject(err));
  });
}

/** Resolves with the reason the server gave once it has closed the socket. */
function revoked(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let reason = '';
    socket.once('revoked', (r: { reason: string }) => (reason = r.reason));
    socket.once('disconnect', () => resolve(reason));
  });
}

async function signedIn(): Promise<Client> {
  const c = new Client(s.url);
  await c.login(ADMIN.email, ADMIN.password);
  return c;
}

describe('live sockets follow their credential', () => {
  it('logout disconnects the sockets of that session, and only those', async () => {
    const a = await signedIn();
    const b = await signedIn();
    const sa = await connect({ cookie: a.cookie! });
    const sb = await connect({ cookie: b.cookie! });
    const gone = revoked(sa);
    await a.post('/api/v1/auth/logout');
    expect(await gone).toBe('your session has ended');
    await s.app.get(LiveService).revalidate(); // after any re-check still running is done
    expect(sb.connected).toBe(true);
  });

  it('revoking a token disconnects the sockets it opened', async () => {
    const c = await signedIn();
    const t = await c.post('/api/v1/tokens', { name: 'live' });
    const socket = await connect({ token: t.json.token as string });
    const gone = revoked(socket);
    expect((await c.del(`/api/v1/tokens/${t.json.id as string}`)).status).toBe(200);
    expect(await gone).toBe('the token was revoked or expired');
  });

  it('a password change ends the user’s other sessions and their sockets', async () => {
    const admin = await signedIn();
    await admin.post('/api/v1/users', { email: 'mover@example.com', password: 'first password 1' });
    const laptop = new Client(s.url);
    const phone = new Client(s.url);
    const me = (await laptop.login('mover@example.com', 'first password 1')).json.user.id as string;
    await phone.login('mover@example.com', 'first password 1');
    const socket = await connect({ cookie: phone.cookie! });
    const gone = revoked(socket);
    const r = await laptop.patch(`/api/v1/users/${me}`, {
      password: 'second password 2',
      currentPassword: 'first password 1',
    });
    expect(r.status).toBe(200);
    expect(await gone).toBe('your session has ended');
  });

  it('an expired session is dropped at the next re-check (injected clock)', async () => {
    now = new Date();
    const c = await signedIn();
    const socket = await connect({ cookie: c.cookie! });
    expect(await s.app.get(LiveService).revalidate()).toBe(0);
    const gone = revoked(socket);
    now = new Date(now.getTime() + 2 * 3_600_000);
    expect(await s.app.get(LiveService).revalidate()).toBeGreaterThanOrEqual(1);
    expect(await gone).toBe('your session has ended');
  });
});
