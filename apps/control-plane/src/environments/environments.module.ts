import { DynamicModule, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { EnvironmentJobs } from './environment-jobs.port.js';
import { ENV_DATABASE_URL, ENV_LOGGER, EnvironmentWorkersService } from './environment-workers.service.js';
import { EnvironmentsController } from './environments.controller.js';
import { GatewaySessions } from './gateway-sessions.js';
import { EnvironmentsRepository } from './environments.repository.js';
import { EnvironmentsService } from './environments.service.js';
import { PROVIDERS, type ProviderRegistry } from './providers.js';
import { QueueEnvironmentJobs } from './queue-environment-jobs.js';
import { WarmPools } from './warm-pools.js';

@Module({})
export class EnvironmentsModule {
  static forRoot(deps: { databaseUrl: string; logger: Logger; providers: ProviderRegistry }): DynamicModule {
    return {
      module: EnvironmentsModule,
      controllers: [EnvironmentsController],
      providers: [
        { provide: PROVIDERS, useValue: deps.providers },
        { provide: ENV_DATABASE_URL, useValue: deps.databaseUrl },
        { provide: ENV_LOGGER, useValue: deps.logger },
        { provide: EnvironmentJobs, useClass: QueueEnvironmentJobs },
        EnvironmentsRepository,
        EnvironmentsService,
        EnvironmentWorkersService,
        GatewaySessions,
        WarmPools,
      ],
      exports: [EnvironmentsRepository, PROVIDERS, GatewaySessions],
    };
  }
}
