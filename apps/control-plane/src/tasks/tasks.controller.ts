import {
  Body,
  Controller,
  Get,
  Headers,
  HttpCode,
  Inject,
  Param,
  Post,
  Query,
  Req,
  Res,
} from '@nestjs/common';
import { ApiBody, ApiHeader, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import type { LaunchSource } from '@berth/db';
import { ClientLaunchSource } from '../common/launch-source.js';
import { PageQuery } from '../common/pagination.js';
import { idOr404, jsonSchema, parseInput, zBody, zQuery } from '../common/validation.js';
import { Auth } from '../accounts/auth.guard.js';
import type { AuthContext } from '../accounts/auth.types.js';
import { CreateTaskBody, IdempotencyKey, LastEventId, LogQuery } from './dto.js';
import { streamSse } from './sse.js';
import { TasksService } from './tasks.service.js';

@ApiTags('tasks')
@Controller('api/v1/tasks')
export class TasksController {
  constructor(@Inject(TasksService) private readonly tasks: TasksService) {}

  @Post()
  @ApiOperation({
    summary: 'Run a command as a task in an environment; with Idempotency-Key, retries return the same task',
    description:
      'Give `environmentId` (one of yours) or `environment` (a spec; the environment is made for the task ' +
      'and destroyed when it ends unless `keep`). Without either the answer is 400 `environment_required`, ' +
      'unless the operator enabled the `fake` provider (BERTH_PROVIDERS includes fake): then the task runs ' +
      'on the FAKE runner, a test/demo mode that prints canned output (`fake:lines N`, `fake:fail`, `fake:hang`).',
  })
  @ApiBody({ schema: jsonSchema(CreateTaskBody) })
  @ApiHeader({ name: 'Idempotency-Key', required: false })
  @ApiHeader({
    name: 'X-Berth-Client',
    required: false,
    description: 'web | mobile | cli: recorded as the launch source',
  })
  async create(
    @Auth() ctx: AuthContext,
    @Body(zBody(CreateTaskBody)) body: CreateTaskBody,
    @Headers('idempotency-key') key: string | undefined,
    @ClientLaunchSource() source: LaunchSource,
    @Res({ passthrough: true }) res: Response,
  ) {
    const k = key === undefined ? undefined : parseInput(IdempotencyKey, key, 'Idempotency-Key header');
    const { task, created, environment } = await this.tasks.create(ctx, body, k, source);
    res.status(created ? 201 : 200);
    if (!created) res.setHeader('Idempotent-Replayed', 'true');
    return { task, ...(environment ? { environment } : {}) };
  }

  @Get()
  list(@Auth() ctx: AuthContext, @Query(zQuery(PageQuery)) q: PageQuery) {
    return this.tasks.list(ctx, q);
  }

  @Get(':id')
  async get(@Auth() ctx: AuthContext, @Param('id') id: string) {
    return { task: await this.tasks.get(ctx, idOr404(id, 'task')) };
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @ApiOperation({ summary: 'Cancel a task: at once if queued, else by stopping its process' })
  cancel(@Auth() ctx: AuthContext, @Param('id') id: string) {
    return this.tasks.cancel(ctx, idOr404(id, 'task'));
  }

  @Get(':id/timeline')
  @ApiOperation({ summary: 'Every state transition, with time, worker and node' })
  async timeline(@Auth() ctx: AuthContext, @Param('id') id: string) {
    return { events: await this.tasks.timeline(ctx, idOr404(id, 'task')) };
  }

  @Get(':id/debug')
  @ApiOperation({ summary: 'The task, its timeline and its environment (record, events, provider view)' })
  debug(@Auth() ctx: AuthContext, @Param('id') id: string) {
    return this.tasks.debug(ctx, idOr404(id, 'task'));
  }

  @Get(':id/logs')
  @ApiOperation({
    summary:
      'Output from a byte offset; pass nextOffset back to continue. With follow=1: server-sent events ' +
      '(`output` with id = the byte offset after it, then `end`), resumable with Last-Event-ID',
  })
  @ApiHeader({ name: 'Last-Event-ID', required: false })
  async logs(
    @Auth() ctx: AuthContext,
    @Param('id') id: string,
    @Query(zQuery(LogQuery)) q: LogQuery,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    const taskId = idOr404(id, 'task');
    if (q.follow !== '1' && q.follow !== 'true') {
      res.json(await this.tasks.logs(ctx, taskId, q));
      return;
    }
    const offset =
      lastEventId === undefined ? q.offset : parseInput(LastEventId, lastEventId, 'Last-Event-ID header');
    const ac = new AbortController();
    // Access is checked (and a 404 answered as JSON) before the stream starts.
    const stream = await this.tasks.follow(ctx, taskId, offset, ac.signal, { utf8: q.encoding === 'utf8' });
    await streamSse(req, res, ac, stream, q.encoding);
  }
}
