import { createPool, migrate, type TaskRunner } from '@berth/db';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { ConfigError, type Config } from '../config.js';
import { createLogger } from '../common/logging.js';
import type { Clock } from '../common/di.js';
import { startTaskWorkers } from './task-workers.js';
import { systemClock } from '../common/di.js';
import { loadKeys } from '../identity/keys.js';
import { IdentityService } from '../identity/identity.service.js';
import { createProviders } from '../environments/providers.js';
import { installationId } from '../server.js';
import { startEnvironmentWorkers } from '../environments/environment-workers.js';
import { GatewaySessions } from '../environments/gateway-sessions.js';
import { execToken, workloadToken } from './gateway-runner.js';
import { loadWebhookKey } from '../webhooks/secret.js';
import { startWebhookWorkers } from '../webhooks/webhook-workers.js';
import { parseOtlpHeaders, startTracing, type Tracing } from '../common/tracing.js';

export interface RunningWorker {
  workerId: string;
  /** Graceful stop: claim nothing more, finish or release leases, close the pool. */
  stop(graceMs?: number): Promise<void>;
}

export interface RunWorkerOptions {
  logger?: Logger;
  clock?: Clock;
  runner?: TaskRunner;
  registry?: Registry;
}

/**
 * `berth worker`: task workers without the API, against a shared Postgres. Any number may run
 * beside any number of `berth server`s; leases and SKIP LOCKED keep every job to one of them.
 */
export async function runWorker(config: Config, opts: RunWorkerOptions = {}): Promise<RunningWorker> {
  const databaseUrl = config.databaseUrl;
  if (!databaseUrl)
    throw new ConfigError(
      'berth worker needs DATABASE_URL',
      'point it at the Postgres your `berth server` uses (an embedded one is private to its server)',
    );
  const logger = opts.logger ?? createLogger(config.logLevel);
  const tracing: Tracing | undefined = config.otelEndpoint
    ? startTracing({
        endpoint: config.otelEndpoint,
        headers: parseOtlpHeaders(config.otelHeaders),
        serviceName: config.otelServiceName,
        serviceVersion: '0.1.0',
      })
    : undefined;
  // Forward-only and advisory-locked: safe beside servers starting at the same time.
  await migrate(databaseUrl);
  const pool = createPool(databaseUrl, 20);
  try {
    // Environment lifecycle jobs sign gateway configs and task workers sign exec tokens, so the
    // worker needs the same signing keys as the servers (BERTH_SIGNING_KEYS, or the same key file).
    const keys = await loadKeys({
      inline: config.signingKeys,
      file: config.signingKeyFile,
      dataDir: config.dataDir,
    });
    const identity = new IdentityService(keys, config, opts.clock ?? systemClock);
    const workers = await startTaskWorkers({
      pool,
      databaseUrl,
      logger: logger.child({ component: 'task-workers' }),
      ...(opts.clock ? { clock: opts.clock } : {}),
      ...(opts.runner ? { runner: opts.runner } : {}),
      ...(opts.registry ? { registry: opts.registry } : {}),
      signExecToken: (r) => execToken(identity, r),
      signWorkload: (r) => workloadToken(identity, r),
      leaseMs: config.taskLeaseSeconds * 1000,
    });
    const sessions = new GatewaySessions(identity);
    const envWorkers = await startEnvironmentWorkers({
      pool,
      databaseUrl,
      providers: await createProviders(config, {}, await installationId(pool), pool),
      gateway: () => identity.gatewaySpec(),
      dataDir: config.dataDir,
      logger: logger.child({ component: 'environment-workers' }),
      ...(opts.clock ? { clock: opts.clock } : {}),
      idleStopMinutes: config.envIdleStopMinutes,
      maxLifetimeHours: config.envMaxLifetimeHours,
      envHoursPerDay: config.quotaEnvHoursPerDay,
      reapSeconds: config.envReapSeconds,
      attachedClients: (env) => sessions.attachedClients(env),
    }).catch(async (err: unknown) => {
      await workers.stop(0);
      throw err;
    });
    const webhookWorkers = await startWebhookWorkers({
      pool,
      databaseUrl,
      rootKey: await loadWebhookKey({
        ...(config.webhookKey ? { inline: config.webhookKey } : {}),
        dataDir: config.dataDir,
      }),
      clock: opts.clock ?? systemClock,
      logger: logger.child({ component: 'webhook-workers' }),
      allowPrivate: config.webhookAllowPrivate,
      timeoutMs: config.webhookTimeoutSeconds * 1000,
      backoff: { baseMs: config.webhookRetryBaseMs, maxMs: 30 * 60 * 1000 },
    }).catch(async (err: unknown) => {
      await envWorkers.stop(0);
      await workers.stop(0);
      throw err;
    });
    logger.info({ workerId: workers.workerId }, 'berth worker running');
    return {
      workerId: workers.workerId,
      async stop(graceMs = 10_000) {
        await webhookWorkers.stop(graceMs);
        await envWorkers.stop(graceMs);
        await workers.stop(graceMs);
        await pool.end();
        await tracing?.shutdown();
        logger.info({ workerId: workers.workerId }, 'berth worker stopped');
      },
    };
  } catch (err) {
    await pool.end();
    await tracing?.shutdown();
    throw err;
  }
}
