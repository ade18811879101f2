import {
  CanActivate,
  ExecutionContext,
  Inject,
  Injectable,
  SetMetadata,
  createParamDecorator,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import type { Config } from '../config.js';
import { CONFIG } from '../common/di.js';
import { forbidden } from '../common/errors.js';
import { AuthService } from './auth.service.js';
import { SESSION_COOKIE, type AuthContext } from './auth.types.js';

const PUBLIC = 'berth:public';
/** Routes anyone may call (login, health, bootstrap). Everything else needs a user. */
export const Public = () => SetMetadata(PUBLIC, true);

export type AuthedRequest = Request & { auth?: AuthContext };

export const Auth = createParamDecorator((_: unknown, ctx: ExecutionContext): AuthContext => {
  const req = ctx.switchToHttp().getRequest<AuthedRequest>();
  if (!req.auth) throw new Error('Auth used on a public route');
  return req.auth;
});

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(AuthService) private readonly auth: AuthService,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const isPublic = this.reflector.getAllAndOverride<boolean>(PUBLIC, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (isPublic) return true;
    const req = context.switchToHttp().getRequest<AuthedRequest>();
    const header = req.headers.authorization;
    const bearer = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    const cookies = (req as Request & { cookies?: Record<string, string> }).cookies;
    const ctx = await this.auth.authenticate(bearer, bearer ? undefined : cookies?.[SESSION_COOKIE]);
    const mutating = !SAFE.has(req.method);
    if (ctx.via === 'token') {
      const need = mutating ? 'write' : 'read';
      if (!ctx.scopes.includes(need))
        throw forbidden(
          `this token lacks the "${need}" scope`,
          `create a token with the ${need} scope: berth token create --scope ${need}`,
        );
      // An admin's token without the admin scope acts as a member.
      if (ctx.role === 'admin' && !ctx.scopes.includes('admin')) ctx.role = 'member';
    } else if (mutating) {
      // Cookies ride along on cross-site requests; a browser always sends Origin on those.
      const origin = req.headers.origin;
      if (origin && !this.sameOrigin(origin, req))
        throw forbidden('cross-site request refused', 'call the API from the Berth web app or with a token');
    }
    req.auth = ctx;
    return true;
  }

  private sameOrigin(origin: string, req: Request): boolean {
    try {
      const o = new URL(origin);
      if (o.origin === new URL(this.config.publicUrl).origin) return true;
      return o.host === req.headers.host;
    } catch {
      return false;
    }
  }
}
