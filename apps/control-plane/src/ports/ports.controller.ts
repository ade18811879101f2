import { Body, Controller, Get, HttpCode, Inject, Param, Post, Put, Req } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { PortSharing } from '@berth/protocol';
import { Auth, type AuthedRequest } from '../accounts/auth.guard.js';
import type { AuthContext } from '../accounts/auth.types.js';
import { actorOf } from '../audit/audit.service.js';
import { ApiError } from '../common/errors.js';
import { idOr404, jsonSchema, zBody } from '../common/validation.js';
import { PortsService } from './ports.service.js';

const Empty = z.strictObject({});
const SharingBody = z.strictObject({ sharing: PortSharing });

/** Path ports are digits 1–65535; anything else is a 400 naming the rule. */
export function portParam(raw: string): number {
  const n = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= 65535))
    throw new ApiError(
      400,
      'invalid_port',
      `port ${raw.slice(0, 20)} is not a TCP port`,
      'use a number from 1 to 65535',
    );
  return n;
}

@ApiTags('ports')
@Controller('api/v1/environments/:id/ports')
export class PortsController {
  constructor(@Inject(PortsService) private readonly ports: PortsService) {}

  @Get()
  @ApiOperation({
    summary: 'Ports listening in the environment and those in forwardPorts, with sharing and links',
  })
  list(@Auth() ctx: AuthContext, @Param('id') id: string) {
    return this.ports.list(ctx, idOr404(id, 'environment'));
  }

  @Post(':port/open')
  @HttpCode(200)
  @ApiOperation({ summary: 'A gateway URL with a one-time ticket (60 s) that opens the port in a browser' })
  @ApiBody({ schema: jsonSchema(Empty) })
  open(
    @Auth() ctx: AuthContext,
    @Param('id') id: string,
    @Param('port') port: string,
    @Body(zBody(Empty)) _b: unknown,
  ) {
    return this.ports.open(ctx, idOr404(id, 'environment'), portParam(port));
  }

  @Post(':port/forward')
  @HttpCode(200)
  @ApiOperation({
    summary: 'WebSocket URL and ticket for raw TCP forwarding (berth port-forward); owner only',
  })
  @ApiBody({ schema: jsonSchema(Empty) })
  forward(
    @Auth() ctx: AuthContext,
    @Param('id') id: string,
    @Param('port') port: string,
    @Body(zBody(Empty)) _b: unknown,
  ) {
    return this.ports.forward(ctx, idOr404(id, 'environment'), portParam(port));
  }

  @Put(':port/sharing')
  @ApiOperation({
    summary:
      'Who may open the preview link: owner (default), authenticated (anyone signed in), public (anyone)',
  })
  @ApiBody({ schema: jsonSchema(SharingBody) })
  share(
    @Auth() ctx: AuthContext,
    @Req() req: AuthedRequest,
    @Param('id') id: string,
    @Param('port') port: string,
    @Body(zBody(SharingBody)) body: z.output<typeof SharingBody>,
  ) {
    return this.ports.setSharing(
      ctx,
      idOr404(id, 'environment'),
      portParam(port),
      body.sharing,
      actorOf(req),
    );
  }
}
