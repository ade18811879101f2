import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Query } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { z } from 'zod';
import type { LaunchSource } from '@berth/db';
import { Auth } from '../accounts/auth.guard.js';
import type { AuthContext } from '../accounts/auth.types.js';
import { ClientLaunchSource } from '../common/launch-source.js';
import { idOr404, jsonSchema, zBody, zQuery } from '../common/validation.js';
import { CreateEnvironmentBody, EventsQuery, ListEnvironmentsQuery } from './dto.js';
import { EnvironmentsService } from './environments.service.js';

@ApiTags('environments')
@Controller('api/v1/environments')
export class EnvironmentsController {
  constructor(@Inject(EnvironmentsService) private readonly envs: EnvironmentsService) {}

  @Post()
  @ApiOperation({
    summary: 'Create an environment; provisioning runs in the background (watch state and events)',
  })
  @ApiBody({ schema: jsonSchema(CreateEnvironmentBody) })
  async create(
    @Auth() ctx: AuthContext,
    @Body(zBody(CreateEnvironmentBody)) body: CreateEnvironmentBody,
    @ClientLaunchSource() source: LaunchSource,
  ) {
    return { environment: await this.envs.create(ctx, body, undefined, source) };
  }

  @Get()
  list(
    @Auth() ctx: AuthContext,
    @Query(zQuery(ListEnvironmentsQuery)) q: z.output<typeof ListEnvironmentsQuery>,
  ) {
    return this.envs.list(ctx, q);
  }

  @Get(':id')
  async get(@Auth() ctx: AuthContext, @Param('id') id: string) {
    return { environment: await this.envs.get(ctx, idOr404(id, 'environment')) };
  }

  @Get(':id/events')
  events(
    @Auth() ctx: AuthContext,
    @Param('id') id: string,
    @Query(zQuery(EventsQuery)) q: z.output<typeof EventsQuery>,
  ) {
    return this.envs.events(ctx, idOr404(id, 'environment'), q);
  }

  @Post(':id/stop')
  @HttpCode(200)
  stop(@Auth() ctx: AuthContext, @Param('id') id: string) {
    return this.envs.act(ctx, idOr404(id, 'environment'), 'stop');
  }

  @Post(':id/start')
  @HttpCode(200)
  start(@Auth() ctx: AuthContext, @Param('id') id: string) {
    return this.envs.act(ctx, idOr404(id, 'environment'), 'start');
  }

  @Delete(':id')
  @HttpCode(200)
  @ApiOperation({ summary: 'Destroy an environment (its container or process and its files)' })
  destroy(@Auth() ctx: AuthContext, @Param('id') id: string) {
    return this.envs.act(ctx, idOr404(id, 'environment'), 'destroy');
  }
}
