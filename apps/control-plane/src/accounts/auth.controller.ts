import { Body, Controller, Get, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import type { z } from 'zod';
import type { Config } from '../config.js';
import { CONFIG } from '../common/di.js';
import { jsonSchema, zBody } from '../common/validation.js';
import { Auth, Public } from './auth.guard.js';
import { AuthService } from './auth.service.js';
import { SESSION_COOKIE, type AuthContext } from './auth.types.js';
import { BootstrapService } from './bootstrap.service.js';
import { BootstrapBody, LoginBody, toUserDto } from './dto.js';
import { UsersRepository } from './users.repository.js';

@ApiTags('auth')
@Controller('api/v1')
export class AuthController {
  constructor(
    @Inject(AuthService) private readonly auth: AuthService,
    @Inject(BootstrapService) private readonly bootstrap: BootstrapService,
    @Inject(UsersRepository) private readonly users: UsersRepository,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  @Public()
  @Post('auth/login')
  @HttpCode(200)
  @ApiOperation({ summary: 'Sign in; sets the httpOnly session cookie' })
  @ApiBody({ schema: jsonSchema(LoginBody) })
  async login(
    @Body(zBody(LoginBody)) body: z.output<typeof LoginBody>,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ) {
    const { user, session, expiresAt } = await this.auth.login(
      body.email,
      body.password,
      req.ip ?? 'unknown',
    );
    this.setCookie(res, session, expiresAt);
    return { user: toUserDto(user) };
  }

  @Public()
  @Post('auth/bootstrap')
  @HttpCode(201)
  @ApiOperation({ summary: 'Create the first admin with the one-time bootstrap token' })
  @ApiBody({ schema: jsonSchema(BootstrapBody) })
  async redeem(
    @Body(zBody(BootstrapBody)) body: z.output<typeof BootstrapBody>,
    @Res({ passthrough: true }) res: Response,
  ) {
    const user = await this.bootstrap.redeem(body.token, body.email, body.password);
    const { session, expiresAt } = await this.auth.startSession(user.id);
    this.setCookie(res, session, expiresAt);
    return { user: toUserDto(user) };
  }

  @Post('auth/logout')
  @HttpCode(200)
  @ApiOperation({ summary: 'End the browser session' })
  async logout(@Auth() ctx: AuthContext, @Res({ passthrough: true }) res: Response) {
    await this.auth.logout(ctx);
    res.clearCookie(SESSION_COOKIE, { path: '/' });
    return { ok: true };
  }

  @Get('me')
  @ApiOperation({ summary: 'Who am I' })
  async me(@Auth() ctx: AuthContext) {
    const user = await this.users.findById(ctx.userId);
    return {
      user: user ? toUserDto(user) : null,
      via: ctx.via,
      scopes: ctx.scopes,
      tokenId: ctx.tokenId ?? null,
    };
  }

  private setCookie(res: Response, value: string, expires: Date): void {
    res.cookie(SESSION_COOKIE, value, {
      httpOnly: true,
      sameSite: 'lax',
      secure: this.config.secureCookies ?? this.config.publicUrl.startsWith('https:'),
      path: '/',
      expires,
    });
  }
}
