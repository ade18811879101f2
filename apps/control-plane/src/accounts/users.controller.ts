import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { z } from 'zod';
import { PageQuery } from '../common/pagination.js';
import { idOr404, jsonSchema, zBody, zQuery } from '../common/validation.js';
import { Auth } from './auth.guard.js';
import type { AuthContext } from './auth.types.js';
import { CreateUserBody, UpdateUserBody } from './dto.js';
import { UsersService } from './users.service.js';

@ApiTags('users')
@Controller('api/v1/users')
export class UsersController {
  constructor(@Inject(UsersService) private readonly users: UsersService) {}

  @Post()
  @ApiOperation({ summary: 'Create a user (admin)' })
  @ApiBody({ schema: jsonSchema(CreateUserBody) })
  async create(@Auth() ctx: AuthContext, @Body(zBody(CreateUserBody)) body: z.output<typeof CreateUserBody>) {
    return { user: await this.users.create(ctx, body) };
  }

  @Get()
  @ApiOperation({ summary: 'List users (admins see all; members see themselves)' })
  list(@Auth() ctx: AuthContext, @Query(zQuery(PageQuery)) q: PageQuery) {
    return this.users.list(ctx, q);
  }

  @Get(':id')
  async get(@Auth() ctx: AuthContext, @Param('id') id: string) {
    return { user: await this.users.get(ctx, idOr404(id, 'user')) };
  }

  @Patch(':id')
  @ApiBody({ schema: jsonSchema(UpdateUserBody) })
  update(
    @Auth() ctx: AuthContext,
    @Param('id') id: string,
    @Body(zBody(UpdateUserBody)) body: z.output<typeof UpdateUserBody>,
  ) {
    return this.users.update(ctx, idOr404(id, 'user'), body);
  }

  @Delete(':id')
  @HttpCode(200)
  async delete(@Auth() ctx: AuthContext, @Param('id') id: string) {
    await this.users.delete(ctx, idOr404(id, 'user'));
    return { deleted: true };
  }
}
