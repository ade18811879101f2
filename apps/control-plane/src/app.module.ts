import { DynamicModule, Global, Module, type Provider } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import type { Registry } from 'prom-client';
import type { Pool } from '@berth/db';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { CLOCK, CONFIG, METRICS, PG_POOL, type Clock } from './common/di.js';
import { AllExceptionsFilter } from './common/exception.filter.js';
import { AccountsModule } from './accounts/accounts.module.js';
import { AuthGuard } from './accounts/auth.guard.js';
import { QuotasModule } from './quotas/quotas.module.js';
import { MutationRateLimitGuard } from './common/rate-limit.js';
import { AuditModule } from './audit/audit.module.js';
import { HealthController } from './health/health.controller.js';
import { IdentityModule } from './identity/identity.module.js';
import type { KeySet } from './identity/keys.js';
import { LiveModule } from './live/live.module.js';
import { SecretsModule } from './secrets/secrets.module.js';
import { TerminalsModule } from './terminals/terminals.module.js';
import { PortsModule } from './ports/ports.module.js';
import { TasksModule } from './tasks/tasks.module.js';
import { EnvironmentsModule } from './environments/environments.module.js';
import { WebhooksModule } from './webhooks/webhooks.module.js';
import type { ProviderRegistry } from './environments/providers.js';

export interface AppDeps {
  config: Config;
  pool: Pool;
  clock: Clock;
  registry: Registry;
  logger: Logger;
  keys: KeySet;
  databaseUrl: string;
  providers: ProviderRegistry;
}

/** Shared infrastructure every feature module may inject: config, pool, clock, metrics. */
@Global()
@Module({})
export class CoreModule {
  static forRoot(deps: AppDeps): DynamicModule {
    const providers: Provider[] = [
      { provide: CONFIG, useValue: deps.config },
      { provide: PG_POOL, useValue: deps.pool },
      { provide: CLOCK, useValue: deps.clock },
      { provide: METRICS, useValue: deps.registry },
    ];
    return { module: CoreModule, providers, exports: providers };
  }
}

@Module({})
export class AppModule {
  static forRoot(deps: AppDeps): DynamicModule {
    return {
      module: AppModule,
      imports: [
        CoreModule.forRoot(deps),
        AccountsModule,
        QuotasModule,
        IdentityModule.forRoot(deps.keys),
        LiveModule.forRoot(deps.databaseUrl),
        SecretsModule,
        TerminalsModule,
        TasksModule.forRoot({
          ...deps,
          taskLimits: {
            defaultTimeoutSeconds: deps.config.taskDefaultTimeoutSeconds,
            maxTimeoutSeconds: deps.config.taskMaxTimeoutSeconds,
          },
        }),
        EnvironmentsModule.forRoot(deps),
        AuditModule.forRoot(deps),
        WebhooksModule.forRoot(deps),
        PortsModule,
        // Feature modules register here, one line each.
      ],
      controllers: [HealthController],
      providers: [
        { provide: APP_GUARD, useClass: AuthGuard },
        // After AuthGuard (guards run in this order), so calls count against their user.
        { provide: APP_GUARD, useClass: MutationRateLimitGuard },
        {
          provide: APP_FILTER,
          useValue: new AllExceptionsFilter((err, req) =>
            deps.logger.error({ err, reqId: (req as { id?: unknown }).id }, 'request failed'),
          ),
        },
      ],
    };
  }
}
