import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Query } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { z } from 'zod';
import { Auth } from '../accounts/auth.guard.js';
import type { AuthContext } from '../accounts/auth.types.js';
import { ApiError } from '../common/errors.js';
import { PageQuery } from '../common/pagination.js';
import { idOr404, jsonSchema, parseInput, zQuery } from '../common/validation.js';
import { AddRefBody, LaunchTicketBody, PutSettingsBody } from './dto.js';
import { SecretsService } from './secrets.service.js';

const VALUE_FIELDS = ['value', 'values', 'secret', 'secrets', 'data', 'password', 'token'];

/** Someone pasting a secret here gets told where it belongs instead of a generic 400. */
function refuseValues(body: unknown): void {
  if (body && typeof body === 'object' && VALUE_FIELDS.some((f) => f in body))
    throw new ApiError(
      400,
      'values_not_accepted',
      'Berth never accepts or stores secret values',
      'write the value to your own Vault (vault kv put secret/<path> KEY=...) and add only a reference here: {env, path, key}',
    );
}

@ApiTags('secrets')
@Controller('api/v1/secrets')
export class SecretsController {
  constructor(@Inject(SecretsService) private readonly secrets: SecretsService) {}

  @Get('settings')
  @ApiOperation({ summary: 'Your Vault settings (where secrets live; never their values)' })
  get(@Auth() ctx: AuthContext) {
    return this.secrets.getSettings(ctx);
  }

  @Put('settings')
  @ApiBody({ schema: jsonSchema(PutSettingsBody) })
  put(@Auth() ctx: AuthContext, @Body() body: unknown) {
    refuseValues(body);
    return this.secrets.putSettings(ctx, parseInput(PutSettingsBody, body));
  }

  @Delete('settings')
  @HttpCode(200)
  remove(@Auth() ctx: AuthContext) {
    return this.secrets.deleteSettings(ctx);
  }

  @Get('refs')
  list(@Auth() ctx: AuthContext, @Query(zQuery(PageQuery)) q: PageQuery) {
    return this.secrets.listRefs(ctx, q);
  }

  @Post('refs')
  @ApiOperation({ summary: 'Map an env var to a key of a KV v2 path in your Vault' })
  @ApiBody({ schema: jsonSchema(AddRefBody) })
  add(@Auth() ctx: AuthContext, @Body() body: unknown) {
    refuseValues(body);
    return this.secrets.addRef(ctx, parseInput(AddRefBody, body) as z.output<typeof AddRefBody>);
  }

  @Post('launches')
  @ApiOperation({
    summary:
      "A one-minute ticket to send a launch's secrets (a Vault wrapping token or local values) straight to the environment's gateway; put the returned env into the task",
  })
  @ApiBody({ schema: jsonSchema(LaunchTicketBody) })
  launch(@Auth() ctx: AuthContext, @Body() body: unknown) {
    return this.secrets.launchTicket(ctx, parseInput(LaunchTicketBody, body).environmentId);
  }

  @Delete('refs/:id')
  @HttpCode(200)
  removeRef(@Auth() ctx: AuthContext, @Param('id') id: string) {
    return this.secrets.deleteRef(ctx, idOr404(id, 'secret reference'));
  }
}
