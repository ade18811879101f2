import { JobCatalog } from '@berth/protocol';
import { transaction, type Pool, type Queryable } from '../pool.js';
import { systemClock, type Clock } from '../queue/jobs.js';
import { silentLogger, type QueueLogger } from '../queue/listener.js';
import type { JobContext, JobHandlers } from '../queue/worker.js';
import {
  ackMessages,
  appendControlMessage,
  appendLogChunk,
  getTask,
  getTaskForUpdate,
  isTerminal,
  markCancelRequested,
  transitionTask,
  unackedMessages,
  type TaskRow,
  type TaskState,
} from './repository.js';
import { TaskRunFailure, type RunnableTask, type TaskRunner } from './runner.js';

export interface TaskEngineOptions {
  pool: Pool;
  runner: TaskRunner;
  clock?: Clock;
  logger?: QueueLogger;
  /** Output is stored in chunks of up to this many bytes... */
  chunkBytes?: number;
  /** ...written at least this often while output flows. */
  flushMs?: number;
  /** After a stop (timeout), how long to wait for the exit before recording the task as timed out anyway. */
  stopGraceMs?: number;
  /** How often the driver of a running task checks for control messages still unacknowledged. */
  redeliverMs?: number;
  /** Called after each transition this engine commits (live status, tests). */
  onTransition?: (task: TaskRow) => void;
}

const toRunnable = (t: TaskRow): RunnableTask => ({
  id: t.id,
  command: t.command,
  env: t.env,
  environmentId: t.environment_id,
  launchSource: t.launch_source,
  secretNames: t.secret_names,
});

class TaskNotRunningYet extends Error {}

/** What a shell's exit status usually means, for the task's error (the log has the shell's message). */
const EXIT_HINTS: Record<number, string> = {
  126: 'the command could not be run (not executable, or the working directory is missing); see the log',
  127: 'command not found: check that the program is installed in the environment and on PATH (the log has the shell message)',
};

/**
 * Cancels a task in the caller's transaction. Queued: canceled at once. Provisioning or
 * running: a `stop` control message is written (with the job that delivers it) and the task
 * becomes canceled when the process exits. Returns false when there was nothing to change.
 */
export async function requestTaskCancel(
  tx: Queryable,
  taskId: string,
  now: Date,
  by?: string,
): Promise<{ changed: boolean; task: TaskRow | undefined }> {
  const task = await getTaskForUpdate(tx, taskId);
  if (!task || isTerminal(task.state) || task.cancel_requested_at) return { changed: false, task };
  if (task.state === 'queued') {
    const moved = await transitionTask(tx, taskId, {
      to: 'canceled',
      now,
      reason: by ? `canceled by ${by}` : 'canceled',
    });
    return { changed: true, task: moved };
  }
  await markCancelRequested(tx, taskId, now);
  await appendControlMessage(tx, taskId, 'stop', { reason: 'canceled' });
  return { changed: true, task: await getTask(tx, taskId) };
}

/**
 * The job handlers that drive tasks: `task.run` (provision, start, stream output into chunks,
 * record the exit) and `task.deliver` (control messages, acknowledged by sequence). Register
 * them on a WorkerPool over JobCatalog.
 */
export function taskJobHandlers(opts: TaskEngineOptions): JobHandlers<typeof JobCatalog> {
  const { pool, runner } = opts;
  const clock = opts.clock ?? systemClock;
  const log = opts.logger ?? silentLogger;
  const chunkBytes = opts.chunkBytes ?? 64 * 1024;
  const flushMs = opts.flushMs ?? 200;
  const stopGraceMs = opts.stopGraceMs ?? 10_000;
  const redeliverMs = opts.redeliverMs ?? 2000;
  const committed = (t: TaskRow | undefined): TaskRow | undefined => {
    if (t) opts.onTransition?.(t);
    return t;
  };

  /**
   * Sends what the receiver has not acknowledged, a bounded batch at a time, recording each
   * acknowledgement as it comes: if the receiver or this worker fails midway, the next attempt
   * resends only from the first unacknowledged message (and the receiver ignores repeats).
   */
  async function deliverAndAck(task: TaskRow, signal: AbortSignal): Promise<void> {
    let acked = task.acked_message_seq;
    for (;;) {
      const batch = await unackedMessages(pool, task.id, 16);
      if (batch.length === 0) return;
      const { appliedSeq } = await runner.deliver(
        toRunnable(task),
        batch.map((m) => ({ seq: m.seq, kind: m.kind, body: m.body })),
        signal,
      );
      if (appliedSeq > acked) {
        await transaction(pool, (tx) => ackMessages(tx, task.id, appliedSeq, clock.now()));
        acked = appliedSeq;
      }
      if (appliedSeq < acked) {
        // The receiver knows less than it already acknowledged: it lost its state, or it is not
        // the one running this task (a process-local fake). Retrying here cannot help; the
        // task's driver redelivers, and its output tells how the task ends.
        log.warn(
          { taskId: task.id, appliedSeq, acked },
          'receiver is behind its own acknowledgements; delivery skipped',
        );
        return;
      }
      if (appliedSeq < batch[batch.length - 1]!.seq)
        throw new Error(`task ${task.id}: receiver stopped at seq ${appliedSeq}; retried`);
    }
  }

  const finalState = (
    t: TaskRow,
    exit: { code: number | null; signal?: string | null; failure?: string },
    now: Date,
  ): { to: TaskState; reason: string; error?: string } => {
    if (exit.failure) return { to: 'failed', reason: exit.failure, error: exit.failure };
    const how = exit.signal ? ` (${exit.signal})` : '';
    if (t.cancel_requested_at) return { to: 'canceled', reason: `canceled; process stopped${how}` };
    if (t.deadline_at && t.deadline_at.getTime() <= now.getTime())
      return { to: 'timed_out', reason: `timed out after ${t.timeout_seconds}s${how}` };
    if (exit.code === 0) return { to: 'succeeded', reason: 'exited 0' };
    const hint = EXIT_HINTS[exit.code ?? -1];
    if (hint) return { to: 'failed', reason: `exited ${exit.code}: ${hint}`, error: hint };
    return { to: 'failed', reason: `exited ${exit.code ?? 'by signal'}${how}` };
  };

  /** Records a runner's verdict that the task cannot run (nothing was read from it). */
  async function fail(
    taskId: string,
    reason: string,
    ctx: JobContext,
    to: 'failed' | 'timed_out' = 'failed',
  ): Promise<void> {
    log.warn({ taskId, reason }, 'task ended before it ran');
    committed(
      await ctx.complete(async (tx) => {
        const current = await getTaskForUpdate(tx, taskId);
        if (!current || isTerminal(current.state)) return undefined;
        const canceled = current.cancel_requested_at !== null;
        return transitionTask(tx, taskId, {
          to: canceled ? 'canceled' : to,
          now: clock.now(),
          reason: canceled ? `canceled; ${reason}` : reason,
          ...(canceled ? {} : { error: reason }),
          workerId: ctx.workerId,
        });
      }),
    );
  }

  async function run({ taskId }: { taskId: string }, ctx: JobContext): Promise<void> {
    let task = await getTask(pool, taskId);
    if (!task || isTerminal(task.state)) return;
    const who = { workerId: ctx.workerId };

    if (task.state === 'queued') {
      const now = clock.now();
      const moved = committed(
        await transaction(pool, (tx) =>
          transitionTask(tx, taskId, {
            to: 'provisioning',
            now,
            reason: 'claimed by a worker',
            ...who,
            node: ctx.node,
            deadlineAt: new Date(now.getTime() + task!.timeout_seconds * 1000),
          }),
        ),
      );
      task = moved ?? (await getTask(pool, taskId));
      if (!task || isTerminal(task.state)) return;
    }

    // The deadline covers provisioning and running; past it the process gets a stop.
    const deadline = new AbortController();
    const msLeft = task.deadline_at ? task.deadline_at.getTime() - clock.now().getTime() : Infinity;
    const deadlineTimer = Number.isFinite(msLeft)
      ? setTimeout(() => deadline.abort(new Error('deadline')), Math.max(0, msLeft))
      : undefined;
    const onLeaseLost = () => deadline.abort(ctx.signal.reason);
    ctx.signal.addEventListener('abort', onLeaseLost, { once: true });

    try {
      let node: string;
      try {
        ({ node } = await runner.prepare(toRunnable(task), deadline.signal));
      } catch (err) {
        if (err instanceof TaskRunFailure) return await fail(taskId, err.reason, ctx);
        if (deadline.signal.aborted && !ctx.signal.aborted)
          return await fail(
            taskId,
            `timed out after ${task.timeout_seconds}s before it could start (its environment was not ready)`,
            ctx,
            'timed_out',
          );
        throw err;
      }
      // Canceled while its environment was coming up: never start it.
      if ((await getTask(pool, taskId))?.cancel_requested_at)
        return await fail(taskId, 'before it started', ctx);
      try {
        await deliverAndAck(task, ctx.signal);
      } catch (err) {
        if (err instanceof TaskRunFailure) return await fail(taskId, err.reason, ctx);
        throw err;
      }
      task = (await getTask(pool, taskId))!;
      if (task.state === 'provisioning' && task.acked_message_seq >= 1) {
        task =
          committed(
            await transaction(pool, (tx) =>
              transitionTask(tx, taskId, {
                to: 'running',
                now: clock.now(),
                reason: 'started',
                ...who,
                node,
              }),
            ),
          ) ?? task;
        // Messages written while it was provisioning were left for now: send them.
        await deliverAndAck(task, ctx.signal);
      }

      // `stored` is where the stored log ends; `received` counts bytes read from the runner,
      // some of which may still be buffered. Flushes are serialised so offsets never race.
      let stored = Number(task.log_bytes);
      let received = stored;
      let pending: Buffer[] = [];
      let lastFlush = performance.now();
      let chain: Promise<void> = Promise.resolve();
      const flush = (tx?: Queryable): Promise<void> => {
        chain = chain.then(async () => {
          if (pending.length === 0) return;
          const data = Buffer.concat(pending);
          pending = [];
          lastFlush = performance.now();
          stored = tx
            ? await appendLogChunk(tx, taskId, stored, data)
            : await transaction(pool, (t) => appendLogChunk(t, taskId, stored, data));
        });
        return chain;
      };
      const buffered = () => received - stored;

      let exit: { code: number | null; signal: string | null; failure?: string } | undefined;
      let stopSent = false;
      let graceTimer: NodeJS.Timeout | undefined;
      const grace = new AbortController();
      // While output is quiet, a timer still flushes what is buffered.
      const flushTimer = setInterval(() => {
        if (pending.length > 0 && performance.now() - lastFlush >= flushMs)
          flush().catch((err: unknown) => log.error({ err, taskId }, 'flushing task output failed'));
      }, flushMs);
      // Safety net: the driver of a task also sends messages the task.deliver jobs have not
      // (a delivery job that died, or a runner only this process can reach, like the fake).
      let redelivering = false;
      const redeliverTimer = setInterval(() => {
        if (redelivering) return;
        redelivering = true;
        getTask(pool, taskId)
          .then((t) =>
            t && t.state === 'running' && t.last_message_seq > t.acked_message_seq
              ? deliverAndAck(t, ctx.signal)
              : undefined,
          )
          .catch((err: unknown) =>
            log.warn({ err, taskId }, 'redelivering control messages failed; will retry'),
          )
          .finally(() => (redelivering = false));
      }, redeliverMs);
      try {
        while (!exit) {
          const readSignal = stopSent
            ? AbortSignal.any([ctx.signal, grace.signal])
            : AbortSignal.any([ctx.signal, deadline.signal]);
          try {
            for await (const ev of runner.output(toRunnable(task), received, readSignal)) {
              if (ev.type === 'exit') {
                exit = ev;
                break;
              }
              // A runner may resend bytes we already have (it resumes from an offset): keep only new ones.
              const fresh = ev.data.subarray(Math.max(0, received - ev.offset));
              if (fresh.length === 0) continue;
              pending.push(fresh);
              received += fresh.length;
              if (buffered() >= chunkBytes || performance.now() - lastFlush >= flushMs) await flush();
            }
          } catch (err) {
            if (ctx.signal.aborted) throw err;
            if (err instanceof TaskRunFailure) {
              // What was read stays stored; the task ends with the runner's reason.
              exit = { code: null, signal: null, failure: err.reason };
              break;
            }
            if (deadline.signal.aborted && !stopSent) {
              // Past the deadline: stop the process (a control message like any other) and keep
              // reading until it exits, for at most the grace period.
              stopSent = true;
              log.warn({ taskId }, 'task deadline passed; stopping it');
              await transaction(pool, (tx) =>
                appendControlMessage(tx, taskId, 'stop', { reason: 'timeout' }, { deliver: false }),
              );
              await deliverAndAck((await getTask(pool, taskId))!, ctx.signal);
              graceTimer = setTimeout(() => grace.abort(new Error('grace')), stopGraceMs);
              continue;
            }
            if (grace.signal.aborted) {
              exit = { code: null, signal: null };
              break;
            }
            throw err;
          }
          if (!exit) throw new Error(`runner ended task ${taskId}'s output without an exit`);
        }
      } finally {
        clearInterval(flushTimer);
        clearInterval(redeliverTimer);
        clearTimeout(graceTimer);
      }

      const ended = exit;
      const final = await ctx.complete(async (tx) => {
        await flush(tx);
        const current = (await getTaskForUpdate(tx, taskId))!;
        if (isTerminal(current.state)) return undefined;
        const { to, reason, error } = finalState(current, ended, clock.now());
        return transitionTask(tx, taskId, {
          to,
          now: clock.now(),
          reason,
          ...who,
          node,
          exitCode: ended.code,
          ...(error ? { error } : {}),
        });
      });
      committed(final);
    } finally {
      clearTimeout(deadlineTimer);
      ctx.signal.removeEventListener('abort', onLeaseLost);
    }
  }

  async function deliver({ taskId }: { taskId: string }, ctx: JobContext): Promise<void> {
    const task = await getTask(pool, taskId);
    if (!task || isTerminal(task.state)) return;
    // Before the start is acknowledged, task.run owns delivery (start must go first); it sends
    // whatever is pending once the task runs. Retried with backoff in case that already passed.
    if (task.state !== 'running')
      throw new TaskNotRunningYet(`task ${taskId} is ${task.state}; delivery retried later`);
    // Acks are monotonic and idempotent, so each batch commits its own; the job itself has no
    // other effect and completes with the pool's batch.
    await deliverAndAck(task, ctx.signal);
  }

  return { 'task.run': run, 'task.deliver': deliver };
}

/** Appends a control message (signal, stdin close) to a running task in the caller's transaction. */
export async function sendTaskSignal(tx: Queryable, taskId: string, signal: string): Promise<number> {
  return appendControlMessage(tx, taskId, 'signal', { signal });
}
