import { Inject, Injectable } from '@nestjs/common';
import type { Queryable } from '@berth/db';
import type { AuthContext } from '../accounts/auth.types.js';
import type { Config } from '../config.js';
import { CLOCK, CONFIG, type Clock } from '../common/di.js';
import { ApiError, notFound } from '../common/errors.js';
import { QuotasRepository, type QuotaPatch, type QuotaRow } from './quotas.repository.js';

/** Effective limits for one user. Counts and hours: 0 means no limit. */
export interface Quotas {
  maxEnvironments: number;
  maxTasks: number;
  maxCpus: number;
  maxMemoryMb: number;
  envHoursPerDay: number;
}

export interface QuotaUsage {
  environments: number;
  tasks: number;
  /** Environment-hours used since 00:00 UTC today. */
  envHoursToday: number;
}

const HINT = 'free some up, or ask an admin to raise your quota (PUT /api/v1/users/:id/quotas)';

function exceeded(quota: keyof Quotas, message: string, limit: number, used: number, hint = HINT): ApiError {
  return new ApiError(403, 'quota_exceeded', `quota ${quota}: ${message}`, hint, { quota, limit, used });
}

const startOfUtcDay = (d: Date) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));

/** Quotas an admin sets per user, over the installation's defaults (docs/configuration.md). */
@Injectable()
export class QuotasService {
  constructor(
    @Inject(QuotasRepository) private readonly repo: QuotasRepository,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  defaults(): Quotas {
    return {
      maxEnvironments: this.config.quotaMaxEnvironments,
      maxTasks: this.config.taskMaxConcurrentPerUser,
      maxCpus: this.config.envMaxCpus,
      maxMemoryMb: this.config.envMaxMemoryMb,
      envHoursPerDay: this.config.quotaEnvHoursPerDay,
    };
  }

  private merge(row: QuotaRow | undefined): Quotas {
    const d = this.defaults();
    return {
      maxEnvironments: row?.max_environments ?? d.maxEnvironments,
      maxTasks: row?.max_tasks ?? d.maxTasks,
      maxCpus: row?.max_cpus != null ? Number(row.max_cpus) : d.maxCpus,
      maxMemoryMb: row?.max_memory_mb ?? d.maxMemoryMb,
      envHoursPerDay: row?.env_hours_per_day != null ? Number(row.env_hours_per_day) : d.envHoursPerDay,
    };
  }

  async effective(userId: string, db?: Queryable): Promise<Quotas> {
    return this.merge(await this.repo.get(userId, db));
  }

  private async hoursToday(db: Queryable | undefined, userId: string): Promise<number> {
    const now = this.clock.now();
    return this.repo.environmentHours(userId, startOfUtcDay(now), now, db);
  }

  /**
   * In the transaction that creates an environment: its size, how many the user has, and the
   * day's environment-hours. The per-user lock makes two concurrent creates count each other.
   */
  async admitEnvironment(
    tx: Queryable,
    userId: string,
    resources: { cpus: number; memoryMb: number },
  ): Promise<void> {
    await this.repo.lockUser(tx, userId);
    const q = await this.effective(userId, tx);
    if (resources.cpus > q.maxCpus)
      throw exceeded(
        'maxCpus',
        `at most ${q.maxCpus} CPUs per environment; this one asks for ${resources.cpus}`,
        q.maxCpus,
        resources.cpus,
        'ask for fewer CPUs (resources.cpus), or ask an admin to raise your quota',
      );
    if (resources.memoryMb > q.maxMemoryMb)
      throw exceeded(
        'maxMemoryMb',
        `at most ${q.maxMemoryMb} MB of memory per environment; this one asks for ${resources.memoryMb}`,
        q.maxMemoryMb,
        resources.memoryMb,
        'ask for less memory (resources.memoryMb), or ask an admin to raise your quota',
      );
    if (q.maxEnvironments > 0) {
      const live = await this.repo.liveEnvironments(userId, tx);
      if (live >= q.maxEnvironments)
        throw exceeded(
          'maxEnvironments',
          `at most ${q.maxEnvironments} environments at once; you have ${live}`,
          q.maxEnvironments,
          live,
          'destroy one you no longer need (berth env rm NAME), or ask an admin to raise your quota',
        );
    }
    await this.admitHours(tx, userId, q);
  }

  /** Before an environment (re)starts: the day's environment-hours. */
  async admitStart(userId: string, db?: Queryable): Promise<void> {
    await this.admitHours(db, userId, await this.effective(userId, db));
  }

  private async admitHours(db: Queryable | undefined, userId: string, q: Quotas): Promise<void> {
    if (q.envHoursPerDay <= 0) return;
    const used = await this.hoursToday(db, userId);
    if (used >= q.envHoursPerDay)
      throw exceeded(
        'envHoursPerDay',
        `at most ${q.envHoursPerDay} environment-hours per day (UTC); you have used ${used.toFixed(2)} today`,
        q.envHoursPerDay,
        Number(used.toFixed(4)),
        'stop environments you are not using; the count starts again at 00:00 UTC, or ask an admin to raise your quota',
      );
  }

  async usage(userId: string): Promise<QuotaUsage> {
    const [environments, tasks, envHoursToday] = await Promise.all([
      this.repo.liveEnvironments(userId),
      this.repo.activeTasks(userId),
      this.hoursToday(undefined, userId),
    ]);
    return { environments, tasks, envHoursToday: Number(envHoursToday.toFixed(4)) };
  }

  /** Admins read anyone's; a member only their own (another id is a 404). */
  async read(ctx: AuthContext, userId: string) {
    if (ctx.role !== 'admin' && ctx.userId !== userId) throw notFound('user', userId);
    const row = await this.repo.get(userId);
    return {
      quotas: this.merge(row),
      overrides: toOverrides(row),
      defaults: this.defaults(),
      usage: await this.usage(userId),
    };
  }

  async put(ctx: AuthContext, userId: string, patch: QuotaPatch) {
    if (ctx.role !== 'admin')
      throw new ApiError(
        403,
        'forbidden',
        'only an admin can set quotas',
        'ask an admin of this Berth to change your quota',
      );
    try {
      await this.repo.put(userId, patch, ctx.userId);
    } catch (err) {
      if ((err as { code?: string }).code === '23503') throw notFound('user', userId);
      throw err;
    }
    return this.read(ctx, userId);
  }
}

function toOverrides(row: QuotaRow | undefined): QuotaPatch {
  return {
    maxEnvironments: row?.max_environments ?? null,
    maxTasks: row?.max_tasks ?? null,
    maxCpus: row?.max_cpus != null ? Number(row.max_cpus) : null,
    maxMemoryMb: row?.max_memory_mb ?? null,
    envHoursPerDay: row?.env_hours_per_day != null ? Number(row.env_hours_per_day) : null,
  };
}
