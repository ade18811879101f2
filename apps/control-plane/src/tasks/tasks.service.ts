import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  createTask,
  getOwnedTask,
  isTerminal,
  listOwnedTasks,
  listTaskEvents,
  readLog,
  requestTaskCancel,
  transaction,
  type Pool,
} from '@berth/db';
import { CLOCK, PG_POOL, type Clock } from '../common/di.js';
import { ApiError, notFound } from '../common/errors.js';
import { decodeCursor, toPage, type Page, type PageQuery } from '../common/pagination.js';
import type { AuthContext } from '../accounts/auth.types.js';
import {
  toTaskDto,
  toTaskEventDto,
  type CreateTaskBody,
  type LogQuery,
  type TaskDto,
  type TaskEventDto,
} from './dto.js';

export const TASK_LIMITS = Symbol('TASK_LIMITS');
export interface TaskLimits {
  defaultTimeoutSeconds: number;
  /** The global maximum: no task runs longer, whatever it asks for. */
  maxTimeoutSeconds: number;
}
export const defaultTaskLimits: TaskLimits = { defaultTimeoutSeconds: 3600, maxTimeoutSeconds: 24 * 3600 };

export interface TaskLogPage {
  offset: number;
  nextOffset: number;
  totalBytes: number;
  encoding: 'utf8' | 'base64';
  data: string;
  /** True when the task has finished and this page reached the end of its output. */
  complete: boolean;
}

/** Tasks belong to their creator. Rules live here; SQL lives in @berth/db's task repository. */
@Injectable()
export class TasksService {
  constructor(
    @Inject(PG_POOL) private readonly pool: Pool,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(TASK_LIMITS) private readonly limits: TaskLimits,
  ) {}

  /**
   * Creates the task, its first event, its start message and the job that drives it in one
   * transaction. With an Idempotency-Key, a repeat returns the first task (`created: false`);
   * the same key with a different request is a conflict rather than a silent mix-up.
   */
  async create(
    ctx: AuthContext,
    body: CreateTaskBody,
    idempotencyKey: string | undefined,
  ): Promise<{ task: TaskDto; created: boolean }> {
    const timeout = body.timeoutSeconds ?? this.limits.defaultTimeoutSeconds;
    if (timeout > this.limits.maxTimeoutSeconds)
      throw new ApiError(
        400,
        'timeout_too_long',
        `timeoutSeconds ${timeout} is over this server's maximum of ${this.limits.maxTimeoutSeconds}`,
        `ask for at most ${this.limits.maxTimeoutSeconds} seconds, or split the work into several tasks`,
      );
    const requestHash = createHash('sha256').update(JSON.stringify(body)).digest('hex');
    const { task, created } = await transaction(this.pool, (tx) =>
      createTask(
        tx,
        {
          ownerId: ctx.userId,
          command: body.command,
          env: body.env ?? {},
          timeoutSeconds: timeout,
          environmentId: body.environmentId ?? null,
          idempotencyKey: idempotencyKey ?? null,
          requestHash: idempotencyKey ? requestHash : null,
        },
        this.clock.now(),
      ),
    );
    if (!created && task.request_hash !== requestHash)
      throw new ApiError(
        409,
        'idempotency_key_reused',
        `Idempotency-Key ${idempotencyKey} was already used for a different request (task ${task.id})`,
        'send a new Idempotency-Key for a new task; reuse a key only to retry the very same request',
        { taskId: task.id },
      );
    return { task: toTaskDto(task), created };
  }

  async get(ctx: AuthContext, id: string): Promise<TaskDto> {
    const t = await getOwnedTask(this.pool, ctx.userId, id);
    if (!t) throw notFound('task', id);
    return toTaskDto(t);
  }

  async list(ctx: AuthContext, q: PageQuery): Promise<Page<TaskDto>> {
    const rows = await listOwnedTasks(this.pool, ctx.userId, {
      limit: q.limit,
      after: decodeCursor(q.cursor),
    });
    return toPage(rows, q.limit, toTaskDto);
  }

  /** Cancel is idempotent: canceling a finished or already-canceling task changes nothing and says so. */
  async cancel(ctx: AuthContext, id: string): Promise<{ task: TaskDto; changed: boolean }> {
    await this.get(ctx, id);
    const r = await transaction(this.pool, (tx) => requestTaskCancel(tx, id, this.clock.now(), ctx.email));
    if (!r.task) throw notFound('task', id);
    return { task: toTaskDto(r.task), changed: r.changed };
  }

  async timeline(ctx: AuthContext, id: string): Promise<TaskEventDto[]> {
    await this.get(ctx, id);
    return (await listTaskEvents(this.pool, id)).map(toTaskEventDto);
  }

  async logs(ctx: AuthContext, id: string, q: LogQuery): Promise<TaskLogPage> {
    const task = await this.get(ctx, id);
    const slice = await readLog(this.pool, id, q.offset, q.limit);
    return {
      offset: slice.offset,
      nextOffset: slice.nextOffset,
      totalBytes: slice.totalBytes,
      encoding: q.encoding,
      data: slice.data.toString(q.encoding),
      complete: isTerminal(task.state) && slice.nextOffset >= slice.totalBytes,
    };
  }
}
