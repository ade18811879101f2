import { Body, Controller, Get, Inject, Param, Put } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Auth } from '../accounts/auth.guard.js';
import type { AuthContext } from '../accounts/auth.types.js';
import { idOr404, jsonSchema, parseInput } from '../common/validation.js';
import { PutQuotasBody } from './dto.js';
import { QuotasService } from './quotas.service.js';

@ApiTags('quotas')
@Controller('api/v1')
export class QuotasController {
  constructor(@Inject(QuotasService) private readonly quotas: QuotasService) {}

  @Get('me/quotas')
  @ApiOperation({ summary: 'Your limits and what you use of them now' })
  mine(@Auth() ctx: AuthContext) {
    return this.quotas.read(ctx, ctx.userId);
  }

  @Get('users/:id/quotas')
  @ApiOperation({ summary: "A user's limits, overrides and usage (admin, or yourself)" })
  get(@Auth() ctx: AuthContext, @Param('id') id: string) {
    return this.quotas.read(ctx, idOr404(id, 'user'));
  }

  @Put('users/:id/quotas')
  @ApiOperation({ summary: "Set a user's quotas (admin); null returns a field to the default" })
  @ApiBody({ schema: jsonSchema(PutQuotasBody) })
  put(@Auth() ctx: AuthContext, @Param('id') id: string, @Body() body: unknown) {
    return this.quotas.put(ctx, idOr404(id, 'user'), parseInput(PutQuotasBody, body));
  }
}
