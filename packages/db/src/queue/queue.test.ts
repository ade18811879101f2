import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { Registry } from 'prom-client';
import { z } from 'zod';
import { createPool, transaction, type Pool } from '../pool.js';
import { createTestDatabase, openConnections, type TestDatabase } from '../testing/index.js';
import {
  PermanentJobError,
  backoffMs,
  claimJobs,
  enqueueJob,
  enqueueJobs,
  getJob,
  queueDepth,
  reapExpiredLeases,
  type Clock,
} from './jobs.js';
import { registerQueueMetrics } from './metrics.js';
import { WorkerPool, type WorkerEvent } from './worker.js';

const catalog = {
  'test.ledger': z.object({ n: z.number().int() }),
  'test.flaky': z.object({ failTimes: z.number().int() }),
  'test.poison': z.object({}),
};

/** Resolves when `pred` holds for an event the pool reports. */
function eventWaiter() {
  const waiters: Array<{ pred: (e: WorkerEvent) => boolean; resolve: () => void }> = [];
  return {
    onEvent: (e: WorkerEvent) => {
      // One event settles one waiter, so "two completions" really waits for two.
      const i = waiters.findIndex((w) => w.pred(e));
      if (i >= 0) waiters.splice(i, 1)[0]!.resolve();
    },
    next: (pred: (e: WorkerEvent) => boolean) =>
      new Promise<void>((resolve) => waiters.push({ pred, resolve })),
  };
}

describe('job queue', () => {
  let db: TestDatabase;
  let pool: Pool;
  const workers: WorkerPool<typeof catalog>[] = [];

  beforeEach(async () => {
    db = await createTestDatabase();
    pool = createPool(db.url, 12);
    await pool.query(`CREATE TABLE ledger (n integer PRIMARY KEY, worker text NOT NULL)`);
  });

  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop(1000);
    await pool.end();
    expect(await openConnections(inject('pgAdminUrl'), db.name)).toBe(0);
    await db.drop();
  });

  function worker(opts: Partial<ConstructorParameters<typeof WorkerPool<typeof catalog>>[0]> = {}) {
    const w = new WorkerPool({
      pool,
      url: db.url,
      catalog,
      handlers: {
        'test.ledger': async ({ n }, ctx) => {
          await ctx.complete(async (tx) => {
            await tx.query('INSERT INTO ledger (n, worker) VALUES ($1, $2)', [n, ctx.workerId]);
          });
        },
      },
      ...opts,
    });
    workers.push(w);
    return w;
  }

  it('a job enqueued in a rolled-back transaction does not exist; a committed one runs once with its effect', async () => {
    await expect(
      transaction(pool, async (tx) => {
        await enqueueJob(tx, catalog, 'test.ledger', { n: 1 });
        throw new Error('the state change failed');
      }),
    ).rejects.toThrow('the state change failed');
    expect((await queueDepth(pool)).ready).toBe(0);

    const ev = eventWaiter();
    const w = worker({ onEvent: ev.onEvent });
    await w.start();
    const done = ev.next((e) => e.type === 'completed');
    await transaction(pool, (tx) => enqueueJob(tx, catalog, 'test.ledger', { n: 2 }));
    await done;
    const { rows } = await pool.query('SELECT n FROM ledger');
    expect(rows).toEqual([{ n: 2 }]);
    expect(await queueDepth(pool)).toEqual({ ready: 0, running: 0, dead: 0 });
  });

  it('rejects payloads that do not match the catalog at enqueue', async () => {
    await expect(enqueueJob(pool, catalog, 'test.ledger', { n: 'x' } as never)).rejects.toThrow();
    await expect(enqueueJob(pool, catalog, 'nope' as never, {} as never)).rejects.toThrow(/unknown job kind/);
  });

  it('dedupe keys: a second enqueue while the first waits is a no-op; once it is claimed, a new one is made', async () => {
    const a = await enqueueJob(pool, catalog, 'test.ledger', { n: 1 }, { dedupeKey: 'k' });
    const b = await enqueueJob(pool, catalog, 'test.ledger', { n: 1 }, { dedupeKey: 'k' });
    expect(a).not.toBeNull();
    expect(b).toBeNull();
    await claimJobs(pool, {
      workerId: 'w',
      now: new Date(),
      leaseMs: 1000,
      limit: 1,
      kinds: ['test.ledger'],
    });
    const c = await enqueueJob(pool, catalog, 'test.ledger', { n: 1 }, { dedupeKey: 'k' });
    expect(c).not.toBeNull();
  });

  it('retries with backoff, then marks the job dead with its last error', async () => {
    let calls = 0;
    const ev = eventWaiter();
    const w = worker({
      onEvent: ev.onEvent,
      backoff: { baseMs: 1, maxMs: 5 },
      pollMs: 20,
      handlers: {
        'test.flaky': async () => {
          calls++;
          throw new Error(`boom ${calls}`);
        },
      },
    });
    const dead = ev.next((e) => e.type === 'failed' && e.state === 'dead');
    const id = await enqueueJob(pool, catalog, 'test.flaky', { failTimes: 99 }, { maxAttempts: 3 });
    await w.start();
    await dead;
    const job = await getJob(pool, id!);
    expect(job?.state).toBe('dead');
    expect(job?.attempts).toBe(3);
    expect(job?.last_error).toContain('boom 3');
    expect(calls).toBe(3);
  });

  it('a permanent error or an invalid stored payload kills the job at once', async () => {
    const ev = eventWaiter();
    const w = worker({
      onEvent: ev.onEvent,
      handlers: {
        'test.poison': async () => {
          throw new PermanentJobError('cannot ever work');
        },
        'test.ledger': async () => undefined,
      },
    });
    const id1 = await enqueueJob(pool, catalog, 'test.poison', {});
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO jobs (kind, payload) VALUES ('test.ledger', '{"n":"bad"}') RETURNING id`,
    );
    const both = Promise.all([
      ev.next((e) => e.type === 'failed' && e.job.id === id1),
      ev.next((e) => e.type === 'failed' && e.job.id === rows[0]!.id),
    ]);
    await w.start();
    await both;
    expect((await getJob(pool, id1!))?.state).toBe('dead');
    const bad = await getJob(pool, rows[0]!.id);
    expect(bad?.state).toBe('dead');
    expect(bad?.attempts).toBe(1);
    expect(bad?.last_error).toContain('invalid payload');
  });

  it('the reaper (injected clock) frees an expired lease, records why, and fences the old holder', async () => {
    const id = await enqueueJob(pool, catalog, 'test.ledger', { n: 7 });
    const t0 = new Date();
    const [claimed] = await claimJobs(pool, {
      workerId: 'crashed-worker',
      now: t0,
      leaseMs: 1000,
      limit: 1,
      kinds: ['test.ledger'],
    });
    expect(claimed?.id).toBe(id);

    const before: Clock = { now: () => new Date(t0.getTime() + 500) };
    expect(await reapExpiredLeases(pool, before, 'reaper')).toEqual({ requeued: 0, dead: 0 });
    const after: Clock = { now: () => new Date(t0.getTime() + 1500) };
    expect(await reapExpiredLeases(pool, after, 'reaper')).toEqual({ requeued: 1, dead: 0 });

    const { rows } = await pool.query(
      `SELECT job_id, worker_id, outcome, reaped_by FROM job_lease_expirations`,
    );
    expect(rows).toEqual([
      { job_id: id, worker_id: 'crashed-worker', outcome: 'requeued', reaped_by: 'reaper' },
    ]);
    const job = await getJob(pool, id!);
    expect(job?.state).toBe('ready');
    expect(job?.last_error).toMatch(/lease expired: worker crashed-worker/);

    // The old holder wakes up and tries to complete: fenced, its effect is rolled back.
    const { completeJobIn } = await import('./jobs.js');
    await expect(
      transaction(pool, async (tx) => {
        await completeJobIn(tx, claimed!, 'crashed-worker');
        await tx.query(`INSERT INTO ledger (n, worker) VALUES (7, 'crashed-worker')`);
      }),
    ).rejects.toThrow(/lease on job/);

    const ev = eventWaiter();
    const w = worker({ onEvent: ev.onEvent });
    const done = ev.next((e) => e.type === 'completed');
    await w.start();
    await done;
    const ledger = await pool.query('SELECT n, worker FROM ledger');
    expect(ledger.rows).toEqual([{ n: 7, worker: w.workerId }]);
  });

  it('a job that used all its attempts dies when its lease expires (a job that kills its worker cannot loop)', async () => {
    await enqueueJob(pool, catalog, 'test.ledger', { n: 1 }, { maxAttempts: 1 });
    const t0 = new Date();
    await claimJobs(pool, { workerId: 'w', now: t0, leaseMs: 10, limit: 1, kinds: ['test.ledger'] });
    expect(await reapExpiredLeases(pool, { now: () => new Date(t0.getTime() + 100) }, 'r')).toEqual({
      requeued: 0,
      dead: 1,
    });
  });

  it('backoff grows exponentially with jitter and is capped', () => {
    const p = { baseMs: 100, maxMs: 1000 };
    expect(backoffMs(1, p, () => 0)).toBe(50);
    expect(backoffMs(1, p, () => 1)).toBe(100);
    expect(backoffMs(3, p, () => 1)).toBe(400);
    expect(backoffMs(10, p, () => 1)).toBe(1000);
  });

  it('work is still picked up after the LISTEN connection is terminated (no poll to fall back on)', async () => {
    const ev = eventWaiter();
    const w = worker({ onEvent: ev.onEvent, pollMs: 600_000 });
    await w.start();
    const admin = createPool(inject('pgAdminUrl'), 1);
    const terminate = async () => {
      const { rows } = await admin.query<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'berth-listen'`,
        [db.name],
      );
      expect(rows[0]?.n).toBe(1);
    };
    try {
      // A job enqueued while the listener is down: its NOTIFY is lost; the reconnect's nudge finds it.
      let relistened = ev.next((e) => e.type === 'listening');
      const first = ev.next((e) => e.type === 'completed');
      await terminate();
      await enqueueJob(pool, catalog, 'test.ledger', { n: 41 });
      await relistened;
      await first;
      // And once reconnected, nudges arrive again.
      relistened = ev.next((e) => e.type === 'listening');
      await terminate();
      await relistened;
      const second = ev.next((e) => e.type === 'completed');
      await enqueueJob(pool, catalog, 'test.ledger', { n: 42 });
      await second;
    } finally {
      await admin.end();
    }
    expect((await pool.query('SELECT n FROM ledger ORDER BY n')).rows).toEqual([{ n: 41 }, { n: 42 }]);
  });

  it('registers queue metrics on a given registry, queue depth read at scrape time', async () => {
    const registry = new Registry();
    const metrics = registerQueueMetrics(registry, pool);
    await enqueueJobs(pool, catalog, [
      { kind: 'test.ledger', payload: { n: 1 } },
      { kind: 'test.ledger', payload: { n: 2 } },
    ]);
    const ev = eventWaiter();
    const w = worker({ metrics, onEvent: ev.onEvent });
    const two = Promise.all([ev.next((e) => e.type === 'completed'), ev.next((e) => e.type === 'completed')]);
    const text1 = await registry.metrics();
    expect(text1).toContain('berth_jobs_queue_depth{state="ready"} 2');
    await w.start();
    await two;
    const text2 = await registry.metrics();
    expect(text2).toContain('berth_jobs_queue_depth{state="ready"} 0');
    expect(text2).toMatch(/berth_jobs_claim_latency_seconds_count\{kind="test.ledger"\} 2/);
    expect(text2).toMatch(/berth_jobs_duration_seconds_count\{kind="test.ledger",outcome="completed"\} 2/);
  });

  it('graceful stop releases a job whose handler does not finish in time', async () => {
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const w = worker({
      handlers: {
        'test.ledger': (_p, ctx) =>
          new Promise<void>((_resolve, reject) => {
            started();
            ctx.signal.addEventListener('abort', () => reject(new Error('aborted')));
          }),
      },
    });
    const id = await enqueueJob(pool, catalog, 'test.ledger', { n: 1 });
    await w.start();
    await running;
    await w.stop(50);
    workers.length = 0;
    const job = await getJob(pool, id!);
    expect(job).toMatchObject({ state: 'ready', attempts: 0, locked_by: null });
  });
});
