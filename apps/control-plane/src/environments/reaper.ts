import { transaction, type Pool, type QueueLogger, type Queryable } from '@berth/db';
import { reconcile } from '@berth/providers';
import type { Clock } from '../common/di.js';
import type { QuotasRepository } from '../quotas/quotas.repository.js';
import type { EnvironmentJobKind } from './environment-jobs.port.js';
import type { EnvironmentRow, EnvironmentsRepository, EnvironmentState } from './environments.repository.js';
import type { ProviderRegistry } from './providers.js';

export interface ReaperDeps {
  pool: Pool;
  envs: EnvironmentsRepository;
  providers: ProviderRegistry;
  clock: Clock;
  idleStopMinutes: number;
  maxLifetimeHours: number;
  /** Reads environment-hours used and per-user quotas. */
  quotas: QuotasRepository;
  /** The installation's default environment-hours per UTC day (0: none; a user's quota wins). */
  envHoursPerDay: number;
  enqueue: (tx: Queryable, kind: EnvironmentJobKind, environmentId: string) => Promise<void>;
  /** Clients attached to the environment's terminals right now (asks its gateway). */
  attachedClients: (env: EnvironmentRow) => Promise<number>;
  logger: QueueLogger;
  /** This installation's id: only provider resources labelled with it are ever reaped. */
  installation: string | undefined;
}

export interface SweepReport {
  idleStopped: string[];
  /** Stopped because their owner used up today's environment-hours. */
  quotaStopped: string[];
  expired: string[];
  orphansDestroyed: string[];
  gone: string[];
  /** Mid-operation with their lifecycle job dead: marked failed with the job's last error. */
  deadJobs: string[];
}

const BATCH = 200;

/**
 * Keeps environments honest, on an injected clock: stops idle ones and those of users past
 * their environment-hours for the UTC day, destroys ones past the global lifetime, removes
 * provider resources whose environment is gone, and notices environments whose container or
 * process vanished or stopped outside Berth. Safe to run on every control plane at once: each
 * change re-checks the row under a lock.
 */
export class EnvironmentReaper {
  constructor(private readonly d: ReaperDeps) {}

  async sweep(): Promise<SweepReport> {
    const report: SweepReport = {
      idleStopped: [],
      quotaStopped: [],
      expired: [],
      orphansDestroyed: [],
      gone: [],
      deadJobs: [],
    };
    const now = this.d.clock.now();
    for (const stuck of await this.d.envs.stuckOnDeadJobs(BATCH)) {
      const action = stuck.kind.replace(/^environment\./, '');
      const why = (stuck.last_error ?? 'no error recorded').split('\n')[0]!.slice(0, 500);
      const moved = await this.move(
        stuck.id,
        [stuck.state],
        'failed',
        undefined,
        'failed',
        `${action} could not finish (its job gave up): ${why}; start or destroy it again`,
      );
      if (moved) report.deadJobs.push(stuck.id);
    }
    if (this.d.idleStopMinutes > 0) {
      const cutoff = new Date(now.getTime() - this.d.idleStopMinutes * 60_000);
      for (const env of await this.d.envs.idleSince(cutoff, BATCH)) {
        // A terminal in use shows no API activity: ask the gateway before calling it idle.
        const attached = await this.d.attachedClients(env).catch(() => 0);
        if (attached > 0) {
          await this.d.envs.touchActivity(env.id, now);
          continue;
        }
        const moved = await this.move(
          env.id,
          ['ready'],
          'stopping',
          'environment.stop',
          'auto-stop',
          `stopped after ${this.d.idleStopMinutes} min without use; start it again when you need it`,
          (row) => row.last_activity_at < cutoff,
        );
        if (moved) report.idleStopped.push(env.id);
      }
    }
    // Create and start check the day's environment-hours; without this an environment left
    // running would go past the quota for as long as it runs.
    const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
    for (const over of await this.d.quotas.readyOverDailyHours(this.d.envHoursPerDay, dayStart, now, BATCH)) {
      const moved = await this.move(
        over.id,
        ['ready'],
        'stopping',
        'environment.stop',
        'quota-stop',
        `stopped: quota envHoursPerDay ${over.limit_hours} h reached today (UTC, ${over.used_hours.toFixed(2)} h used); ` +
          'start it again tomorrow or ask an admin to raise it',
        () => true,
        { quota: 'envHoursPerDay', limit: over.limit_hours, used: Number(over.used_hours.toFixed(4)) },
      );
      if (moved) report.quotaStopped.push(over.id);
    }
    if (this.d.maxLifetimeHours > 0) {
      const cutoff = new Date(now.getTime() - this.d.maxLifetimeHours * 3_600_000);
      for (const env of await this.d.envs.createdBefore(cutoff, BATCH)) {
        const from: EnvironmentState[] = [
          'pending',
          'provisioning',
          'ready',
          'stopping',
          'stopped',
          'starting',
          'failed',
        ];
        const moved = await this.move(
          env.id,
          from,
          'destroying',
          'environment.destroy',
          'expired',
          `older than the ${this.d.maxLifetimeHours} h maximum lifetime: destroying`,
        );
        if (moved) report.expired.push(env.id);
      }
    }
    for (const name of this.d.providers.names) {
      const provider = this.d.providers.get(name)!;
      const live = await this.d.envs.liveIds(name);
      let found;
      try {
        found = await reconcile(provider, live.keys());
      } catch (err) {
        this.d.logger.warn(
          { provider: name, err: (err as Error).message },
          'reconcile: provider did not answer',
        );
        continue;
      }
      for (const orphan of found.orphans) {
        // Only what this installation made: labelled with our installation id (another Berth on
        // the same Docker host keeps its containers; unlabelled ones predate labels and are left
        // alone), and owned by one of our users.
        if (!this.d.installation || orphan.installation !== this.d.installation) continue;
        if (!orphan.ownerId || !(await this.isOurUser(orphan.ownerId))) continue;
        await provider
          .destroy(orphan.id)
          .catch((err: unknown) =>
            this.d.logger.warn({ id: orphan.id, err: (err as Error).message }, 'reconcile: destroy failed'),
          );
        report.orphansDestroyed.push(orphan.id);
      }
      const gone = new Set(found.missing);
      // A worker on another machine sees only its own Docker or processes: an environment that
      // runs elsewhere is not gone just because this one cannot see it.
      const here = await provider.node?.().catch(() => undefined);
      for (const [id, { state, node }] of live) {
        if (state !== 'ready' && state !== 'stopped') continue;
        if (here && node && node !== here) continue;
        let why: string | undefined;
        if (gone.has(id)) why = 'its container or process is gone (removed outside Berth)';
        else if (state === 'ready') {
          const info = await provider.inspect(id).catch(() => undefined);
          if (info && info.state !== 'ready')
            why = `it is ${info.state} outside Berth${info.detail ? ` (${info.detail})` : ''}`;
        }
        if (!why) continue;
        const moved = await this.move(
          id,
          [state],
          'failed',
          undefined,
          'gone',
          `${why}; start it again or destroy it`,
        );
        if (moved) report.gone.push(id);
      }
    }
    return report;
  }

  private async isOurUser(ownerId: string): Promise<boolean> {
    if (!/^[0-9a-f-]{36}$/.test(ownerId)) return false;
    const { rowCount } = await this.d.pool.query('SELECT 1 FROM users WHERE id = $1', [ownerId]);
    return (rowCount ?? 0) > 0;
  }

  private async move(
    id: string,
    from: EnvironmentState[],
    to: EnvironmentState,
    job: EnvironmentJobKind | undefined,
    kind: string,
    message: string,
    extra: (row: EnvironmentRow) => boolean = () => true,
    data?: unknown,
  ): Promise<boolean> {
    return transaction(this.d.pool, async (tx) => {
      const row = await this.d.envs.lock(tx, id);
      if (!row || !from.includes(row.state) || !extra(row)) return false;
      await this.d.envs.setState(tx, id, to, {
        reason: message,
        ...(to === 'failed' ? { gatewayUrl: null } : {}),
      });
      await this.d.envs.addEvent(tx, id, kind, message, data);
      if (job) await this.d.enqueue(tx, job, id);
      return true;
    });
  }
}
