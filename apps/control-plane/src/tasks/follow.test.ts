import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import { openConnections } from '@berth/db/testing';
import { LiveWaiter } from '../testing/live.js';
import { ADMIN, Client, memberClient, startTestServer, type TestServer } from '../testing/server.js';
import { completeUtf8Length } from './task-follow.js';

let s: TestServer;
let admin: Client;
let alice: Client;
let bob: Client;
let waiter: LiveWaiter;
const sockets: Socket[] = [];

beforeAll(async () => {
  s = await startTestServer({ BERTH_PROVIDERS: 'fake,local', BERTH_TASK_MAX_CONCURRENT_PER_USER: '2' });
  admin = new Client(s.url);
  await admin.login(ADMIN.email, ADMIN.password);
  alice = await memberClient(s, admin, 'alice-follow@example.com');
  bob = await memberClient(s, admin, 'bob-follow@example.com');
  waiter = await LiveWaiter.connect(alice);
});
afterAll(async () => {
  waiter.close();
  for (const x of sockets) x.close();
  const name = s.db.name;
  await s.stop();
  expect(await openConnections(inject('pgAdminUrl'), name)).toBe(0);
});

interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** Reads a whole SSE response (the server ends it after `end`) into its events. */
async function readSse(c: Client, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(c.base + path, { headers: { authorization: `Bearer ${c.token}`, ...headers } });
  const text = await res.text();
  const events: SseEvent[] = [];
  for (const block of text.split('\n\n')) {
    if (!block.trim() || block.startsWith(':')) continue;
    const ev: SseEvent = { event: 'message', data: '' };
    for (const line of block.split('\n')) {
      const i = line.indexOf(': ');
      const [k, v] = i < 0 ? [line, ''] : [line.slice(0, i), line.slice(i + 2)];
      if (k === 'id') ev.id = v;
      else if (k === 'event') ev.event = v;
      else if (k === 'data') ev.data += v;
    }
    events.push(ev);
  }
  return { status: res.status, type: res.headers.get('content-type'), events, text };
}

const lines = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}\n`).join('');

function connect(c: Client): Promise<Socket> {
  const socket = io(`${s.url}/events`, {
    transports: ['websocket'],
    reconnection: false,
    auth: { token: c.token },
  });
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once('ready', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

const taskDone = (id: string) =>
  waiter.until(
    () => alice.get(`/api/v1/tasks/${id}`),
    (r) => ['succeeded', 'failed', 'canceled', 'timed_out'].includes(r.json.task.state as string),
  );

describe('following a task’s output', () => {
  it('SSE: follows from the start while it runs, complete and in order, then ends; resumes from Last-Event-ID', async () => {
    const r = await alice.post('/api/v1/tasks', { command: ['fake:lines', '300'] });
    const id = r.json.task.id as string;
    // Started right away: the follow begins before (or while) the output is written.
    const live = await readSse(alice, `/api/v1/tasks/${id}/logs?follow=1`);
    expect(live.status).toBe(200);
    expect(live.type).toMatch(/^text\/event-stream/);
    const outputs = live.events.filter((e) => e.event === 'output');
    const parsed = outputs.map((e) => ({ id: Number(e.id), ...JSON.parse(e.data) }));
    expect(parsed.map((p) => p.data).join('')).toBe(lines(300));
    // Each event starts where the previous one ended, and its id is where it ends.
    let at = 0;
    for (const p of parsed) {
      expect(p.offset).toBe(at);
      at += Buffer.byteLength(p.data as string);
      expect(p.id).toBe(at);
    }
    const end = live.events.at(-1)!;
    expect(end.event).toBe('end');
    expect(JSON.parse(end.data)).toEqual({ state: 'succeeded', exitCode: 0, totalBytes: lines(300).length });

    // A reconnect with the id of the first event gets exactly the rest.
    const first = outputs[0]!;
    const resumed = await readSse(alice, `/api/v1/tasks/${id}/logs?follow=1`, { 'last-event-id': first.id! });
    const rest = resumed.events
      .filter((e) => e.event === 'output')
      .map((e) => JSON.parse(e.data).data as string)
      .join('');
    expect(JSON.parse(first.data).data + rest).toBe(lines(300));
    expect(resumed.events.at(-1)!.event).toBe('end');
    const mid = await readSse(alice, `/api/v1/tasks/${id}/logs?follow=1`, { 'last-event-id': '100' });
    expect(
      mid.events
        .filter((e) => e.event === 'output')
        .map((e) => JSON.parse(e.data).data as string)
        .join(''),
    ).toBe(lines(300).slice(100));
    expect((await readSse(alice, `/api/v1/tasks/${id}/logs?follow=1`, { 'last-event-id': 'x' })).status).toBe(
      400,
    );

    // base64 carries the bytes as they are.
    const b64 = await readSse(alice, `/api/v1/tasks/${id}/logs?follow=1&encoding=base64&offset=5`);
    const bytes = Buffer.concat(
      b64.events
        .filter((e) => e.event === 'output')
        .map((e) => Buffer.from(JSON.parse(e.data).data as string, 'base64')),
    );
    expect(bytes.toString()).toBe(lines(300).slice(5));
  });

  it('SSE: a follower of a running task sees its output as it comes, and the end when it is canceled', async () => {
    const r = await alice.post('/api/v1/tasks', { command: ['fake:hang'] });
    const id = r.json.task.id as string;
    const res = await fetch(`${s.url}/api/v1/tasks/${id}/logs?follow=1`, {
      headers: { authorization: `Bearer ${alice.token}` },
    });
    const reader = res.body!.getReader();
    let text = '';
    // The first output arrives while the task still runs (it never ends by itself).
    while (!text.includes('running until stopped')) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended early: ${text}`);
      text += Buffer.from(value).toString();
    }
    expect((await alice.get(`/api/v1/tasks/${id}`)).json.task.state).toBe('running');
    await alice.post(`/api/v1/tasks/${id}/cancel`);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    expect(text).toMatch(/event: end\ndata: \{"state":"canceled"/);
  });

  it('socket.io: task:follow streams output complete and in order, then task:end', async () => {
    const sock = await connect(alice);
    const r = await alice.post('/api/v1/tasks', { command: ['fake:lines', '200'] });
    const id = r.json.task.id as string;
    const got: Array<{ offset: number; nextOffset: number; data: string }> = [];
    const ended = new Promise<{ state: string; exitCode: number }>((resolve) => {
      sock.on('task:output', (m: { taskId: string; offset: number; nextOffset: number; data: string }) => {
        if (m.taskId === id) got.push(m);
      });
      sock.on('task:end', (m: { taskId: string; state: string; exitCode: number }) => {
        if (m.taskId === id) resolve(m);
      });
    });
    const ack = await sock.emitWithAck('task:follow', { taskId: id });
    expect(ack).toEqual({ ok: true });
    expect(await ended).toMatchObject({ state: 'succeeded', exitCode: 0 });
    expect(got.map((g) => g.data).join('')).toBe(lines(200));
    for (let i = 1; i < got.length; i++) expect(got[i]!.offset).toBe(got[i - 1]!.nextOffset);

    // From an offset, after the end: the rest, then the end again.
    sock.off('task:output');
    sock.off('task:end');
    const rest: string[] = [];
    sock.on('task:output', (m: { data: string }) => rest.push(m.data));
    const again = new Promise((resolve) => sock.once('task:end', resolve));
    expect(await sock.emitWithAck('task:follow', { taskId: id, offset: 1000 })).toEqual({ ok: true });
    await again;
    expect(rest.join('')).toBe(lines(200).slice(1000));
  });

  it("a member cannot read, follow, cancel or debug another user's task: 404 everywhere", async () => {
    const r = await alice.post('/api/v1/tasks', { command: ['fake:lines', '3'] });
    const id = r.json.task.id as string;
    await taskDone(id);
    for (const path of ['', '/logs', '/timeline', '/debug']) {
      const x = await bob.get(`/api/v1/tasks/${id}${path}`);
      expect(x.status, path).toBe(404);
      expect(x.json.error.code).toBe('not_found');
    }
    const sse = await readSse(bob, `/api/v1/tasks/${id}/logs?follow=1`);
    expect(sse.status).toBe(404);
    expect(sse.text).not.toContain('line 1');
    expect((await bob.post(`/api/v1/tasks/${id}/cancel`)).status).toBe(404);
    const sock = await connect(bob);
    const leaked: unknown[] = [];
    sock.on('task:output', (m) => leaked.push(m));
    const ack = await sock.emitWithAck('task:follow', { taskId: id });
    expect(ack).toMatchObject({ ok: false, error: { code: 'not_found' } });
    // Alice's own follow on another connection completes; nothing reached bob by then.
    const mine = await connect(alice);
    const end = new Promise((resolve) => mine.on('task:end', resolve));
    await mine.emitWithAck('task:follow', { taskId: id });
    await end;
    expect(leaked).toEqual([]);
    expect((await sock.emitWithAck('task:follow', { taskId: 'nope' })).ok).toBe(false);
  });

  it('cuts UTF-8 output only between characters', () => {
    const b = Buffer.from('a✓é');
    expect(completeUtf8Length(b)).toBe(b.length);
    expect(completeUtf8Length(b.subarray(0, 2))).toBe(1); // half of ✓
    expect(completeUtf8Length(b.subarray(0, 3))).toBe(1);
    expect(completeUtf8Length(b.subarray(0, 5))).toBe(4); // half of é
  });
});

describe('tasks that bring their own environment', () => {
  const envState = (id: string) => alice.get(`/api/v1/environments/${id}`);

  it('creates the environment with the task, owned by the same user, and destroys it when the task ends', async () => {
    // A real (local) environment: the runner waits for it to be ready and runs the command in it.
    const r = await alice.post('/api/v1/tasks', {
      command: ['sh', '-c', 'echo from the task'],
      environment: { provider: 'local', name: 'for-a-task' },
    });
    expect(r.status).toBe(201);
    const envId = r.json.environment.id as string;
    expect(r.json.task.environmentId).toBe(envId);
    expect(r.json.environment).toMatchObject({ name: 'for-a-task', provider: 'local' });
    const ended = (await taskDone(r.json.task.id as string)).json.task.state as string;
    expect(ended).toBe('succeeded');
    expect((await alice.get(`/api/v1/tasks/${r.json.task.id}/logs`)).json.data).toBe('from the task\n');
    const gone = await waiter.until(
      () => envState(envId),
      (x) => x.json.environment.state === 'destroyed',
    );
    expect(gone.json.environment.state).toBe('destroyed');
    const ev = await alice.get(`/api/v1/environments/${envId}/events`);
    expect(ev.json.items.map((e: { message: string }) => e.message)).toContain(
      `destroy requested: its task ended (${ended})`,
    );
    // The debug view has the environment's side too.
    const d = await alice.get(`/api/v1/tasks/${r.json.task.id}/debug`);
    expect(d.json.task.id).toBe(r.json.task.id);
    expect(d.json.timeline.at(-1).to).toBe(ended);
    expect(d.json.environment.record.id).toBe(envId);
    expect(d.json.environment.events.items.length).toBeGreaterThan(0);
  });

  it('keep: true leaves the environment when the task ends', async () => {
    const r = await alice.post('/api/v1/tasks', {
      command: ['sh', '-c', 'true'],
      environment: { provider: 'local', keep: true },
    });
    const envId = r.json.environment.id as string;
    await taskDone(r.json.task.id as string);
    // The destroy would have been requested in the transaction that ended the task.
    expect((await envState(envId)).json.environment.state).not.toMatch(/destroy/);
    expect((await alice.del(`/api/v1/environments/${envId}`)).status).toBe(200);
  });

  it('refuses an environment of another user (404), both ways at once, and a bad spec (400), creating nothing', async () => {
    const bobsEnv = await bob.post('/api/v1/environments', { provider: 'fake' });
    expect(bobsEnv.status).toBe(201);
    const x = await alice.post('/api/v1/tasks', {
      command: ['x'],
      environmentId: bobsEnv.json.environment.id,
    });
    expect(x.status).toBe(404);
    expect(x.json.error.message).toContain('environment');
    const both = await alice.post('/api/v1/tasks', {
      command: ['x'],
      environmentId: bobsEnv.json.environment.id,
      environment: { provider: 'fake' },
    });
    expect(both.status).toBe(400);
    const before = (await alice.get('/api/v1/tasks?limit=200')).json.items.length;
    const bad = await alice.post('/api/v1/tasks', {
      command: ['x'],
      environment: { provider: 'nope' },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('unknown_provider');
    expect((await alice.get('/api/v1/tasks?limit=200')).json.items.length).toBe(before);
  });
});

describe('operator limits', () => {
  it('past the per-user maximum of concurrent tasks a new one is 429 with a hint; a retry of an admitted one is not', async () => {
    const carol = await memberClient(s, admin, 'carol-limit@example.com');
    const a = await carol.post('/api/v1/tasks', { command: ['fake:hang'] }, { 'idempotency-key': 'a' });
    const b = await carol.post('/api/v1/tasks', { command: ['fake:hang'] });
    expect([a.status, b.status]).toEqual([201, 201]);
    const c = await carol.post('/api/v1/tasks', { command: ['fake:hang'] });
    expect(c.status).toBe(429);
    expect(c.json.error).toMatchObject({ code: 'too_many_tasks', details: { active: 2, max: 2 } });
    expect(c.json.error.hint).toContain('berth task cancel');
    const retry = await carol.post('/api/v1/tasks', { command: ['fake:hang'] }, { 'idempotency-key': 'a' });
    expect(retry.status).toBe(200);
    // Another user is not affected by carol's count.
    const other = await bob.post('/api/v1/tasks', { command: ['fake:lines', '1'] });
    expect(other.status).toBe(201);
    // A canceled task frees its slot.
    await carol.post(`/api/v1/tasks/${a.json.task.id}/cancel`);
    const w = await LiveWaiter.connect(carol);
    try {
      await w.until(
        () => carol.get(`/api/v1/tasks/${a.json.task.id}`),
        (r) => r.json.task.state === 'canceled',
      );
    } finally {
      w.close();
    }
    const d = await carol.post('/api/v1/tasks', { command: ['fake:lines', '1'] });
    expect(d.status).toBe(201);
    await carol.post(`/api/v1/tasks/${b.json.task.id}/cancel`);
  });
});

describe('without workers (an API-only replica)', () => {
  it('canceling a queued task that brought an environment destroys the environment in the same transaction', async () => {
    const api = await startTestServer({ BERTH_PROVIDERS: 'fake', BERTH_WORKERS: 'false' });
    try {
      const root = new Client(api.url);
      await root.login(ADMIN.email, ADMIN.password);
      const dave = await memberClient(api, root, 'dave-queued@example.com');
      const r = await dave.post('/api/v1/tasks', { command: ['x'], environment: { provider: 'fake' } });
      const envId = r.json.environment.id as string;
      expect(r.json.task.state).toBe('queued');
      expect((await dave.get(`/api/v1/environments/${envId}`)).json.environment.state).toBe('pending');
      const c = await dave.post(`/api/v1/tasks/${r.json.task.id}/cancel`);
      expect(c.json.task.state).toBe('canceled');
      // Nothing runs here: what the cancel's transaction did is all there is to see.
      const env = (await dave.get(`/api/v1/environments/${envId}`)).json.environment;
      expect(env.state).toBe('destroying');
      const ev = await dave.get(`/api/v1/environments/${envId}/events`);
      expect(ev.json.items.at(-1).message).toBe('destroy requested: its task ended (canceled)');
      // With keep, a cancel leaves the environment alone.
      const keepers = await Promise.all(
        [1, 2].map(() =>
          dave.post('/api/v1/tasks', { command: ['x'], environment: { provider: 'fake', keep: true } }),
        ),
      );
      expect(keepers.map((k) => k.status)).toEqual([201, 201]);
      for (const k of keepers) await dave.post(`/api/v1/tasks/${k.json.task.id}/cancel`);
      for (const k of keepers)
        expect((await dave.get(`/api/v1/environments/${k.json.environment.id}`)).json.environment.state).toBe(
          'pending',
        );
    } finally {
      await api.stop();
    }
  });
});
