import { Inject, Injectable } from '@nestjs/common';
import type { z } from 'zod';
import type { Config } from '../config.js';
import { CLOCK, CONFIG, type Clock } from '../common/di.js';
import { forbidden, notFound } from '../common/errors.js';
import { decodeCursor, toPage, type Page, type PageQuery } from '../common/pagination.js';
import { newSecret } from '../common/tokens.js';
import type { AuthContext } from './auth.types.js';
import { toTokenDto, type CreateTokenBody, type TokenDto, type UpdateTokenBody } from './dto.js';
import { TokensRepository } from './tokens.repository.js';

/** API tokens belong to their creator; nobody else, admins included, can see or revoke them. */
@Injectable()
export class TokensService {
  constructor(
    @Inject(TokensRepository) private readonly tokens: TokensRepository,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  async create(
    ctx: AuthContext,
    body: z.output<typeof CreateTokenBody>,
  ): Promise<TokenDto & { token: string }> {
    const scopes = body.scopes ?? (ctx.role === 'admin' ? ['read', 'write', 'admin'] : ['read', 'write']);
    // A token never carries more than its creator holds right now.
    const excess = scopes.filter((s) => !ctx.scopes.includes(s));
    if (excess.length > 0)
      throw forbidden(
        `you cannot grant scope(s) you do not hold: ${excess.join(', ')}`,
        'request only read/write, or sign in as an admin',
      );
    const days = Math.min(body.expiresInDays ?? 90, this.config.tokenMaxDays);
    const s = newSecret('pat');
    const row = await this.tokens.create({
      userId: ctx.userId,
      name: body.name,
      hash: s.hash,
      prefix: s.prefix,
      scopes: [...new Set(scopes)],
      expiresAt: new Date(this.clock.now().getTime() + days * 86_400_000),
    });
    return { ...toTokenDto(row), token: s.secret };
  }

  async list(ctx: AuthContext, q: PageQuery): Promise<Page<TokenDto>> {
    const rows = await this.tokens.listOwned(ctx.userId, { limit: q.limit, after: decodeCursor(q.cursor) });
    return toPage(rows, q.limit, toTokenDto);
  }

  async get(ctx: AuthContext, id: string): Promise<TokenDto> {
    const row = await this.tokens.findOwned(ctx.userId, id);
    if (!row) throw notFound('token', id);
    return toTokenDto(row);
  }

  async rename(
    ctx: AuthContext,
    id: string,
    body: z.output<typeof UpdateTokenBody>,
  ): Promise<{ token: TokenDto; changed: boolean }> {
    const row = await this.tokens.findOwned(ctx.userId, id);
    if (!row) throw notFound('token', id);
    if (row.name === body.name) return { token: toTokenDto(row), changed: false };
    const updated = await this.tokens.rename(ctx.userId, id, body.name);
    if (!updated) throw notFound('token', id);
    return { token: toTokenDto(updated), changed: true };
  }

  async revoke(ctx: AuthContext, id: string): Promise<void> {
    if (!(await this.tokens.revoke(ctx.userId, id, this.clock.now()))) throw notFound('token', id);
  }
}
