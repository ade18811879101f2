import type { z } from 'zod';
import type { JobCatalogShape } from '@berth/protocol';
import type { Queryable } from '../pool.js';
import * as SQL from './sql.js';
import { activeTraceParent } from './tracing.js';

export interface Clock {
  now(): Date;
}
export const systemClock: Clock = { now: () => new Date() };

export interface JobRow {
  id: string;
  kind: string;
  payload: unknown;
  state: 'ready' | 'running' | 'dead';
  priority: number;
  run_at: Date;
  attempts: number;
  max_attempts: number;
  locked_by: string | null;
  locked_until: Date | null;
  last_error: string | null;
  created_at: Date;
  /** W3C traceparent of the span that enqueued it, when tracing is on. */
  trace_parent?: string | null;
}

export interface EnqueueOptions {
  /** Not before this time (a delayed job). Default: now. */
  runAt?: Date;
  /** Lower runs first. Default 0. */
  priority?: number;
  maxAttempts?: number;
  /** At most one waiting (not yet claimed) job per key; enqueueing the key again meanwhile is a no-op. */
  dedupeKey?: string;
}

export interface JobSpec<C extends JobCatalogShape, K extends keyof C & string = keyof C & string> {
  kind: K;
  payload: z.input<C[K]>;
  options?: EnqueueOptions;
}

/** Thrown inside a completion transaction when the lease was lost: rolls the effects back. */
export class LeaseLostError extends Error {
  constructor(readonly jobId: string) {
    super(`lease on job ${jobId} was lost (reaped and possibly re-claimed); effects rolled back`);
  }
}

/** A failure that retrying cannot fix (bad payload, missing row): the job dies at once. */
export class PermanentJobError extends Error {}

/**
 * Enqueues jobs. Pass the transaction client of the state change that needs them: the job
 * exists if and only if that change commits. Returns the ids of the jobs created (a deduped
 * job is not created again).
 */
export async function enqueueJobs<C extends JobCatalogShape>(
  db: Queryable,
  catalog: C,
  specs: ReadonlyArray<JobSpec<C>>,
): Promise<string[]> {
  if (specs.length === 0) return [];
  const kinds: string[] = [];
  const payloads: string[] = [];
  const runAts: (Date | null)[] = [];
  const priorities: number[] = [];
  const maxAttempts: number[] = [];
  const keys: (string | null)[] = [];
  for (const s of specs) {
    const schema = catalog[s.kind];
    if (!schema) throw new Error(`unknown job kind ${s.kind}: declare it in the job catalog`);
    kinds.push(s.kind);
    payloads.push(JSON.stringify(schema.parse(s.payload)));
    runAts.push(s.options?.runAt ?? null);
    priorities.push(s.options?.priority ?? 0);
    maxAttempts.push(s.options?.maxAttempts ?? 10);
    keys.push(s.options?.dedupeKey ?? null);
  }
  const { rows } = await db.query<{ id: string }>(SQL.ENQUEUE, [
    kinds,
    payloads,
    runAts,
    priorities,
    maxAttempts,
    keys,
    activeTraceParent(),
  ]);
  return rows.map((r) => r.id);
}

/** One job; see enqueueJobs. Returns its id, or null when deduped. */
export async function enqueueJob<C extends JobCatalogShape, K extends keyof C & string>(
  db: Queryable,
  catalog: C,
  kind: K,
  payload: z.input<C[K]>,
  options?: EnqueueOptions,
): Promise<string | null> {
  const [id] = await enqueueJobs<C>(db, catalog, [{ kind, payload, options }]);
  return id ?? null;
}

export async function claimJobs(
  db: Queryable,
  args: { workerId: string; now: Date; leaseMs: number; limit: number; kinds: string[] },
): Promise<JobRow[]> {
  const { rows } = await db.query<JobRow>(SQL.CLAIM, [
    args.workerId,
    args.now,
    args.leaseMs,
    args.limit,
    args.kinds,
  ]);
  return rows;
}

/** Inside the caller's transaction: deletes the job if the lease is still ours, else throws LeaseLostError. */
export async function completeJobIn(
  db: Queryable,
  job: Pick<JobRow, 'id' | 'attempts'>,
  workerId: string,
): Promise<void> {
  const { rowCount } = await db.query(SQL.COMPLETE_ONE, [job.id, workerId, job.attempts]);
  if (!rowCount) throw new LeaseLostError(job.id);
}

/** Completes many effect-free jobs in one statement; returns the ids actually completed. */
export async function completeJobs(
  db: Queryable,
  jobs: ReadonlyArray<Pick<JobRow, 'id' | 'attempts'>>,
  workerId: string,
): Promise<string[]> {
  if (jobs.length === 0) return [];
  const { rows } = await db.query<{ id: string }>(SQL.COMPLETE_MANY, [
    jobs.map((j) => j.id),
    jobs.map((j) => j.attempts),
    workerId,
  ]);
  return rows.map((r) => r.id);
}

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}
export const defaultBackoff: BackoffPolicy = { baseMs: 1000, maxMs: 10 * 60 * 1000 };

/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half random, so retries of
 * jobs that failed together (a database blip) spread out instead of stampeding back at once.
 */
export function backoffMs(
  attempt: number,
  policy: BackoffPolicy = defaultBackoff,
  random: () => number = Math.random,
): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/** Records a failed attempt; returns the new state ('ready' to retry, 'dead'), or null if the lease was lost. */
export async function failJob(
  db: Queryable,
  job: Pick<JobRow, 'id' | 'attempts'>,
  args: { workerId: string; now: Date; delayMs: number; error: string; permanent?: boolean },
): Promise<'ready' | 'dead' | null> {
  const { rows } = await db.query<{ state: 'ready' | 'dead' }>(SQL.FAIL, [
    job.id,
    args.workerId,
    job.attempts,
    args.now,
    args.delayMs,
    args.error.slice(0, 8000),
    args.permanent ?? false,
  ]);
  return rows[0]?.state ?? null;
}

export async function releaseJobs(
  db: Queryable,
  ids: string[],
  workerId: string,
  now: Date,
): Promise<string[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<{ id: string }>(SQL.RELEASE, [ids, workerId, now]);
  return rows.map((r) => r.id);
}

/** Extends the leases; returns the ids still held (a missing id means that lease was lost). */
export async function heartbeatJobs(
  db: Queryable,
  ids: string[],
  workerId: string,
  now: Date,
  leaseMs: number,
): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>(SQL.HEARTBEAT, [ids, workerId, now, leaseMs]);
  return new Set(rows.map((r) => r.id));
}

export interface ReapResult {
  requeued: number;
  dead: number;
}

/** Frees expired leases as of `clock.now()`; safe to run from every worker at once. */
export async function reapExpiredLeases(
  db: Queryable,
  clock: Clock,
  reaperId: string,
  limit = 1000,
): Promise<ReapResult> {
  const { rows } = await db.query<{ job_id: string; outcome: 'requeued' | 'dead' }>(SQL.REAP, [
    clock.now(),
    reaperId,
    limit,
  ]);
  const dead = rows.filter((r) => r.outcome === 'dead').length;
  if (rows.length > dead) await db.query(`SELECT pg_notify($1, '')`, [SQL.NOTIFY_CHANNEL]);
  return { requeued: rows.length - dead, dead };
}

export async function nextRunAt(db: Queryable, kinds: string[]): Promise<Date | null> {
  const { rows } = await db.query<{ run_at: Date | null }>(SQL.NEXT_RUN_AT, [kinds]);
  return rows[0]?.run_at ?? null;
}

export async function queueDepth(db: Queryable): Promise<Record<'ready' | 'running' | 'dead', number>> {
  const { rows } = await db.query<{ state: 'ready' | 'running' | 'dead'; n: number }>(SQL.QUEUE_DEPTH);
  const out = { ready: 0, running: 0, dead: 0 };
  for (const r of rows) out[r.state] = r.n;
  return out;
}

export async function getJob(db: Queryable, id: string): Promise<JobRow | undefined> {
  const { rows } = await db.query<JobRow>(`SELECT ${SQL.JOB_COLUMNS} FROM jobs WHERE id = $1`, [id]);
  return rows[0];
}
