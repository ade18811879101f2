/**
 * Queue benchmark: Berth's job engine against graphile-worker, same machine, same Postgres
 * (one embedded server, fsync on, default settings), interleaved rounds because the machine is
 * noisy. Each contender gets its own database on that server.
 *
 *   npm run bench:queue [-- --quick] [--json-out FILE]
 *
 * (1) drain: N no-op jobs enqueued up front, then workers with concurrency 10 start; jobs/s
 *     from start until the queue table is empty.
 * (2) wake: jobs enqueued one at a time, 10 ms apart, into idle workers; latency from the
 *     enqueue call to the handler starting.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { z } from 'zod';
import { Logger, makeWorkerUtils, run, runMigrations, type Runner, type WorkerUtils } from 'graphile-worker';
import {
  WorkerPool,
  createPool,
  enqueueJob,
  enqueueJobs,
  migrate,
  startEmbeddedPostgres,
  withDatabase,
  type Pool,
} from '@berth/db';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonOutIdx = args.indexOf('--json-out');
const jsonOut = jsonOutIdx >= 0 ? args[jsonOutIdx + 1] : undefined;

const DRAIN_JOBS = quick ? 2000 : 20_000;
const DRAIN_ROUNDS = quick ? 1 : 3;
const WAKE_JOBS = quick ? 100 : 500;
const WAKE_BLOCK = quick ? 50 : 100;
const WAKE_GAP_MS = 10;
const CONCURRENCY = 10;
const POOL_MAX = 20;

const log = (line: string) => process.stderr.write(line + '\n');
const silentGraphileLogger = new Logger(() => () => undefined);

interface Contender {
  name: 'berth' | 'graphile-worker';
  /** Enqueue n jobs in bulk (not measured). */
  fill(n: number): Promise<void>;
  /** Start workers whose handler calls `onJob`; resolves once they are running. */
  startWorkers(onJob: (payload: { t?: number }) => void): Promise<void>;
  stopWorkers(): Promise<void>;
  /** Enqueue one job carrying the enqueue-call time, the way an API request would. */
  enqueueOne(t: number): Promise<void>;
  remaining(): Promise<number>;
  close(): Promise<void>;
}

const catalog = { 'bench.noop': z.object({ t: z.number().optional() }) };

async function berthContender(url: string): Promise<Contender> {
  await migrate(url);
  const pool: Pool = createPool(url, POOL_MAX);
  let workers: WorkerPool<typeof catalog> | undefined;
  return {
    name: 'berth',
    async fill(n) {
      for (let i = 0; i < n; i += 1000) {
        const specs = Array.from({ length: Math.min(1000, n - i) }, () => ({
          kind: 'bench.noop' as const,
          payload: {},
        }));
        await enqueueJobs(pool, catalog, specs);
      }
    },
    async startWorkers(onJob) {
      workers = new WorkerPool({
        pool,
        url,
        catalog,
        concurrency: CONCURRENCY,
        handlers: { 'bench.noop': async (p) => onJob(p) },
      });
      await workers.start();
    },
    async stopWorkers() {
      await workers?.stop();
      workers = undefined;
    },
    async enqueueOne(t) {
      await enqueueJob(pool, catalog, 'bench.noop', { t });
    },
    async remaining() {
      const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM jobs');
      return rows[0]?.n ?? 0;
    },
    close: () => pool.end(),
  };
}

async function graphileContender(url: string): Promise<Contender> {
  const pgPool = new pg.Pool({ connectionString: url, max: POOL_MAX });
  pgPool.on('error', () => undefined);
  await runMigrations({ pgPool, logger: silentGraphileLogger });
  const utils: WorkerUtils = await makeWorkerUtils({ pgPool, logger: silentGraphileLogger });
  let runner: Runner | undefined;
  return {
    name: 'graphile-worker',
    async fill(n) {
      for (let i = 0; i < n; i += 1000) {
        const specs = Array.from({ length: Math.min(1000, n - i) }, () => ({
          identifier: 'noop',
          payload: {},
        }));
        await utils.addJobs(specs);
      }
    },
    async startWorkers(onJob) {
      runner = await run({
        pgPool,
        concurrency: CONCURRENCY,
        noHandleSignals: true,
        pollInterval: 2000,
        logger: silentGraphileLogger,
        taskList: { noop: async (p) => onJob(p as { t?: number }) },
      });
    },
    async stopWorkers() {
      await runner?.stop();
      runner = undefined;
    },
    async enqueueOne(t) {
      await utils.addJob('noop', { t });
    },
    async remaining() {
      const { rows } = await pgPool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM graphile_worker._private_jobs',
      );
      return rows[0]?.n ?? 0;
    },
    async close() {
      await utils.release();
      await pgPool.end();
    },
  };
}

async function drainRound(c: Contender): Promise<number> {
  await c.fill(DRAIN_JOBS);
  let ran = 0;
  let allRan!: () => void;
  const done = new Promise<void>((r) => (allRan = r));
  const t0 = performance.now();
  await c.startWorkers(() => {
    if (++ran === DRAIN_JOBS) allRan();
  });
  await done;
  // The last completions commit just after their handlers return: count until the table is empty.
  while ((await c.remaining()) > 0) await sleep(5);
  const seconds = (performance.now() - t0) / 1000;
  await c.stopWorkers();
  if (ran !== DRAIN_JOBS) throw new Error(`${c.name}: ${ran} handler runs for ${DRAIN_JOBS} jobs`);
  return DRAIN_JOBS / seconds;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-queue-'));
  const server = await startEmbeddedPostgres({ dataDir: dir });
  const contenders: Contender[] = [];
  try {
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    const { rows } = await admin.query<{ fsync: string; sc: string }>(
      `SELECT current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS sc`,
    );
    log(`postgres: fsync=${rows[0]?.fsync} synchronous_commit=${rows[0]?.sc}`);
    await admin.query('CREATE DATABASE bench_berth');
    await admin.query('CREATE DATABASE bench_graphile');
    await admin.end();
    contenders.push(await berthContender(withDatabase(server.url, 'bench_berth')));
    contenders.push(await graphileContender(withDatabase(server.url, 'bench_graphile')));

    // (1) drain, interleaved and alternating who goes first.
    const drain: Record<string, number[]> = { berth: [], 'graphile-worker': [] };
    for (let r = 0; r < DRAIN_ROUNDS; r++) {
      const order = r % 2 === 0 ? contenders : [...contenders].reverse();
      for (const c of order) {
        const jps = await drainRound(c);
        drain[c.name]!.push(jps);
        log(`drain round ${r + 1} ${c.name}: ${jps.toFixed(0)} jobs/s`);
      }
    }

    // (2) wake latency: both sets of workers idle and listening; blocks alternate between them.
    const lat: Record<string, number[]> = { berth: [], 'graphile-worker': [] };
    for (const c of contenders) {
      await c.startWorkers((p) => {
        if (typeof p.t === 'number') lat[c.name]!.push(performance.now() - p.t);
      });
    }
    await sleep(500); // let both settle into idle (first polls done)
    for (let sent = 0, b = 0; sent < WAKE_JOBS; sent += WAKE_BLOCK, b++) {
      const order = b % 2 === 0 ? contenders : [...contenders].reverse();
      for (const c of order) {
        for (let i = 0; i < WAKE_BLOCK; i++) {
          await c.enqueueOne(performance.now());
          await sleep(WAKE_GAP_MS);
        }
      }
    }
    for (const c of contenders) {
      while (lat[c.name]!.length < WAKE_JOBS) await sleep(10);
      await c.stopWorkers();
    }

    const results: Record<string, Record<string, number>> = {};
    for (const c of contenders) {
      const d = [...drain[c.name]!].sort((a, b) => a - b);
      const l = [...lat[c.name]!].sort((a, b) => a - b);
      results[c.name] = {
        drain_jobs_per_s: Math.round(percentile(d, 50)),
        wake_p50_ms: round3(percentile(l, 50)),
        wake_p95_ms: round3(percentile(l, 95)),
        wake_p99_ms: round3(percentile(l, 99)),
      };
    }
    const b = results.berth!;
    const g = results['graphile-worker']!;
    const out = {
      bench: 'queue',
      results,
      ratios: {
        drain_jobs_per_s_berth_over_graphile: round3(b.drain_jobs_per_s! / g.drain_jobs_per_s!),
        wake_p50_ms_berth_over_graphile: round3(b.wake_p50_ms! / g.wake_p50_ms!),
        wake_p95_ms_berth_over_graphile: round3(b.wake_p95_ms! / g.wake_p95_ms!),
        wake_p99_ms_berth_over_graphile: round3(b.wake_p99_ms! / g.wake_p99_ms!),
      },
      config: {
        quick,
        drain_jobs: DRAIN_JOBS,
        drain_rounds: DRAIN_ROUNDS,
        wake_jobs: WAKE_JOBS,
        concurrency: CONCURRENCY,
      },
    };
    const line = JSON.stringify(out);
    if (jsonOut) await writeFile(jsonOut, line + '\n');
    process.stdout.write(line + '\n');
  } finally {
    for (const c of contenders) await c.close().catch(() => undefined);
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
