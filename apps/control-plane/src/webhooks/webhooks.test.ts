import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FakeProvider } from '@berth/providers';
import { transitionTask } from '@berth/db';
import { ADMIN, Client, memberClient, startTestServer, type TestServer } from '../testing/server.js';
import { verifySignature } from './secret.js';

// vi.waitFor gives up after 1 s unless told otherwise: too short for work that goes through the job
// queue (a worker, the provider, the Postgres the whole run shares) on a loaded CI machine. These
// waits allow 20 s; a state that never comes still fails them.
const SETTLE = { timeout: 20_000 };

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A real HTTP receiver on loopback that answers with the next scripted status (then 204). */
class Receiver {
  readonly got: Received[] = [];
  statuses: number[] = [];
  private waiters: Array<() => void> = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.statusCode = this.statuses.shift() ?? 204;
        res.end(res.statusCode >= 400 ? 'receiver is down' : '');
        for (const w of this.waiters.splice(0)) w();
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  /** Resolves once `n` requests have arrived in all. */
  async count(n: number): Promise<Received[]> {
    while (this.got.length < n) await new Promise<void>((r) => this.waiters.push(r));
    return this.got;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

let s: TestServer;
let admin: Client;
const receiver = new Receiver();
/**
 * The server's injected clock: real time (plus an offset) unless a test pins it; the retry test
 * moves it by hand. It never goes back, as the server's rate limits expect.
 */
let pinned: Date | undefined;
let offsetMs = 0;
const clock = { now: () => pinned ?? new Date(Date.now() + offsetMs) };
function unpin() {
  if (pinned) offsetMs = Math.max(offsetMs, pinned.getTime() - Date.now());
  pinned = undefined;
}

beforeAll(async () => {
  await receiver.start();
  s = await startTestServer(
    { BERTH_PROVIDERS: 'fake', BERTH_WEBHOOK_ALLOW_PRIVATE: '1', BERTH_WEBHOOK_RETRY_BASE_MS: '20' },
    { clock, providers: { fake: new FakeProvider() } },
  );
  admin = new Client(s.url);
  await admin.login(ADMIN.email, ADMIN.password);
});
afterAll(async () => {
  await s.stop();
  await receiver.stop();
});

/** The body of a task event, as a receiver parses it. */
interface TaskPayload {
  id: string;
  event: string;
  occurredAt: string;
  data: {
    task: { id: string; state: string; command: string[]; exitCode: number | null; finishedAt: string };
    failuresInARow?: number;
  };
}

async function deliveries(c: Client, hookId: string) {
  const r = await c.get(`/api/v1/webhooks/${hookId}/deliveries`);
  expect(r.status).toBe(200);
  return r.json.items as Array<{
    event: string;
    state: string;
    attempts: number;
    responseStatus: number | null;
    lastError: string | null;
  }>;
}

describe('webhooks', () => {
  it('an environment that stops is POSTed to the receiver, signed with the secret shown at creation', async () => {
    const created = await admin.post('/api/v1/webhooks', {
      url: receiver.url,
      events: ['environment.stopped'],
    });
    expect(created.status).toBe(201);
    const secret = created.json.secret as string;
    expect(secret).toMatch(/^whsec_/);
    // Shown once: reading the webhook again does not reveal it.
    expect((await admin.get(`/api/v1/webhooks/${created.json.id}`)).json.secret).toBeUndefined();

    const env = await admin.post('/api/v1/environments', { name: 'hooked' });
    const envId = env.json.environment.id as string;
    await vi.waitFor(
      async () =>
        expect((await admin.get(`/api/v1/environments/${envId}`)).json.environment.state).toBe('ready'),
      SETTLE,
    );
    const before = receiver.got.length;
    expect((await admin.post(`/api/v1/environments/${envId}/stop`)).status).toBe(200);
    const [got] = (await receiver.count(before + 1)).slice(before);
    const body = JSON.parse(got!.body);
    expect(got!.headers['berth-event']).toBe('environment.stopped');
    expect(body).toMatchObject({
      event: 'environment.stopped',
      data: {
        environment: {
          id: envId,
          name: 'hooked',
          state: 'stopped',
          reason: `stop requested by ${ADMIN.email}`,
        },
      },
    });
    expect(body.id).toBe(got!.headers['berth-delivery']);
    const sig = String(got!.headers['berth-signature']);
    expect(verifySignature(secret, got!.body, sig, Math.floor(Date.now() / 1000))).toBe(true);
    // A forged body or another secret does not verify.
    expect(
      verifySignature(secret, got!.body.replace('hooked', 'hacked'), sig, Math.floor(Date.now() / 1000)),
    ).toBe(false);
    const rotated = await admin.post(`/api/v1/webhooks/${created.json.id}/rotate-secret`);
    expect(rotated.json.secret).not.toBe(secret);
    expect(
      verifySignature(rotated.json.secret as string, got!.body, sig, Math.floor(Date.now() / 1000)),
    ).toBe(false);

    await vi.waitFor(
      async () =>
        expect(await deliveries(admin, created.json.id as string)).toEqual([
          expect.objectContaining({
            event: 'environment.stopped',
            state: 'succeeded',
            attempts: 1,
            responseStatus: 204,
          }),
        ]),
      SETTLE,
    );
    await admin.del(`/api/v1/webhooks/${created.json.id}`);
  });

  it('a failing receiver is retried with growing gaps between attempts, then the delivery is marked failed with its last answer', async () => {
    const hook = await admin.post('/api/v1/webhooks', { url: receiver.url, events: ['environment.stopped'] });
    receiver.statuses = Array.from({ length: 8 }, () => 503);
    const before = receiver.got.length;
    // The clock stands still a minute ahead: the first attempt is due at once (queued at database
    // time, before it), and each retry waits until the test moves the clock to the time it was
    // scheduled for. So each gap is read exactly: when the retry is due minus when the attempt failed.
    let at = new Date(clock.now().getTime() + 60_000);
    pinned = at;
    try {
      const ping = await admin.post(`/api/v1/webhooks/${hook.json.id}/ping`);
      expect(ping.status).toBe(202);
      const job = async () =>
        (
          await s.pool.query<{ state: string; attempts: number; run_at: Date; updated_at: Date }>(
            `SELECT state, attempts, run_at, updated_at FROM jobs
             WHERE kind = 'webhook.deliver' AND payload->>'deliveryId' = $1`,
            [ping.json.id],
          )
        ).rows[0];
      const gaps: number[] = [];
      for (let attempt = 1; attempt < 8; attempt++) {
        const retry = await vi.waitFor(
          async () => {
            const j = await job();
            expect(j).toMatchObject({ state: 'ready', attempts: attempt });
            return j!;
          },
          { timeout: 15_000 },
        );
        expect(retry.updated_at).toEqual(at); // failed at the pinned time
        expect((await deliveries(admin, hook.json.id as string))[0]).toMatchObject({
          state: 'pending',
          attempts: attempt,
          responseStatus: 503,
        });
        gaps.push(retry.run_at.getTime() - at.getTime());
        at = retry.run_at;
        pinned = at;
      }
      await vi.waitFor(
        async () =>
          expect(await deliveries(admin, hook.json.id as string)).toEqual([
            expect.objectContaining({ event: 'ping', state: 'failed', attempts: 8, responseStatus: 503 }),
          ]),
        { timeout: 15_000 },
      );
      expect(
        receiver.got.slice(before).filter((g) => g.headers['berth-delivery'] === ping.json.id),
      ).toHaveLength(8);
      // Marked failed by the last attempt itself: its job ends there, nothing more is scheduled.
      await vi.waitFor(async () => expect(await job()).toBeUndefined(), SETTLE);
      // Exponential backoff from BERTH_WEBHOOK_RETRY_BASE_MS (20), doubling, with up to half of
      // each gap random: gap n is within [20·2ⁿ⁻¹/2, 20·2ⁿ⁻¹], so never shorter than the one before,
      // and more than the one two before.
      gaps.forEach((gap, i) => {
        expect(gap).toBeGreaterThanOrEqual((20 * 2 ** i) / 2);
        expect(gap).toBeLessThanOrEqual(20 * 2 ** i);
        if (i >= 1) expect(gap).toBeGreaterThanOrEqual(gaps[i - 1]!);
        if (i >= 2) expect(gap).toBeGreaterThan(gaps[i - 2]!);
      });
    } finally {
      unpin();
    }
    const [d] = await deliveries(admin, hook.json.id as string);
    expect(d!.lastError).toContain('receiver answered 503: receiver is down');

    // Recovering: the next ping succeeds at once and is listed first.
    receiver.statuses = [];
    await admin.post(`/api/v1/webhooks/${hook.json.id}/ping`);
    await vi.waitFor(
      async () => expect((await deliveries(admin, hook.json.id as string))[0]?.state).toBe('succeeded'),
      SETTLE,
    );
    await admin.del(`/api/v1/webhooks/${hook.json.id}`);
  });

  it('task events: finished, failed, timed out, and one alert when the same command fails N times in a row', async () => {
    const hook = await admin.post('/api/v1/webhooks', {
      url: receiver.url,
      events: ['task.finished', 'task.failed', 'task.timed_out', 'task.failure_streak'],
      failureStreak: 3,
    });
    const secret = hook.json.secret as string;
    const me = (await admin.get('/api/v1/me')).json.user.id as string;
    /** What each task ended as, by id: what its task.finished delivery must say. */
    const ended = new Map<string, { command: string[]; state: string; exitCode: number | null }>();
    // Tasks moved by the engine's own transition function, as a worker does when a process exits.
    const run = async (command: string[], end: 'succeeded' | 'failed' | 'timed_out') => {
      const { rows } = await s.pool.query<{ id: string }>(
        `INSERT INTO tasks (owner_id, command, timeout_seconds, state) VALUES ($1, $2, 60, 'running') RETURNING id`,
        [me, command],
      );
      const id = rows[0]!.id;
      const exitCode = end === 'failed' ? 1 : null;
      await transitionTask(s.pool, id, { to: end, now: new Date(), exitCode });
      ended.set(id, { command, state: end, exitCode });
      return id;
    };
    const before = receiver.got.length;
    await run(['make', 'test'], 'failed');
    await run(['make', 'test'], 'timed_out');
    await run(['make', 'lint'], 'succeeded'); // another command does not break the streak
    const third = await run(['make', 'test'], 'failed');
    await run(['make', 'test'], 'failed'); // the fourth in a row: no second alert
    // task.finished for each of the 5; then failed, timed_out, failed + streak, failed: 10 deliveries
    const got = (await receiver.count(before + 10)).slice(before).map((g) => ({
      ...g,
      json: JSON.parse(g.body) as TaskPayload,
    }));
    expect(got.map((g) => g.json.event).sort()).toEqual(
      [
        ...Array.from({ length: 5 }, () => 'task.finished'),
        'task.failed',
        'task.failed',
        'task.failed',
        'task.failure_streak',
        'task.timed_out',
      ].sort(),
    );
    const streak = got.find((g) => g.json.event === 'task.failure_streak')!;
    expect(streak.json.data).toMatchObject({ failuresInARow: 3, task: { id: third } });

    // task.finished: one per task, whatever its end, saying what it ended as; signed like the rest.
    const finished = got.filter((g) => g.json.event === 'task.finished');
    expect(finished.map((g) => g.json.data.task.id).sort()).toEqual([...ended.keys()].sort());
    for (const g of finished) {
      expect(g.headers['berth-event']).toBe('task.finished');
      expect(g.json.id).toBe(g.headers['berth-delivery']);
      expect(g.json.data.task).toMatchObject(ended.get(g.json.data.task.id)!);
      expect(Date.parse(g.json.data.task.finishedAt)).not.toBeNaN();
      expect(Date.parse(g.json.occurredAt)).not.toBeNaN();
      const sig = String(g.headers['berth-signature']);
      expect(verifySignature(secret, g.body, sig, Math.floor(clock.now().getTime() / 1000))).toBe(true);
    }
    await admin.del(`/api/v1/webhooks/${hook.json.id}`);
  });

  it('validates the URL and events, and keeps each user to their own webhooks', async () => {
    for (const [body, field] of [
      [{ url: 'ftp://example.com/x', events: ['task.failed'] }, 'url'],
      [{ url: 'https://user:pw@example.com/x', events: ['task.failed'] }, 'url'],
      [{ url: 'https://example.com/x', events: [] }, 'events'],
      [{ url: 'https://example.com/x', events: ['task.exploded'] }, 'events'],
    ] as const) {
      const r = await admin.post('/api/v1/webhooks', body);
      expect(r.status).toBe(400);
      expect(r.json.error.message).toContain(field);
    }
    const mine = await admin.post('/api/v1/webhooks', {
      url: 'https://example.com/x',
      events: ['task.failed'],
    });
    const other = await memberClient(s, admin, 'hooks-other@example.com');
    for (const r of [
      await other.get(`/api/v1/webhooks/${mine.json.id}`),
      await other.get(`/api/v1/webhooks/${mine.json.id}/deliveries`),
      await other.post(`/api/v1/webhooks/${mine.json.id}/ping`),
      await other.post(`/api/v1/webhooks/${mine.json.id}/rotate-secret`),
      await other.del(`/api/v1/webhooks/${mine.json.id}`),
    ])
      expect(r.status).toBe(404);
    expect((await other.get('/api/v1/webhooks')).json.items).toEqual([]);
    expect((await admin.get(`/api/v1/webhooks/${mine.json.id}`)).status).toBe(200);
  });
});
