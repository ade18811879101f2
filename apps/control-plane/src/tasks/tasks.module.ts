import { DynamicModule, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { EnvironmentJobs } from '../environments/environment-jobs.port.js';
import { EnvironmentsRepository } from '../environments/environments.repository.js';
import { EnvironmentsService } from '../environments/environments.service.js';
import { PROVIDERS, type ProviderRegistry } from '../environments/providers.js';
import { QueueEnvironmentJobs } from '../environments/queue-environment-jobs.js';
import { TaskFollowSocket } from './task-follow.socket.js';
import { TaskWorkersService, TASKS_DATABASE_URL, TASKS_LOGGER } from './task-workers.service.js';
import { TasksController } from './tasks.controller.js';
import { TASK_LIMITS, TasksService, defaultTaskLimits, type TaskLimits } from './tasks.service.js';

@Module({})
export class TasksModule {
  static forRoot(deps: {
    databaseUrl: string;
    logger: Logger;
    providers: ProviderRegistry;
    taskLimits?: TaskLimits;
  }): DynamicModule {
    return {
      module: TasksModule,
      controllers: [TasksController],
      providers: [
        { provide: TASKS_DATABASE_URL, useValue: deps.databaseUrl },
        { provide: TASKS_LOGGER, useValue: deps.logger },
        { provide: TASK_LIMITS, useValue: deps.taskLimits ?? defaultTaskLimits },
        // A task that brings its own environment creates it as POST /environments does (like
        // TerminalsModule, these are stateless and provided again here rather than shared).
        { provide: PROVIDERS, useValue: deps.providers },
        { provide: EnvironmentJobs, useClass: QueueEnvironmentJobs },
        EnvironmentsRepository,
        EnvironmentsService,
        TasksService,
        TaskFollowSocket,
        TaskWorkersService,
      ],
    };
  }
}
