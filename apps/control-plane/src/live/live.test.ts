import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { io, type Socket } from 'socket.io-client';
import { ADMIN, Client, memberClient, startTestServer, type TestServer } from '../testing/server.js';

let s: TestServer;
let admin: Client;
const sockets: Socket[] = [];

beforeAll(async () => {
  s = await startTestServer();
  admin = new Client(s.url);
  await admin.login(ADMIN.email, ADMIN.password);
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

async function insertEnvironment(ownerId: string, name: string): Promise<string> {
  const c = new pg.Client({ connectionString: s.db.url });
  await c.connect();
  try {
    const { rows } = await c.query<{ id: string }>(
      `INSERT INTO environments (owner_id, name, provider, spec, spec_hash) VALUES ($1, $2, 'fake', '{}', 'x') RETURNING id`,
      [ownerId, name],
    );
    await c.query(`UPDATE environments SET state = 'provisioning' WHERE id = $1`, [rows[0]!.id]);
    return rows[0]!.id;
  } finally {
    await c.end();
  }
}

describe('socket.io /events', () => {
  it('refuses a connection without credentials', async () => {
    await expect(connect({})).rejects.toThrow(/authentication required/);
    await expect(connect({ token: 'berth_pat_bogus' })).rejects.toThrow(/invalid/);
  });

  it('speaks WebSocket only: a long-polling client (which would need sticky sessions across replicas) is refused', async () => {
    const r = await fetch(`${s.url}/socket.io/?EIO=4&transport=polling`, {
      headers: { cookie: admin.cookie! },
    });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ message: 'Transport unknown' });
  });

  it('delivers changes of my environments to me, by cookie or token, and not to another user', async () => {
    const me = (await admin.get('/api/v1/me')).json.user.id as string;
    const byCookie = await connect({ cookie: admin.cookie! });
    const token = (await admin.post('/api/v1/tokens', { name: 'live' })).json.token as string;
    const byToken = await connect({ token });
    const other = await memberClient(s, admin, 'other-live@example.com');
    const otherSocket = await connect({ token: other.token! });
    const leaked: unknown[] = [];
    otherSocket.on('change', (c) => leaked.push(c));

    const seen = (sock: Socket) =>
      new Promise<Array<{ kind: string; id: string; state: string }>>((resolve) => {
        const got: Array<{ kind: string; id: string; state: string }> = [];
        sock.on('change', (c: { kind: string; id: string; state: string }) => {
          got.push(c);
          if (got.length === 2) resolve(got);
        });
      });
    const a = seen(byCookie);
    const b = seen(byToken);
    const id = await insertEnvironment(me, 'live-one');
    const expected = [
      { kind: 'environment', id, state: 'pending' },
      { kind: 'environment', id, state: 'provisioning' },
    ];
    expect(await a).toEqual(expected);
    expect(await b).toEqual(expected);

    // A change of the other user's own environment reaches them: the channel works for them,
    // and by then anything of mine would have arrived before it (NOTIFY keeps commit order).
    const otherId = (await other.get('/api/v1/me')).json.user.id as string;
    const theirs = new Promise((resolve) => otherSocket.once('change', resolve));
    await insertEnvironment(otherId, 'theirs');
    await theirs;
    expect(leaked.filter((c) => (c as { id: string }).id === id)).toEqual([]);
  });
});
