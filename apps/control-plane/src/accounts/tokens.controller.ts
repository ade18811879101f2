import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { z } from 'zod';
import { PageQuery } from '../common/pagination.js';
import { idOr404, jsonSchema, zBody, zQuery } from '../common/validation.js';
import { Auth } from './auth.guard.js';
import type { AuthContext } from './auth.types.js';
import { CreateTokenBody, UpdateTokenBody } from './dto.js';
import { TokensService } from './tokens.service.js';

@ApiTags('tokens')
@Controller('api/v1/tokens')
export class TokensController {
  constructor(@Inject(TokensService) private readonly tokens: TokensService) {}

  @Post()
  @ApiOperation({ summary: 'Create an API token; the response is the only time it is shown' })
  @ApiBody({ schema: jsonSchema(CreateTokenBody) })
  create(@Auth() ctx: AuthContext, @Body(zBody(CreateTokenBody)) body: z.output<typeof CreateTokenBody>) {
    return this.tokens.create(ctx, body);
  }

  @Get()
  list(@Auth() ctx: AuthContext, @Query(zQuery(PageQuery)) q: PageQuery) {
    return this.tokens.list(ctx, q);
  }

  @Get(':id')
  async get(@Auth() ctx: AuthContext, @Param('id') id: string) {
    return { token: await this.tokens.get(ctx, idOr404(id, 'token')) };
  }

  @Patch(':id')
  @ApiBody({ schema: jsonSchema(UpdateTokenBody) })
  rename(
    @Auth() ctx: AuthContext,
    @Param('id') id: string,
    @Body(zBody(UpdateTokenBody)) body: z.output<typeof UpdateTokenBody>,
  ) {
    return this.tokens.rename(ctx, idOr404(id, 'token'), body);
  }

  @Delete(':id')
  @HttpCode(200)
  @ApiOperation({ summary: 'Revoke a token' })
  async revoke(@Auth() ctx: AuthContext, @Param('id') id: string) {
    await this.tokens.revoke(ctx, idOr404(id, 'token'));
    return { revoked: true };
  }
}
