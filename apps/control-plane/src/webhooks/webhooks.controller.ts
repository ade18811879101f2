import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Auth } from '../accounts/auth.guard.js';
import type { AuthContext } from '../accounts/auth.types.js';
import { PageQuery } from '../common/pagination.js';
import { idOr404, jsonSchema, parseInput, zQuery } from '../common/validation.js';
import { CreateWebhookBody, UpdateWebhookBody } from './dto.js';
import { WebhooksService } from './webhooks.service.js';

@ApiTags('webhooks')
@Controller('api/v1/webhooks')
export class WebhooksController {
  constructor(@Inject(WebhooksService) private readonly webhooks: WebhooksService) {}

  @Post()
  @ApiOperation({ summary: 'Subscribe a URL to events; the answer holds the signing secret, shown once' })
  @ApiBody({ schema: jsonSchema(CreateWebhookBody) })
  create(@Auth() ctx: AuthContext, @Body() body: unknown) {
    return this.webhooks.create(ctx, parseInput(CreateWebhookBody, body));
  }

  @Get()
  list(@Auth() ctx: AuthContext, @Query(zQuery(PageQuery)) q: PageQuery) {
    return this.webhooks.list(ctx, q);
  }

  @Get(':id')
  get(@Auth() ctx: AuthContext, @Param('id') id: string) {
    return this.webhooks.get(ctx, idOr404(id, 'webhook'));
  }

  @Patch(':id')
  @ApiBody({ schema: jsonSchema(UpdateWebhookBody) })
  update(@Auth() ctx: AuthContext, @Param('id') id: string, @Body() body: unknown) {
    return this.webhooks.update(ctx, idOr404(id, 'webhook'), parseInput(UpdateWebhookBody, body));
  }

  @Delete(':id')
  @HttpCode(200)
  remove(@Auth() ctx: AuthContext, @Param('id') id: string) {
    return this.webhooks.remove(ctx, idOr404(id, 'webhook'));
  }

  @Post(':id/rotate-secret')
  @HttpCode(200)
  @ApiOperation({ summary: 'New signing secret; the old one stops verifying at once' })
  rotate(@Auth() ctx: AuthContext, @Param('id') id: string) {
    return this.webhooks.rotateSecret(ctx, idOr404(id, 'webhook'));
  }

  @Post(':id/ping')
  @HttpCode(202)
  @ApiOperation({ summary: 'Queue a `ping` delivery to check the receiver' })
  ping(@Auth() ctx: AuthContext, @Param('id') id: string) {
    return this.webhooks.ping(ctx, idOr404(id, 'webhook'));
  }

  @Get(':id/deliveries')
  @ApiOperation({ summary: 'The delivery log, newest first: state, attempts, last status and error' })
  deliveries(@Auth() ctx: AuthContext, @Param('id') id: string, @Query(zQuery(PageQuery)) q: PageQuery) {
    return this.webhooks.deliveries(ctx, idOr404(id, 'webhook'), q);
  }
}
