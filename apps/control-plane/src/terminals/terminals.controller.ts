import { Body, Controller, Get, Inject, Param, Post } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { Auth } from '../accounts/auth.guard.js';
import type { AuthContext } from '../accounts/auth.types.js';
import { ApiError } from '../common/errors.js';
import { idOr404, jsonSchema, zBody } from '../common/validation.js';
import { TerminalsService } from './terminals.service.js';

const NewSessionBody = z.strictObject({});
const AttachBody = z.strictObject({ role: z.enum(['driver', 'observer']).default('driver') });
const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;

@ApiTags('terminals')
@Controller('api/v1/environments/:id/terminals')
export class TerminalsController {
  constructor(@Inject(TerminalsService) private readonly terminals: TerminalsService) {}

  @Post()
  @ApiOperation({ summary: 'Ticket for a new terminal session: connect to `url` with `token` within 60 s' })
  @ApiBody({ schema: jsonSchema(NewSessionBody) })
  create(@Auth() ctx: AuthContext, @Param('id') id: string, @Body(zBody(NewSessionBody)) _body: unknown) {
    return this.terminals.newSession(ctx, idOr404(id, 'environment'));
  }

  @Get()
  @ApiOperation({ summary: 'Terminal sessions of the environment and who is attached' })
  list(@Auth() ctx: AuthContext, @Param('id') id: string) {
    return this.terminals.list(ctx, idOr404(id, 'environment'));
  }

  @Post(':sessionId/tickets')
  @ApiOperation({ summary: 'Ticket to attach to an existing session, as driver or observer' })
  @ApiBody({ schema: jsonSchema(AttachBody) })
  attach(
    @Auth() ctx: AuthContext,
    @Param('id') id: string,
    @Param('sessionId') sessionId: string,
    @Body(zBody(AttachBody)) body: z.output<typeof AttachBody>,
  ) {
    if (!SESSION_ID.test(sessionId))
      throw new ApiError(
        404,
        'not_found',
        `terminal session ${sessionId} not found`,
        'list sessions: GET …/terminals',
      );
    return this.terminals.attach(ctx, idOr404(id, 'environment'), sessionId, body.role);
  }
}
