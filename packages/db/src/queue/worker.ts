import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { z } from 'zod';
import type { JobCatalogShape } from '@berth/protocol';
import type { Pool, PoolClient } from '../pool.js';
import {
  LeaseLostError,
  PermanentJobError,
  backoffMs,
  claimJobs,
  completeJobIn,
  completeJobs,
  defaultBackoff,
  failJob,
  heartbeatJobs,
  reapExpiredLeases,
  releaseJobs,
  systemClock,
  type BackoffPolicy,
  type Clock,
  type JobRow,
} from './jobs.js';
import { JobListener, silentLogger, type QueueLogger } from './listener.js';
import type { QueueMetrics } from './metrics.js';
import { withJobSpan } from './tracing.js';

export interface JobContext {
  job: JobRow;
  workerId: string;
  /** The host this worker runs on. */
  node: string;
  /** Aborted when the lease is lost (reaped) or the pool is shutting down past its grace period. */
  signal: AbortSignal;
  /**
   * Applies the job's effects and completes it in one transaction. The job row is deleted first
   * (fenced on this worker and attempt), so if the lease was lost `fn` never runs and nothing is
   * applied; if `fn` throws, the job stays claimed and is retried. Call at most once.
   */
  complete<T>(fn: (tx: PoolClient) => Promise<T>): Promise<T>;
}

/**
 * A handler may call `ctx.complete` to apply effects atomically with completion; a handler that
 * just returns is completed by the pool (batched with others: its effects, if any, are outside
 * the database and must be idempotent). Throwing schedules a retry with backoff; throwing
 * PermanentJobError kills the job at once.
 */
export type JobHandler<P> = (payload: P, ctx: JobContext) => Promise<void>;
export type JobHandlers<C extends JobCatalogShape> = { [K in keyof C]?: JobHandler<z.output<C[K]>> };

export type WorkerEvent =
  | { type: 'completed'; job: JobRow }
  | { type: 'failed'; job: JobRow; error: string; state: 'ready' | 'dead' | null }
  | { type: 'lease-lost'; job: JobRow }
  | { type: 'reaped'; requeued: number; dead: number }
  | { type: 'listening' };

export interface WorkerPoolOptions<C extends JobCatalogShape> {
  pool: Pool;
  /** For the dedicated LISTEN connection. */
  url: string;
  catalog: C;
  handlers: JobHandlers<C>;
  concurrency?: number;
  clock?: Clock;
  logger?: QueueLogger;
  workerId?: string;
  /** Node name recorded with what this worker does (default: hostname). */
  node?: string;
  leaseMs?: number;
  heartbeatMs?: number;
  /** Fallback poll: NOTIFY can be lost while the listener reconnects. */
  pollMs?: number;
  reapMs?: number;
  /** Jobs claimed per query; default the concurrency. */
  batchSize?: number;
  backoff?: BackoffPolicy;
  metrics?: QueueMetrics;
  onEvent?: (e: WorkerEvent) => void;
}

interface Active {
  job: JobRow;
  abort: AbortController;
  started: number;
  done: Promise<void>;
}

export function newWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/**
 * Runs jobs from the outbox. Claims in batches with SKIP LOCKED when nudged (LISTEN), on a
 * slow poll, and whenever a slot frees up while more work may be waiting; holds each lease by
 * heartbeat; reaps leases other workers let expire.
 */
export class WorkerPool<C extends JobCatalogShape> {
  readonly workerId: string;
  readonly node: string;
  private readonly pool: Pool;
  /**
   * Claims, heartbeats, releases and reaps go through their own small pool whose sessions commit
   * without waiting for the WAL flush (synchronous_commit=off, a per-session setting; fsync stays
   * on; see also the plan settings below). Lease state is soft: if Postgres crashes and loses the last claim, the job is simply
   * ready again, and the fenced completion (worker + attempt) keeps its effects exactly-once.
   * Enqueues and completions stay fully durable on the main pool.
   */
  private readonly leasePool: pg.Pool;
  private readonly clock: Clock;
  private readonly log: QueueLogger;
  private readonly concurrency: number;
  private readonly batchSize: number;
  private readonly leaseMs: number;
  private readonly kinds: string[];
  private readonly active = new Map<string, Active>();
  private readonly listener: JobListener;
  private readonly timers: NodeJS.Timeout[] = [];
  private pendingCompletions: Array<{ job: JobRow; resolve: () => void; reject: (err: unknown) => void }> =
    [];
  private flushing: Promise<void> | undefined;
  private running = false;
  private fetching = false;
  private fetchAgain = false;
  private fetchScheduled = false;
  private maybeMore = true;

  constructor(private readonly opts: WorkerPoolOptions<C>) {
    this.pool = opts.pool;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger ?? silentLogger;
    this.concurrency = opts.concurrency ?? 10;
    this.batchSize = opts.batchSize ?? this.concurrency;
    this.leaseMs = opts.leaseMs ?? 30_000;
    this.workerId = opts.workerId ?? newWorkerId();
    this.node = opts.node ?? hostname();
    this.kinds = Object.keys(opts.handlers).filter((k) => opts.handlers[k] !== undefined);
    this.leasePool = new pg.Pool({
      connectionString: opts.url,
      max: 2,
      application_name: 'berth-worker',
      // The claim must walk the jobs_ready index in order and stop after n rows. Right after a
      // burst of enqueues the statistics still say "empty table", and the planner would rather
      // sort every ready row on each claim (tens of ms at 20,000 jobs); these two settings, for
      // this session's few statements only, keep the plan independent of lagging statistics.
      options: '-c synchronous_commit=off -c enable_sort=off -c enable_bitmapscan=off',
    });
    this.leasePool.on('error', () => undefined);
    this.listener = new JobListener({
      url: opts.url,
      logger: this.log,
      onNudge: () => this.nudge(),
      onConnected: () => this.opts.onEvent?.({ type: 'listening' }),
    });
  }

  get activeCount(): number {
    return this.active.size;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.listener.start();
    const every = (ms: number, fn: () => Promise<void> | void) => {
      const t = setInterval(() => {
        Promise.resolve(fn()).catch((err: unknown) => this.log.error({ err }, 'worker timer failed'));
      }, ms);
      this.timers.push(t);
    };
    every(this.opts.pollMs ?? 2000, () => this.nudge());
    every(this.opts.heartbeatMs ?? Math.max(50, Math.floor(this.leaseMs / 3)), () => this.heartbeat());
    // Reapers on every worker; jitter keeps them from all scanning at the same instant.
    const reapMs = this.opts.reapMs ?? Math.max(100, Math.floor(this.leaseMs / 2));
    every(Math.round(reapMs * (0.75 + Math.random() * 0.5)), () => this.reap());
    this.log.info(
      { workerId: this.workerId, kinds: this.kinds, concurrency: this.concurrency },
      'worker pool started',
    );
    this.nudge();
  }

  /** Look at the table now (a NOTIFY arrived, a slot freed, or the poll fired). */
  nudge(): void {
    this.maybeMore = true;
    this.scheduleFetch();
  }

  private scheduleFetch(): void {
    if (!this.running) return;
    if (this.fetching) {
      this.fetchAgain = true;
      return;
    }
    if (this.fetchScheduled) return;
    this.fetchScheduled = true;
    // Coalesce: jobs that finish in the same tick free their slots before one claim for all.
    setImmediate(() => {
      this.fetchScheduled = false;
      void this.fetch();
    });
  }

  private async fetch(): Promise<void> {
    if (this.fetching || !this.running) return;
    this.fetching = true;
    try {
      do {
        this.fetchAgain = false;
        const free = this.concurrency - this.active.size;
        if (free <= 0 || !this.maybeMore) break;
        const limit = Math.min(free, this.batchSize);
        const now = this.clock.now();
        const jobs = await claimJobs(this.leasePool, {
          workerId: this.workerId,
          now,
          leaseMs: this.leaseMs,
          limit,
          kinds: this.kinds,
        });
        // A full batch means there may be more; a short one means the table is drained for now,
        // unless a nudge came during the claim (fetchAgain): its job may have committed after
        // the claim's snapshot, and overwriting maybeMore would lose it until the next poll.
        this.maybeMore = jobs.length === limit || this.fetchAgain;
        for (const job of jobs) {
          this.opts.metrics?.claimLatency.observe(
            { kind: job.kind },
            Math.max(0, now.getTime() - job.run_at.getTime()) / 1000,
          );
          if (!this.running) {
            // Stopped while claiming: hand it straight back.
            await releaseJobs(this.leasePool, [job.id], this.workerId, this.clock.now());
            continue;
          }
          this.run(job);
        }
      } while ((this.fetchAgain || this.maybeMore) && this.running);
    } catch (err) {
      this.log.error({ err }, 'claiming jobs failed; the poll will retry');
    } finally {
      this.fetching = false;
    }
  }

  private run(job: JobRow): void {
    const abort = new AbortController();
    const entry: Active = { job, abort, started: performance.now(), done: Promise.resolve() };
    this.active.set(job.id, entry);
    entry.done = this.execute(entry).finally(() => {
      this.active.delete(job.id);
      if (this.maybeMore) this.scheduleFetch();
    });
  }

  private async execute(entry: Active): Promise<void> {
    const { job, abort } = entry;
    const handler = this.opts.handlers[job.kind] as JobHandler<unknown> | undefined;
    const schema = this.opts.catalog[job.kind];
    let completedInTx = false;
    const ctx: JobContext = {
      job,
      workerId: this.workerId,
      node: this.node,
      signal: abort.signal,
      complete: async (fn) => {
        if (completedInTx) throw new Error(`job ${job.id} already completed`);
        const client = await this.pool.connect();
        try {
          await client.query('BEGIN');
          await completeJobIn(client, job, this.workerId);
          const result = await fn(client);
          await client.query('COMMIT');
          completedInTx = true;
          return result;
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        } finally {
          client.release();
        }
      },
    };
    try {
      if (!handler || !schema) throw new PermanentJobError(`no handler for job kind ${job.kind}`);
      const parsed = schema.safeParse(job.payload);
      if (!parsed.success)
        throw new PermanentJobError(`invalid payload for ${job.kind}: ${parsed.error.message}`);
      await withJobSpan(job, () => handler(parsed.data, ctx));
      if (completedInTx) {
        this.observe(entry, 'completed');
        this.opts.onEvent?.({ type: 'completed', job });
        return;
      }
      this.completeBatched(job).then(
        () => {
          this.observe(entry, 'completed');
          this.opts.onEvent?.({ type: 'completed', job });
        },
        (err: unknown) =>
          this.log.error(
            { err, jobId: job.id },
            'completing a job failed; its lease will expire and it will run again',
          ),
      );
    } catch (err) {
      if (err instanceof LeaseLostError || abort.signal.reason instanceof LeaseLostError) {
        this.log.warn({ jobId: job.id, kind: job.kind }, 'lease lost; another worker owns this job now');
        this.observe(entry, 'lease_lost');
        this.opts.onEvent?.({ type: 'lease-lost', job });
        return;
      }
      if (!this.running && abort.signal.aborted) {
        this.observe(entry, 'released');
        return; // shutdown released it; nothing to record
      }
      await this.recordFailure(entry, err);
    }
  }

  private async recordFailure(entry: Active, err: unknown): Promise<void> {
    const { job } = entry;
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
    const permanent = err instanceof PermanentJobError;
    try {
      const state = await failJob(this.pool, job, {
        workerId: this.workerId,
        now: this.clock.now(),
        delayMs: backoffMs(job.attempts, this.opts.backoff ?? defaultBackoff),
        error: message,
        permanent,
      });
      this.log.warn({ jobId: job.id, kind: job.kind, attempt: job.attempts, state, err }, 'job failed');
      if (state === 'ready') this.opts.metrics?.retries.inc({ kind: job.kind });
      if (state === 'dead')
        this.opts.metrics?.deadJobs.inc({ kind: job.kind, reason: permanent ? 'permanent' : 'attempts' });
      this.observe(entry, 'failed');
      this.opts.onEvent?.({ type: 'failed', job, error: message, state });
    } catch (dbErr) {
      // The lease runs out and the reaper requeues it; nothing is lost.
      this.log.error({ err: dbErr, jobId: job.id }, 'recording a job failure failed');
    }
  }

  private observe(entry: Active, outcome: string): void {
    this.opts.metrics?.jobDuration.observe(
      { kind: entry.job.kind, outcome },
      (performance.now() - entry.started) / 1000,
    );
  }

  /**
   * Effect-free completions are batched: one DELETE for all jobs finished meanwhile, one flush
   * in flight at a time (so completions arriving during a flush share the next commit). The
   * slot is free before the DELETE commits, so the next claim overlaps it; until then the job
   * keeps its lease, and if the DELETE never commits the lease expires and the job re-runs.
   */
  private completeBatched(job: JobRow): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pendingCompletions.push({ job, resolve, reject });
      this.flushing ??= this.flushCompletions();
    });
  }

  private async flushCompletions(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    while (this.pendingCompletions.length > 0) {
      const batch = this.pendingCompletions.splice(0);
      try {
        await completeJobs(
          this.pool,
          batch.map((b) => b.job),
          this.workerId,
        );
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    this.flushing = undefined;
  }

  private async heartbeat(): Promise<void> {
    if (this.active.size === 0) return;
    const ids = [...this.active.keys()];
    const held = await heartbeatJobs(this.leasePool, ids, this.workerId, this.clock.now(), this.leaseMs);
    for (const id of ids) {
      const a = this.active.get(id);
      if (a && !held.has(id) && !a.abort.signal.aborted) a.abort.abort(new LeaseLostError(id));
    }
  }

  private async reap(): Promise<void> {
    const r = await reapExpiredLeases(this.leasePool, this.clock, this.workerId);
    if (r.requeued + r.dead === 0) return;
    this.log.warn({ ...r }, 'reaped expired job leases');
    this.opts.metrics?.leasesReaped.inc({ outcome: 'requeued' }, r.requeued);
    this.opts.metrics?.leasesReaped.inc({ outcome: 'dead' }, r.dead);
    if (r.dead) this.opts.metrics?.deadJobs.inc({ kind: 'any', reason: 'lease_expired' }, r.dead);
    this.opts.onEvent?.({ type: 'reaped', ...r });
    this.nudge();
  }

  /**
   * Graceful stop: claim nothing more, let running jobs finish for up to `graceMs`, then abort
   * the rest and hand their leases back so another worker takes them at once.
   */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
    await this.listener.close();
    while (this.fetching) await new Promise((r) => setImmediate(r));
    const all = () => Promise.allSettled([...this.active.values()].map((a) => a.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all(), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    const left = [...this.active.values()];
    if (left.length) {
      for (const a of left) a.abort.abort(new Error('worker shutting down'));
      const released = await releaseJobs(
        this.leasePool,
        left.map((a) => a.job.id),
        this.workerId,
        this.clock.now(),
      ).catch(() => []);
      this.log.warn({ released: released.length }, 'released unfinished jobs on shutdown');
      // Handlers honouring the signal end now; those that ignore it cannot complete (fenced).
      let t2: NodeJS.Timeout | undefined;
      await Promise.race([all(), new Promise((r) => (t2 = setTimeout(r, 1000)))]);
      clearTimeout(t2);
    }
    if (this.flushing) await this.flushing.catch(() => undefined);
    await this.leasePool.end();
    this.log.info({ workerId: this.workerId }, 'worker pool stopped');
  }
}
