import { Inject, Injectable } from '@nestjs/common';
import { transaction, type Pool } from '@berth/db';
import type { Config } from '../config.js';
import { CLOCK, CONFIG, PG_POOL, type Clock } from '../common/di.js';
import { ApiError } from '../common/errors.js';
import { newSecret, sha256 } from '../common/tokens.js';
import { timingSafeEqual } from 'node:crypto';
import { MetadataRepository } from './metadata.repository.js';
import { hashPassword } from './passwords.js';
import { UsersRepository, type UserRow } from './users.repository.js';

const BOOTSTRAP_KEY = 'bootstrap';
const ADMIN_LOCK = 72_616_175;
/** A bootstrap link left lying in a terminal scrollback or log must not stay an admin key forever. */
export const BOOTSTRAP_TTL_MS = 24 * 60 * 60 * 1000;
export const NEW_ADMIN_HINT =
  'restart `berth server` with BERTH_ADMIN_EMAIL and BERTH_ADMIN_PASSWORD set to create the admin directly';

/** `hash` is absent when no token was ever issued (the admin came from the environment). */
interface BootstrapRecord {
  hash?: string;
  issuedAt: string;
  usedAt?: string;
}

export type BootstrapOutcome =
  | { kind: 'admin-exists' }
  | { kind: 'admin-created'; email: string }
  | { kind: 'token-issued'; url: string; token: string }
  | { kind: 'token-already-issued'; expiresAt: string }
  | { kind: 'token-expired'; hint: string };

/**
 * First start: create the admin from BERTH_ADMIN_EMAIL/PASSWORD, or issue a one-time bootstrap
 * token. That the token was issued is a row in `metadata`, so it is shown exactly once even if
 * several control planes start together or the admin is later deleted. The token expires after
 * BOOTSTRAP_TTL_MS and stops working as soon as any admin exists.
 */
@Injectable()
export class BootstrapService {
  constructor(
    @Inject(PG_POOL) private readonly db: Pool,
    @Inject(UsersRepository) private readonly users: UsersRepository,
    @Inject(MetadataRepository) private readonly metadata: MetadataRepository,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(CLOCK) private readonly clock: Clock,
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
      const now = this.clock.now();
      if (this.config.adminEmail && passwordHash) {
        await tx.query(
          `INSERT INTO users (email, password_hash, role) VALUES ($1, $2, 'admin')
           ON CONFLICT (lower(email)) DO UPDATE SET role = 'admin'`,
          [this.config.adminEmail.toLowerCase(), passwordHash],
        );
        await this.metadata.set('admin_created_from_env', { email: this.config.adminEmail }, tx);
        // A token printed on an earlier start must not be able to take over this admin later.
        const rec = await this.metadata.get<BootstrapRecord>(BOOTSTRAP_KEY, tx);
        if (!rec?.usedAt)
          await this.metadata.set(
            BOOTSTRAP_KEY,
            { ...(rec ?? { issuedAt: now.toISOString() }), usedAt: now.toISOString() },
            tx,
          );
        return { kind: 'admin-created', email: this.config.adminEmail } as const;
      }
      const s = newSecret('boot');
      const record: BootstrapRecord = { hash: s.hash.toString('hex'), issuedAt: now.toISOString() };
      if (!(await this.metadata.setOnce(BOOTSTRAP_KEY, record, tx))) {
        // Printed once, never again; an expired (or used-up) token only gets directions.
        const rec = await this.metadata.get<BootstrapRecord>(BOOTSTRAP_KEY, tx);
        const expiresAt = rec ? expiry(rec) : now;
        if (!rec?.hash || rec.usedAt || expiresAt <= now)
          return { kind: 'token-expired', hint: NEW_ADMIN_HINT } as const;
        return { kind: 'token-already-issued', expiresAt: expiresAt.toISOString() } as const;
      }
      const url = `${this.config.publicUrl}/bootstrap?token=${encodeURIComponent(s.secret)}`;
      return { kind: 'token-issued', url, token: s.secret } as const;
    });
  }

  /**
   * Exchanges the bootstrap token for the first admin account. Single use, and only while no admin
   * exists: the advisory lock makes concurrent redeems queue, so exactly one of them wins.
   */
  async redeem(token: string, email: string, password: string): Promise<UserRow> {
    const passwordHash = await hashPassword(password);
    return transaction(this.db, async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [ADMIN_LOCK]);
      const { rows: admins } = await tx.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM users WHERE role = 'admin'`,
      );
      if ((admins[0]?.n ?? 0) > 0)
        throw new ApiError(
          409,
          'admin_exists',
          'the bootstrap token is wrong or was already used: an admin account already exists',
          'sign in instead; an admin creates further accounts (POST /api/v1/users)',
        );
      const rec = await this.metadata.get<BootstrapRecord>(BOOTSTRAP_KEY, tx);
      const given = sha256(token);
      const matches = rec?.hash !== undefined && timingSafeEqual(Buffer.from(rec.hash, 'hex'), given);
      if (!rec || !matches)
        throw new ApiError(
          400,
          'invalid_bootstrap_token',
          'the bootstrap token is wrong or was already used',
          'use the URL printed on the first start of `berth server`; if an admin exists, sign in instead',
        );
      const now = this.clock.now();
      if (rec.usedAt)
        throw new ApiError(
          410,
          'bootstrap_used',
          'the bootstrap token is wrong or was already used',
          `sign in with the admin account it created; if that account is gone, ${NEW_ADMIN_HINT}`,
        );
      if (expiry(rec) <= now)
        throw new ApiError(
          410,
          'bootstrap_expired',
          `the bootstrap token expired at ${expiry(rec).toISOString()}`,
          NEW_ADMIN_HINT,
        );
      // Never take over an existing account (and its password) by its email.
      const { rows } = await tx.query<UserRow>(
        `INSERT INTO users (email, password_hash, role) VALUES ($1, $2, 'admin')
         ON CONFLICT DO NOTHING
         RETURNING id, email, password_hash, role, display_name, created_at, updated_at, created_at::text AS page_at`,
        [email, passwordHash],
      );
      if (!rows[0])
        throw new ApiError(
          409,
          'email_taken',
          `a user with the email ${email} already exists`,
          'choose another email for the admin account',
        );
      await this.metadata.set(BOOTSTRAP_KEY, { ...rec, usedAt: now.toISOString() }, tx);
      return rows[0];
    });
  }
}

function expiry(rec: BootstrapRecord): Date {
  return new Date(Date.parse(rec.issuedAt) + BOOTSTRAP_TTL_MS);
}
