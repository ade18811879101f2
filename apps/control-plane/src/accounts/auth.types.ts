import type { Role } from './users.repository.js';

export type Scope = 'read' | 'write' | 'admin';

/** Who is calling, and with what. Attached to the request by the auth guard. */
export interface AuthContext {
  userId: string;
  email: string;
  role: Role;
  via: 'token' | 'session';
  tokenId?: string;
  sessionId?: string;
  scopes: Scope[];
}

export const SESSION_COOKIE = 'berth_session';
