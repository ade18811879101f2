import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { Auth } from '../accounts/auth.guard.js';
import type { AuthContext } from '../accounts/auth.types.js';
import { notFound } from '../common/errors.js';
import { idOr404, jsonSchema, zBody } from '../common/validation.js';
import { SharesService } from './shares.service.js';

const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;
const CreateShareBody = z.strictObject({
  /** How long the link works; a day at most. */
  expiresInMinutes: z
    .number()
    .int()
    .min(1)
    .max(24 * 60)
    .default(60),
});
const ShareTicketBody = z.strictObject({ token: z.string().min(1).max(200) });

@ApiTags('terminals')
@Controller('api/v1/environments/:id/terminals')
export class TerminalSharesController {
  constructor(@Inject(SharesService) private readonly shares: SharesService) {}

  @Post(':sessionId/shares')
  @ApiOperation({
    summary: 'A read-only link to this terminal session for other signed-in users; the token is shown once',
  })
  @ApiBody({ schema: jsonSchema(CreateShareBody) })
  create(
    @Auth() ctx: AuthContext,
    @Param('id') id: string,
    @Param('sessionId') sessionId: string,
    @Body(zBody(CreateShareBody)) body: z.output<typeof CreateShareBody>,
  ) {
    if (!SESSION_ID.test(sessionId)) throw notFound('terminal session', sessionId);
    return this.shares.create(ctx, idOr404(id, 'environment'), sessionId, body.expiresInMinutes);
  }

  @Get('shares')
  @ApiOperation({ summary: 'Read-only links of this environment that still work' })
  list(@Auth() ctx: AuthContext, @Param('id') id: string) {
    return this.shares.list(ctx, idOr404(id, 'environment'));
  }

  @Delete('shares/:shareId')
  @ApiOperation({
    summary:
      'Revoke a read-only link: no new tickets, and whoever watches through it is disconnected (`viewersCutOff: false` with a `warning` when the environment could not be reached)',
  })
  revoke(@Auth() ctx: AuthContext, @Param('id') id: string, @Param('shareId') shareId: string) {
    return this.shares.revoke(ctx, idOr404(id, 'environment'), idOr404(shareId, 'share'));
  }
}

@ApiTags('terminals')
@Controller('api/v1/terminal-shares')
export class SharedTerminalsController {
  constructor(@Inject(SharesService) private readonly shares: SharesService) {}

  @Post('tickets')
  @HttpCode(200)
  @ApiOperation({ summary: 'Observer ticket for a terminal someone shared with a read-only link' })
  @ApiBody({ schema: jsonSchema(ShareTicketBody) })
  ticket(@Auth() ctx: AuthContext, @Body(zBody(ShareTicketBody)) body: z.output<typeof ShareTicketBody>) {
    return this.shares.ticket(ctx, body.token);
  }
}
