import { createHash } from 'node:crypto';
import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import {
  createTask,
  getOwnedTask,
  isTerminal,
  listOwnedTasks,
  listTaskEvents,
  readLog,
  requestTaskCancel,
  transaction,
  type LaunchSource,
  type Pool,
} from '@berth/db';
import type { Config } from '../config.js';
import { CLOCK, CONFIG, PG_POOL, type Clock } from '../common/di.js';
import { ApiError, notFound } from '../common/errors.js';
import { decodeCursor, toPage, type Page, type PageQuery } from '../common/pagination.js';
import type { AuthContext } from '../accounts/auth.types.js';
import type { EnvironmentDto } from '../environments/dto.js';
import { EnvironmentsService } from '../environments/environments.service.js';
import { PROVIDERS, type ProviderRegistry } from '../environments/providers.js';
import { LiveService } from '../live/live.service.js';
import { followTaskOutput, type FollowEvent } from './task-follow.js';
import {
  countActiveTasks,
  idempotencyKeyUsed,
  lockUserTaskAdmission,
  markDestroyEnvironment,
  setStartOptions,
  checkSecretNames,
  usableEnvironment,
} from './tasks.repository.js';
import {
  toTaskDto,
  toTaskEventDto,
  type CreateTaskBody,
  type LogQuery,
  type TaskDto,
  type TaskEventDto,
} from './dto.js';
import { QuotasService } from '../quotas/quotas.service.js';
import { IdentityService } from '../identity/identity.service.js';
import { execToken } from '../worker/gateway-runner.js';

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

/** Tasks belong to their creator. Rules here; SQL in @berth/db (engine) and ./tasks.repository.ts. */
@Injectable()
export class TasksService implements OnModuleInit {
  /** The environments module's own service (with whatever it depends on), found at start. */
  private environments!: EnvironmentsService;

  constructor(
    @Inject(PG_POOL) private readonly pool: Pool,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(TASK_LIMITS) private readonly limits: TaskLimits,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(ModuleRef) private readonly moduleRef: ModuleRef,
    @Inject(LiveService) private readonly live: LiveService,
    @Inject(PROVIDERS) private readonly providers: ProviderRegistry,
    @Inject(QuotasService) private readonly quotas: QuotasService,
    @Inject(IdentityService) private readonly identity: IdentityService,
  ) {}

  onModuleInit(): void {
    this.environments = this.moduleRef.get(EnvironmentsService, { strict: false });
  }

  /**
   * Creates the task, its first event, its start message and the job that drives it in one
   * transaction. With an Idempotency-Key, a repeat returns the first task (`created: false`);
   * the same key with a different request is a conflict rather than a silent mix-up. With an
   * environment spec, the environment is created in that same transaction, owned by the same
   * user, and (unless `keep`) destroyed when the task ends.
   */
  async create(
    ctx: AuthContext,
    body: CreateTaskBody,
    idempotencyKey: string | undefined,
    launchSource: LaunchSource = 'api',
  ): Promise<{ task: TaskDto; created: boolean; environment?: EnvironmentDto }> {
    const timeout = body.timeoutSeconds ?? this.limits.defaultTimeoutSeconds;
    if (timeout > this.limits.maxTimeoutSeconds)
      throw new ApiError(
        400,
        'timeout_too_long',
        `timeoutSeconds ${timeout} is over this server's maximum of ${this.limits.maxTimeoutSeconds}`,
        `ask for at most ${this.limits.maxTimeoutSeconds} seconds, or split the work into several tasks`,
      );
    // The FAKE runner (canned output) is a test/demo mode the operator opts into by enabling the
    // `fake` provider; anywhere else a task without an environment would pretend to run.
    if (!body.environmentId && !body.environment && !this.providers.names.includes('fake'))
      throw new ApiError(
        400,
        'environment_required',
        'a task runs in an environment: give environmentId (one of yours) or environment (a spec for a new one)',
        `CLI: berth run --env NAME -- CMD (berth env ls lists yours), or berth run --provider ${this.providers.defaultName} -- CMD to make one for the task; web: pick an environment in the task form`,
      );
    if (body.environmentId && !(await usableEnvironment(this.pool, ctx.userId, body.environmentId)))
      throw notFound('environment', body.environmentId);
    if (body.secrets?.length) {
      const { unknown, vaultConfigured } = await checkSecretNames(this.pool, ctx.userId, [
        ...new Set(body.secrets),
      ]);
      if (!vaultConfigured)
        throw new ApiError(
          400,
          'secrets_not_configured',
          'the task asks for secrets, but you have not told Berth where your Vault is',
          'set it up once with `berth secrets config` (web: the Secrets page); docs/secrets.md has the Vault side',
        );
      if (unknown.length)
        throw new ApiError(
          400,
          'unknown_secret_reference',
          `you have no secret reference named ${unknown.join(', ')}`,
          'list yours with `berth secrets show` (web: the Secrets page), or add one with `berth secrets add NAME`',
          { unknown },
        );
    }
    const requestHash = createHash('sha256').update(JSON.stringify(body)).digest('hex');
    // The user's quota (an admin may set it per user) over BERTH_TASK_MAX_CONCURRENT_PER_USER.
    const max = (await this.quotas.effective(ctx.userId)).maxTasks;
    const result = await transaction(this.pool, async (tx) => {
      // Creates of one user are serialised: the count below holds, and a retry racing its
      // original cannot make a second environment.
      await lockUserTaskAdmission(tx, ctx.userId);
      // A retry of a request already admitted is answered (below), whatever the count is now.
      const replay =
        idempotencyKey !== undefined && (await idempotencyKeyUsed(tx, ctx.userId, idempotencyKey));
      const active = replay || max === 0 ? 0 : await countActiveTasks(tx, ctx.userId);
      if (max > 0 && active >= max)
        throw new ApiError(
          429,
          'too_many_tasks',
          `quota maxTasks: you have ${active} tasks queued or running; you may have ${max} at once`,
          'wait for some to finish (berth task ls), cancel the ones you do not need (berth task cancel ID), or ask an admin to raise your quota (PUT /api/v1/users/:id/quotas {maxTasks})',
          { quota: 'maxTasks', limit: max, used: active, active, max },
        );
      let environment: EnvironmentDto | undefined;
      if (body.environment && !replay) {
        const { keep: _keep, ...spec } = body.environment;
        environment = await this.environments.create(ctx, spec, tx, launchSource);
      }
      const made = await createTask(
        tx,
        {
          ownerId: ctx.userId,
          command: body.command,
          env: body.env ?? {},
          timeoutSeconds: timeout,
          environmentId: environment?.id ?? body.environmentId ?? null,
          idempotencyKey: idempotencyKey ?? null,
          requestHash: idempotencyKey ? requestHash : null,
          launchSource,
          ...(body.secrets ? { secretNames: [...new Set(body.secrets)] } : {}),
        },
        this.clock.now(),
      );
      if (made.created && body.tty)
        await setStartOptions(tx, made.task.id, {
          tty: true,
          ...(body.cols ? { cols: body.cols } : {}),
          ...(body.rows ? { rows: body.rows } : {}),
        });
      if (made.created && environment && !body.environment?.keep)
        await markDestroyEnvironment(tx, made.task.id);
      return { ...made, ...(environment ? { environment } : {}) };
    });
    const { task, created } = result;
    if (!created && task.request_hash !== requestHash)
      throw new ApiError(
        409,
        'idempotency_key_reused',
        `Idempotency-Key ${idempotencyKey} was already used for a different request (task ${task.id})`,
        'send a new Idempotency-Key for a new task; reuse a key only to retry the very same request',
        { taskId: task.id },
      );
    return {
      task: toTaskDto(task),
      created,
      ...(result.environment ? { environment: result.environment } : {}),
    };
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

  /**
   * Output from `offset` as it arrives, then the end (SSE and socket.io both use it). Access is
   * checked once here; the stream only ever carries this task's output.
   */
  async follow(
    ctx: AuthContext,
    id: string,
    offset: number,
    signal: AbortSignal,
    opts: { utf8: boolean },
  ): Promise<AsyncGenerator<FollowEvent>> {
    await this.get(ctx, id);
    return followTaskOutput({
      pool: this.pool,
      taskId: id,
      offset,
      signal,
      utf8: opts.utf8,
      watch: (fn) => this.live.watchTask(id, fn),
    });
  }

  /**
   * Everything about a task in one answer, for `berth debug task`: the record, its timeline,
   * and its environment (record, events, what the provider reports). Output is fetched apart,
   * by the paged log endpoint. A part that cannot be read is reported, not fatal: a debug
   * bundle is most wanted when things are broken.
   */
  async debug(ctx: AuthContext, id: string) {
    const task = await this.get(ctx, id);
    const timeline = await this.timeline(ctx, id);
    let environment: Record<string, unknown> | null = null;
    if (task.environmentId) {
      const envId = task.environmentId;
      const part = async <T>(f: () => Promise<T>): Promise<T | { error: string }> => {
        try {
          return await f();
        } catch (err) {
          return { error: (err as Error).message };
        }
      };
      const record = await part(() => this.environments.get(ctx, envId));
      const owned = !('error' in record);
      environment = {
        record,
        events: owned ? await part(() => this.environments.events(ctx, envId, { limit: 500 })) : null,
        inspect: owned
          ? await part(async () => {
              const provider = this.providers.get(record.provider);
              if (!provider) throw new Error(`provider ${record.provider} is not enabled here`);
              return provider.inspect(envId);
            })
          : null,
        // The gateway's own log, read with a task-scoped exec token like the workers use.
        gatewayLog:
          owned && record.gatewayUrl && record.state === 'ready'
            ? await part(async () => {
                const token = await execToken(this.identity, {
                  environmentId: envId,
                  ownerId: ctx.userId,
                  taskId: id,
                });
                const res = await fetch(`${record.gatewayUrl}/exec/tasks/${id}/log`, {
                  headers: { authorization: `Bearer ${token}` },
                  signal: AbortSignal.timeout(10_000),
                });
                if (!res.ok) throw new Error(`gateway answered ${res.status}`);
                return await res.text();
              })
            : null,
      };
    }
    return { task, timeline, environment, generatedAt: this.clock.now().toISOString() };
  }
}
