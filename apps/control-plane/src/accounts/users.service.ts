import { Inject, Injectable } from '@nestjs/common';
import type { z } from 'zod';
import { ApiError, forbidden, notFound } from '../common/errors.js';
import { decodeCursor, toPage, type Page, type PageQuery } from '../common/pagination.js';
import type { AuthContext } from './auth.types.js';
import { toUserDto, type CreateUserBody, type UpdateUserBody, type UserDto } from './dto.js';
import { hashPassword, verifyPassword } from './passwords.js';
import { SessionsRepository } from './sessions.repository.js';
import { UsersRepository } from './users.repository.js';

const adminOnly = () => forbidden('only an admin can do this', 'ask an admin of this Berth installation');

/** Admins manage every account; a member sees and edits only their own (others are 404). */
@Injectable()
export class UsersService {
  constructor(
    @Inject(UsersRepository) private readonly users: UsersRepository,
    @Inject(SessionsRepository) private readonly sessions: SessionsRepository,
  ) {}

  async create(ctx: AuthContext, body: z.output<typeof CreateUserBody>): Promise<UserDto> {
    if (ctx.role !== 'admin') throw adminOnly();
    const row = await this.users.create({
      email: body.email,
      passwordHash: await hashPassword(body.password),
      role: body.role,
      displayName: body.displayName ?? null,
    });
    if (!row)
      throw new ApiError(
        409,
        'email_taken',
        `a user with email ${body.email} already exists`,
        'use another email, or update that user',
      );
    return toUserDto(row);
  }

  async list(ctx: AuthContext, q: PageQuery): Promise<Page<UserDto>> {
    const rows = await this.users.list({
      limit: q.limit,
      after: decodeCursor(q.cursor),
      ...(ctx.role === 'admin' ? {} : { onlyId: ctx.userId }),
    });
    return toPage(rows, q.limit, toUserDto);
  }

  async get(ctx: AuthContext, id: string): Promise<UserDto> {
    if (ctx.role !== 'admin' && id !== ctx.userId) throw notFound('user', id);
    const row = await this.users.findById(id);
    if (!row) throw notFound('user', id);
    return toUserDto(row);
  }

  async update(
    ctx: AuthContext,
    id: string,
    body: z.output<typeof UpdateUserBody>,
  ): Promise<{ user: UserDto; changed: boolean }> {
    if (ctx.role !== 'admin' && id !== ctx.userId) throw notFound('user', id);
    const current = await this.users.findById(id);
    if (!current) throw notFound('user', id);
    if (body.role !== undefined && body.role !== current.role) {
      if (ctx.role !== 'admin') throw forbidden('only an admin can change roles', 'ask an admin');
      if (current.role === 'admin' && (await this.users.countAdmins()) <= 1)
        throw new ApiError(409, 'last_admin', 'this is the last admin', 'make another user admin first');
    }
    if (body.password !== undefined && id === ctx.userId) {
      // Your own password: prove you know the current one. An admin resetting someone else's
      // needs no such proof (the audit log records who did it: users.update on that user).
      if (body.currentPassword === undefined)
        throw new ApiError(
          400,
          'current_password_required',
          'changing your password needs your current password',
          'send it as currentPassword; if you forgot it, ask an admin to reset it',
        );
      if (!(await verifyPassword(current.password_hash, body.currentPassword)))
        throw forbidden(
          'the current password is wrong',
          'try again; if you forgot it, ask an admin to reset it',
        );
    }
    const patch: { role?: 'admin' | 'member'; passwordHash?: string; displayName?: string | null } = {};
    if (body.role !== undefined && body.role !== current.role) patch.role = body.role;
    if (body.displayName !== undefined && body.displayName !== current.display_name)
      patch.displayName = body.displayName;
    if (body.password !== undefined) patch.passwordHash = await hashPassword(body.password);
    if (Object.keys(patch).length === 0) return { user: toUserDto(current), changed: false };
    const row = await this.users.update(id, patch);
    if (!row) throw notFound('user', id);
    // A new password or role ends the user's browser sessions; API tokens stay (revoke them separately).
    if (patch.passwordHash || patch.role) await this.sessions.deleteForUser(id);
    return { user: toUserDto(row), changed: true };
  }

  async delete(ctx: AuthContext, id: string): Promise<void> {
    if (ctx.role !== 'admin') {
      if (id !== ctx.userId) throw notFound('user', id);
      throw adminOnly();
    }
    const row = await this.users.findById(id);
    if (!row) throw notFound('user', id);
    if (row.role === 'admin' && (await this.users.countAdmins()) <= 1)
      throw new ApiError(409, 'last_admin', 'cannot delete the last admin', 'make another user admin first');
    // Refuse rather than destroy: destroying would throw away the files in their workspaces.
    const r = await this.users.deleteUnlessEnvironments(id);
    if (r.liveEnvironments.length) {
      const names = r.liveEnvironments.slice(0, 10).join(', ');
      const more = r.liveEnvironments.length > 10 ? ` and ${r.liveEnvironments.length - 10} more` : '';
      throw new ApiError(
        409,
        'user_has_environments',
        `${row.email} still has ${r.liveEnvironments.length} environment(s): ${names}${more}`,
        'destroy their environments first (`berth env rm <name>` as that user), then delete the user',
      );
    }
    if (!r.deleted) throw notFound('user', id);
  }
}
