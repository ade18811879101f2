import { createHash, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { transaction, type LaunchSource, type Pool, type Queryable } from '@berth/db';
import type { Config } from '../config.js';
import { CONFIG, PG_POOL } from '../common/di.js';
import { ApiError, notFound } from '../common/errors.js';
import { decodeCursor, toPage, type Page } from '../common/pagination.js';
import type { AuthContext } from '../accounts/auth.types.js';
import { EnvironmentJobs } from './environment-jobs.port.js';
import { QuotasService } from '../quotas/quotas.service.js';
import {
  EnvironmentsRepository,
  type EnvironmentRow,
  type EnvironmentState,
} from './environments.repository.js';
import { toEnvironmentDto, toEventDto, type CreateEnvironmentBody, type EnvironmentDto } from './dto.js';
import { WarmPools } from './warm-pools.js';

/** Which states each user action may start from; anything else is a 409 saying why. */
const ALLOWED: Record<'stop' | 'start' | 'destroy', EnvironmentState[]> = {
  stop: ['ready', 'provisioning', 'starting'],
  start: ['stopped', 'failed'],
  destroy: ['pending', 'provisioning', 'ready', 'stopping', 'stopped', 'starting', 'failed'],
};

export function specHash(spec: unknown): string {
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16);
}

@Injectable()
export class EnvironmentsService {
  constructor(
    @Inject(PG_POOL) private readonly db: Pool,
    @Inject(EnvironmentsRepository) private readonly envs: EnvironmentsRepository,
    @Inject(EnvironmentJobs) private readonly jobs: EnvironmentJobs,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(QuotasService) private readonly quotas: QuotasService,
    @Inject(WarmPools) private readonly warm: WarmPools,
  ) {}

  /** With `tx`, inside the caller's transaction (a task that brings its own environment). */
  async create(
    ctx: AuthContext,
    body: CreateEnvironmentBody,
    tx?: Queryable,
    launchSource: LaunchSource = 'api',
  ): Promise<EnvironmentDto> {
    const provider = body.provider ?? this.jobs.defaultProvider();
    const known = this.jobs.providers();
    if (!known.includes(provider))
      throw new ApiError(
        400,
        'unknown_provider',
        `provider "${provider}" is not enabled here`,
        `use one of: ${known.join(', ')}`,
      );
    const { name: _name, provider: _p, ...spec } = body;
    // Rejects a bad berth.yaml / devcontainer / limits now, before anything is created.
    const checked = await this.jobs.validateSpec(provider, spec);
    const name = body.name ?? `env-${randomBytes(3).toString('hex')}`;
    const insert = async (tx: Queryable) => {
      await this.quotas.admitEnvironment(tx, ctx.userId, {
        cpus: body.resources?.cpu ?? this.config.envDefaultCpus,
        memoryMb: body.resources?.memoryMb ?? this.config.envDefaultMemoryMb,
      });
      const created = await this.envs.insert(tx, {
        ownerId: ctx.userId,
        name,
        provider,
        spec: checked,
        specHash: specHash(checked),
        launchSource,
      });
      if (!created)
        throw new ApiError(
          409,
          'name_taken',
          `you already have an environment named ${name}`,
          'choose another name, or destroy that one first',
        );
      await this.envs.addEvent(tx, created.id, 'created', `environment created (provider ${provider})`);
      await this.jobs.enqueue(tx, 'environment.provision', created.id);
      return created;
    };
    // Inside a caller's transaction a claimed member could be lost to its rollback: no pool there.
    const claimed = tx ? undefined : await this.claimWarm(ctx, provider, name, checked, launchSource);
    if (claimed) return toEnvironmentDto(claimed);
    const row = tx ? await insert(tx) : await transaction(this.db, insert);
    return toEnvironmentDto(row);
  }

  /**
   * A pre-started member of the warm pool becomes this environment (its id is the member's):
   * the row is inserted already ready, with no provisioning job. Undefined when the request
   * asks for more than the default image or the pool is empty; the caller then provisions.
   */
  private async claimWarm(
    ctx: AuthContext,
    provider: string,
    name: string,
    spec: Record<string, unknown>,
    launchSource: LaunchSource,
  ): Promise<EnvironmentRow | undefined> {
    const member = await this.warm.take(provider, spec);
    if (!member) return undefined;
    try {
      return await transaction(this.db, async (tx) => {
        await this.quotas.admitEnvironment(tx, ctx.userId, {
          cpus: this.config.envDefaultCpus,
          memoryMb: this.config.envDefaultMemoryMb,
        });
        const created = await this.envs.insert(tx, {
          id: member.id,
          ownerId: ctx.userId,
          name,
          provider,
          spec,
          specHash: specHash(spec),
          launchSource,
        });
        if (!created)
          throw new ApiError(
            409,
            'name_taken',
            `you already have an environment named ${name}`,
            'choose another name, or destroy that one first',
          );
        await this.envs.addEvent(tx, created.id, 'created', `environment created (provider ${provider})`);
        const ready = await this.envs.setState(tx, created.id, 'ready', {
          gatewayUrl: member.info.gatewayUrl,
          node: member.info.node,
        });
        await this.envs.addEvent(
          tx,
          created.id,
          'ready',
          `ready on ${member.info.node} (from the warm pool)`,
          {
            gatewayUrl: member.info.gatewayUrl,
          },
        );
        return ready;
      });
    } catch (err) {
      this.warm.giveBack(provider, member.id);
      throw err;
    }
  }

  async list(
    ctx: AuthContext,
    q: { limit: number; cursor?: string; all?: 'true' | 'false' },
  ): Promise<Page<EnvironmentDto>> {
    const rows = await this.envs.listOwned(ctx.userId, {
      limit: q.limit,
      after: decodeCursor(q.cursor),
      includeDestroyed: q.all === 'true',
    });
    return toPage(rows, q.limit, toEnvironmentDto);
  }

  async get(ctx: AuthContext, id: string): Promise<EnvironmentDto> {
    return toEnvironmentDto(await this.owned(ctx, id));
  }

  async owned(ctx: AuthContext, id: string): Promise<EnvironmentRow> {
    const row = await this.envs.findOwned(ctx.userId, id);
    if (!row) throw notFound('environment', id);
    return row;
  }

  async events(ctx: AuthContext, id: string, q: { after?: string; limit: number }) {
    await this.owned(ctx, id);
    const rows = await this.envs.events(id, q.after ?? null, q.limit);
    const more = rows.length > q.limit;
    const items = (more ? rows.slice(0, q.limit) : rows).map(toEventDto);
    return { items, nextAfter: more ? (items[items.length - 1]?.id ?? null) : null };
  }

  /** stop, start, destroy: a state change and its job in one transaction; a no-op says so. */
  async act(
    ctx: AuthContext,
    id: string,
    action: 'stop' | 'start' | 'destroy',
  ): Promise<{ environment: EnvironmentDto; changed: boolean }> {
    return transaction(this.db, async (tx) => {
      const row = await this.envs.lockOwned(tx, ctx.userId, id);
      if (!row) throw notFound('environment', id);
      const already: Record<typeof action, EnvironmentState[]> = {
        stop: ['stopping', 'stopped'],
        start: ['starting', 'ready', 'pending'],
        destroy: ['destroying', 'destroyed'],
      };
      if (already[action].includes(row.state)) return { environment: toEnvironmentDto(row), changed: false };
      if (!ALLOWED[action].includes(row.state))
        throw new ApiError(
          409,
          'invalid_state',
          `cannot ${action} an environment that is ${row.state}`,
          this.hintFor(action, row.state),
        );
      if (action === 'start') await this.quotas.admitStart(ctx.userId, tx);
      const next: EnvironmentState =
        action === 'stop' ? 'stopping' : action === 'start' ? 'starting' : 'destroying';
      const updated = await this.envs.setState(tx, id, next, {
        reason: `${action} requested by ${ctx.email}`,
      });
      await this.envs.addEvent(tx, id, action, `${action} requested`);
      await this.jobs.enqueue(tx, `environment.${action}`, id);
      return { environment: toEnvironmentDto(updated), changed: true };
    });
  }

  private hintFor(action: string, state: EnvironmentState): string {
    if (state === 'destroyed') return 'this environment is gone; create a new one';
    if (action === 'start') return 'only a stopped or failed environment can be started';
    return 'wait for the current operation to finish (see its events)';
  }
}
