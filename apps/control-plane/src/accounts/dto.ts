import { z } from 'zod';
import type { TokenRow } from './tokens.repository.js';
import type { UserRow } from './users.repository.js';

export const Email = z.string().trim().toLowerCase().email({ message: 'must be an email address' }).max(254);
export const Password = z.string().min(8, { message: 'must be at least 8 characters' }).max(256);
export const RoleSchema = z.enum(['admin', 'member']);
export const Scope = z.enum(['read', 'write', 'admin']);

export const LoginBody = z.strictObject({ email: z.string().max(254), password: z.string().max(256) });
export const BootstrapBody = z.strictObject({
  token: z.string().min(1).max(200),
  email: Email,
  password: Password,
});
export const CreateUserBody = z.strictObject({
  email: Email,
  password: Password,
  role: RoleSchema.default('member'),
  displayName: z.string().trim().min(1).max(100).optional(),
});
export const UpdateUserBody = z.strictObject({
  role: RoleSchema.optional(),
  password: Password.optional(),
  /** Required to change your own password (a stolen session or token alone cannot). */
  currentPassword: z.string().min(1).max(1024).optional(),
  displayName: z.string().trim().min(1).max(100).nullable().optional(),
});
export const CreateTokenBody = z.strictObject({
  name: z.string().trim().min(1).max(100),
  expiresInDays: z.number().int().min(1).max(3650).optional(),
  scopes: z.array(Scope).min(1).max(3).optional(),
});
export const UpdateTokenBody = z.strictObject({ name: z.string().trim().min(1).max(100) });

export interface UserDto {
  id: string;
  email: string;
  role: 'admin' | 'member';
  displayName: string | null;
  createdAt: string;
}

export function toUserDto(u: UserRow): UserDto {
  return {
    id: u.id,
    email: u.email,
    role: u.role,
    displayName: u.display_name,
    createdAt: u.created_at.toISOString(),
  };
}

export interface TokenDto {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  expiresAt: string | null;
  lastUsedAt: string | null;
  createdAt: string;
}

export function toTokenDto(t: TokenRow): TokenDto {
  return {
    id: t.id,
    name: t.name,
    prefix: t.prefix,
    scopes: t.scopes,
    expiresAt: t.expires_at?.toISOString() ?? null,
    lastUsedAt: t.last_used_at?.toISOString() ?? null,
    createdAt: t.created_at.toISOString(),
  };
}
