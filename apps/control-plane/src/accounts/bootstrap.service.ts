import { Inject, Injectable } from '@nestjs/common';
import { transaction, type Pool } from '@berth/db';
import type { Config } from '../config.js';
import { CONFIG, PG_POOL } from '../common/di.js';
import { ApiError } from '../common/errors.js';
import { newSecret, sha256 } from '../common/tokens.js';
import { timingSafeEqual } from 'node:crypto';
import { MetadataRepository } from './metadata.repository.js';
import { hashPassword } from './passwords.js';
import { UsersRepository, type UserRow } from './users.repository.js';

const BOOTSTRAP_KEY = 'bootstrap';
const ADMIN_LOCK = 72_616_175;

interface BootstrapRecord {
  hash: string;
  issuedAt: string;
  usedAt?: string;
}

export type BootstrapOutcome =
  | { kind: 'admin-exists' }
  | { kind: 'admin-created'; email: string }
  | { kind: 'token-issued'; url: string; token: string }
  | { kind: 'token-already-issued' };

/**
 * First start: create the admin from BERTH_ADMIN_EMAIL/PASSWORD, or issue a one-time bootstrap
 * token. That the token was issued is a row in `metadata`, so it is shown exactly once even if
 * several control planes start together or the admin is later deleted.
 */
@Injectable()
export class BootstrapService {
  constructor(
    @Inject(PG_POOL) private readonly db: Pool,
    @Inject(UsersRepository) private readonly users: UsersRepository,
    @Inject(MetadataRepository) private readonly metadata: MetadataRepository,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  async onFirstStart(): Promise<BootstrapOutcome> {
    const passwordHash = this.config.adminPassword
      ? await hashPassword(this.config.adminPassword)
      : undefined;
    return transaction(this.db, async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [ADMIN_LOCK]);
      const { rows } = await tx.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM users WHERE role = 'admin'`,
      );
      if ((rows[0]?.n ?? 0) > 0) return { kind: 'admin-exists' } as const;
      if (this.config.adminEmail && passwordHash) {
        await tx.query(
          `INSERT INTO users (email, password_hash, role) VALUES ($1, $2, 'admin')
           ON CONFLICT (lower(email)) DO UPDATE SET role = 'admin'`,
          [this.config.adminEmail.toLowerCase(), passwordHash],
        );
        await this.metadata.set('admin_created_from_env', { email: this.config.adminEmail }, tx);
        return { kind: 'admin-created', email: this.config.adminEmail } as const;
      }
      const s = newSecret('boot');
      const record: BootstrapRecord = { hash: s.hash.toString('hex'), issuedAt: new Date().toISOString() };
      if (!(await this.metadata.setOnce(BOOTSTRAP_KEY, record, tx)))
        return { kind: 'token-already-issued' } as const;
      const url = `${this.config.publicUrl}/bootstrap?token=${encodeURIComponent(s.secret)}`;
      return { kind: 'token-issued', url, token: s.secret } as const;
    });
  }

  /** Exchanges the bootstrap token for the first admin account. Single use. */
  async redeem(token: string, email: string, password: string): Promise<UserRow> {
    const passwordHash = await hashPassword(password);
    return transaction(this.db, async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [ADMIN_LOCK]);
      const rec = await this.metadata.get<BootstrapRecord>(BOOTSTRAP_KEY, tx);
      const given = sha256(token);
      const valid = rec && !rec.usedAt && timingSafeEqual(Buffer.from(rec.hash, 'hex'), given);
      if (!valid)
        throw new ApiError(
          400,
          'invalid_bootstrap_token',
          'the bootstrap token is wrong or was already used',
          'use the URL printed on the first start of `berth server`; if an admin exists, sign in instead',
        );
      const { rows } = await tx.query<UserRow>(
        `INSERT INTO users (email, password_hash, role) VALUES ($1, $2, 'admin')
         ON CONFLICT (lower(email)) DO UPDATE SET role = 'admin', password_hash = EXCLUDED.password_hash
         RETURNING id, email, password_hash, role, display_name, created_at, updated_at, created_at::text AS page_at`,
        [email, passwordHash],
      );
      await this.metadata.set(BOOTSTRAP_KEY, { ...rec, usedAt: new Date().toISOString() }, tx);
      return rows[0]!;
    });
  }
}
