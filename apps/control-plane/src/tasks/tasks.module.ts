import { DynamicModule, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { PROVIDERS, type ProviderRegistry } from '../environments/providers.js';
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
        // For the debug view (what the provider reports). Environments themselves are created
        // through the environments module's service (TasksService finds it at start).
        { provide: PROVIDERS, useValue: deps.providers },
        TasksService,
        TaskFollowSocket,
        TaskWorkersService,
      ],
    };
  }
}
