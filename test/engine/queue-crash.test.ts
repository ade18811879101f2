import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPool, enqueueJobs, type Pool } from '@berth/db';
import { createTestDatabase, openConnections, type TestDatabase } from '@berth/db/testing';
import { testCatalog } from './fixtures/catalog.js';
import { randomBetween, spawnFixture, until, type Child } from './helpers.js';

const JOBS = 2000;

describe('queue under crashes (real processes, SIGKILL)', () => {
  let db: TestDatabase;
  let pool: Pool;
  const children: Child[] = [];

  beforeEach(async () => {
    db = await createTestDatabase();
    pool = createPool(db.url, 4);
    // No unique constraint: a job applied twice must show up as two rows, not be hidden by an error.
    await pool.query(
      `CREATE TABLE ledger (n integer NOT NULL, worker text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`,
    );
    await pool.query(`CREATE TABLE runs (n integer NOT NULL, worker text NOT NULL)`);
    const specs = Array.from({ length: JOBS }, (_, n) => ({ kind: 'test.ledger' as const, payload: { n } }));
    for (let i = 0; i < JOBS; i += 500) await enqueueJobs(pool, testCatalog, specs.slice(i, i + 500));
  });

  afterEach(async () => {
    for (const c of children.splice(0)) {
      if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
      await c.exited;
    }
    await pool.end();
    // Backends of killed processes end when Postgres sees their sockets close.
    await until(
      async () => (await openConnections(inject('pgAdminUrl'), db.name)) === 0,
      'connections to close',
      10_000,
    );
    await db.drop();
  });

  const spawnWorker = (extra: { concurrency?: number; leaseMs?: number; maxPauseMs?: number } = {}) => {
    const c = spawnFixture('queue-worker.ts', {
      ENGINE_TEST_CONFIG: JSON.stringify({
        url: db.url,
        concurrency: 5,
        leaseMs: 1500,
        maxPauseMs: 4,
        ...extra,
      }),
    });
    children.push(c);
    return c;
  };

  const ledgerStats = async () => {
    const { rows } = await pool.query<{ total: number; distinct: number }>(
      'SELECT count(*)::int AS total, count(DISTINCT n)::int AS distinct FROM ledger',
    );
    return rows[0]!;
  };
  const jobsLeft = async () =>
    (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM jobs')).rows[0]!.n;

  it('kill -9 workers at random points while 3 drain 2,000 jobs: every effect exactly once, none lost, expired leases reaped', async () => {
    const live: Child[] = [];
    const ids = new Map<Child, string>();
    const start = (c: Child) => {
      live.push(c);
      void c.ready.then(
        (id) => ids.set(c, id),
        () => undefined,
      );
      return c.ready;
    };
    await Promise.all([
      start(spawnWorker({ maxPauseMs: 10 })),
      start(spawnWorker({ maxPauseMs: 10 })),
      start(spawnWorker({ maxPauseMs: 10 })),
    ]);
    const killedIds: string[] = [];

    while (killedIds.length < 5 && (await jobsLeft()) > 100) {
      await sleep(randomBetween(100, 400));
      // Kill one that holds leases right now, so the crash lands mid-job; a replacement starts
      // in the background (a process takes a while to boot here) and joins when ready.
      const { rows } = await pool.query<{ locked_by: string }>(
        `SELECT DISTINCT locked_by FROM jobs WHERE state = 'running'`,
      );
      const holding = live.filter((c) => rows.some((r) => r.locked_by === ids.get(c)));
      const victim = holding[Math.floor(Math.random() * holding.length)];
      if (!victim) continue;
      victim.proc.kill('SIGKILL');
      await victim.exited;
      killedIds.push(ids.get(victim)!);
      live.splice(live.indexOf(victim), 1);
      void start(spawnWorker({ maxPauseMs: 10 }));
    }
    await Promise.all(live.map((c) => c.ready));
    expect(killedIds.length).toBeGreaterThanOrEqual(3);

    await until(async () => (await jobsLeft()) === 0, 'the queue to drain');

    const stats = await ledgerStats();
    expect(stats).toEqual({ total: JOBS, distinct: JOBS });
    const { rows: dead } = await pool.query(`SELECT id FROM jobs WHERE state = 'dead'`);
    expect(dead).toEqual([]);

    // Leases of killed workers were reaped, and only theirs: no live worker lost a job.
    const { rows: reaped } = await pool.query<{ worker_id: string; n: number }>(
      `SELECT worker_id, count(*)::int AS n FROM job_lease_expirations GROUP BY worker_id`,
    );
    expect(reaped.length).toBeGreaterThan(0);
    for (const r of reaped) expect(killedIds).toContain(r.worker_id);
    // Runs beyond one per job are exactly the crashed attempts re-run elsewhere.
    const { rows: reruns } = await pool.query<{ n: number }>(
      `SELECT count(*)::int - count(DISTINCT n)::int AS n FROM runs`,
    );
    expect(reruns[0]!.n).toBeGreaterThan(0);

    // Survivors stop gracefully.
    for (const c of live) c.proc.kill('SIGTERM');
    for (const c of live) expect(await c.exited).toEqual({ code: 0, signal: null });
  });

  it('two control planes on one database: no job runs twice', async () => {
    const a = spawnWorker({ concurrency: 10, maxPauseMs: 2 });
    const b = spawnWorker({ concurrency: 10, maxPauseMs: 2 });
    await Promise.all([a.ready, b.ready]);
    await until(async () => (await jobsLeft()) === 0, 'the queue to drain');
    const { rows } = await pool.query<{ runs: number; distinct: number; workers: number }>(
      `SELECT count(*)::int AS runs, count(DISTINCT n)::int AS distinct, count(DISTINCT worker)::int AS workers FROM runs`,
    );
    // Each handler ran once: claims never overlapped (not merely effects deduplicated).
    expect(rows[0]).toEqual({ runs: JOBS, distinct: JOBS, workers: 2 });
    expect(await ledgerStats()).toEqual({ total: JOBS, distinct: JOBS });
    a.proc.kill('SIGTERM');
    b.proc.kill('SIGTERM');
    expect(await a.exited).toEqual({ code: 0, signal: null });
    expect(await b.exited).toEqual({ code: 0, signal: null });
  });

  it('a graceful stop mid-drain hands unfinished jobs back; a new worker finishes them', async () => {
    const a = spawnWorker({ concurrency: 5, maxPauseMs: 20, leaseMs: 60_000 });
    await a.ready;
    await until(async () => (await ledgerStats()).total > 50, 'some progress');
    a.proc.kill('SIGTERM');
    expect(await a.exited).toEqual({ code: 0, signal: null });
    const { rows } = await pool.query(`SELECT id FROM jobs WHERE state = 'running'`);
    expect(rows).toEqual([]); // nothing left holding a 60 s lease
    const b = spawnWorker({ concurrency: 10, maxPauseMs: 0, leaseMs: 60_000 });
    await b.ready;
    await until(async () => (await jobsLeft()) === 0, 'the queue to drain');
    expect(await ledgerStats()).toEqual({ total: JOBS, distinct: JOBS });
    b.proc.kill('SIGTERM');
    expect(await b.exited).toEqual({ code: 0, signal: null });
  });
});
