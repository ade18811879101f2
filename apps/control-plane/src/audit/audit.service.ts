import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { CLOCK, METRICS, type Clock } from '../common/di.js';
import { ApiError } from '../common/errors.js';
import type { AuthedRequest } from '../accounts/auth.guard.js';
import { AuditRepository, type AuditFilter, type AuditKey, type AuditRow } from './audit.repository.js';

export const AUDIT_LOGGER = Symbol('AUDIT_LOGGER');

/** One audited event. Other modules call `AuditService.record` (e.g. terminal attach). */
export interface AuditEntry {
  /** Short verb, `<resource>.<verb>`: `tokens.create`, `terminals.attach`. */
  action: string;
  /** HTTP status, or for non-HTTP events the status the caller answered with. */
  result: number;
  userId?: string | null;
  actorEmail?: string | null;
  tokenId?: string | null;
  ip?: string | null;
  /** `METHOD /api/v1/pattern/:id` when the event is an API call. */
  route?: string | null;
  targetType?: string | null;
  targetId?: string | null;
  requestId?: string | null;
  /** Small, non-secret facts (role asked for, email tried). Sanitized and size-capped. */
  details?: Record<string, unknown>;
}

export interface AuditItem {
  id: string;
  at: string;
  userId: string | null;
  actorEmail: string | null;
  tokenId: string | null;
  ip: string | null;
  action: string;
  route: string | null;
  targetType: string | null;
  targetId: string | null;
  result: number;
  requestId: string | null;
  details: Record<string, unknown>;
}

// Keys that could carry a credential are dropped whatever the caller passes.
const SECRET_KEY = /pass(word)?|secret|token(?!_?id)|key|authorization|cookie|credential|wrap/i;
const MAX_KEYS = 12;
const MAX_STRING = 320;

/** Caps details to a few short scalars: the table must never become a copy of request bodies. */
export function sanitizeDetails(d: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!d) return out;
  for (const [k, v] of Object.entries(d)) {
    if (Object.keys(out).length >= MAX_KEYS) break;
    if (SECRET_KEY.test(k) || k.length > 40) continue;
    if (typeof v === 'string') out[k] = v.length > MAX_STRING ? `${v.slice(0, MAX_STRING)}…` : v;
    else if (typeof v === 'number' || typeof v === 'boolean' || v === null) out[k] = v;
  }
  return out;
}

const cap = (s: string | null | undefined, n: number) => (s == null ? null : s.slice(0, n));

/** The caller of a request, as the auth guard resolved it, for `record({...actorOf(req), ...})`. */
export function actorOf(
  req: AuthedRequest,
): Pick<AuditEntry, 'userId' | 'actorEmail' | 'tokenId' | 'ip' | 'requestId'> {
  const id = (req as { id?: unknown }).id;
  return {
    userId: req.auth?.userId ?? null,
    actorEmail: req.auth?.email ?? null,
    tokenId: req.auth?.tokenId ?? null,
    ip: req.ip ?? req.socket.remoteAddress ?? null,
    requestId: typeof id === 'string' ? id : null,
  };
}

function encodeCursor(k: AuditKey): string {
  return Buffer.from(JSON.stringify([k.at, k.id])).toString('base64url');
}

function decodeCursor(cursor: string | undefined): AuditKey | null {
  if (!cursor) return null;
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string')
      if (!Number.isNaN(Date.parse(v[0])) && /^\d{1,19}$/.test(v[1])) return { at: v[0], id: v[1] };
  } catch {
    // fall through
  }
  throw new ApiError(
    400,
    'invalid_cursor',
    'the cursor is not one this API returned',
    'pass nextCursor from the previous page unchanged, or omit it for the first page',
  );
}

function toItem(r: AuditRow): AuditItem {
  return {
    id: r.id,
    at: r.at.toISOString(),
    userId: r.user_id,
    actorEmail: r.actor_email,
    tokenId: r.token_id,
    ip: r.ip,
    action: r.action,
    route: r.route,
    targetType: r.target_type,
    targetId: r.target_id,
    result: r.result,
    requestId: r.request_id,
    details: r.details,
  };
}

@Injectable()
export class AuditService implements OnApplicationShutdown {
  private readonly pending = new Set<Promise<void>>();
  private readonly failures: Counter;

  constructor(
    @Inject(AuditRepository) private readonly repo: AuditRepository,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(METRICS) registry: Registry,
    @Inject(AUDIT_LOGGER) private readonly logger: Logger,
  ) {
    this.failures = new Counter({
      name: 'berth_audit_write_failures_total',
      help: 'Audit rows that could not be written (each is also logged)',
      registers: [registry],
    });
  }

  /**
   * Writes one row. Never throws: an audit write failing must not turn a done action into an
   * error for its caller; it is logged with every field and counted in a metric instead.
   */
  record(e: AuditEntry): Promise<void> {
    const row = {
      at: this.clock.now(),
      userId: e.userId ?? null,
      actorEmail: cap(e.actorEmail, 320),
      tokenId: e.tokenId && /^[0-9a-f-]{36}$/i.test(e.tokenId) ? e.tokenId : null,
      ip: cap(e.ip, 64),
      action: e.action.slice(0, 120),
      route: cap(e.route, 240),
      targetType: cap(e.targetType, 60),
      targetId: cap(e.targetId, 120),
      result: e.result,
      requestId: cap(e.requestId, 64),
      details: sanitizeDetails(e.details),
    };
    const p = this.repo.insert(row).catch((err: unknown) => {
      this.failures.inc();
      this.logger.error({ err, audit: row }, 'audit row not written');
    });
    this.track(p);
    return p;
  }

  private track(p: Promise<void>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Resolves once every row recorded so far is written (tests, graceful shutdown). */
  async settled(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
  }

  /**
   * Reserves a row to be written later (when a response has finished), so that `settled()`
   * also waits for requests whose response a client has seen but whose row is not queued yet.
   */
  reserve(): (e: AuditEntry) => void {
    let release!: () => void;
    const p = new Promise<void>((r) => (release = r));
    this.track(p);
    return (e) => void this.record(e).then(release);
  }

  /** After the HTTP server closed: rows of the last requests are written before the pool ends. */
  async onApplicationShutdown(): Promise<void> {
    await this.settled();
  }

  async list(f: AuditFilter, q: { limit: number; cursor?: string | undefined }) {
    const rows = await this.repo.list(f, { limit: q.limit, before: decodeCursor(q.cursor) });
    const more = rows.length > q.limit;
    const items = more ? rows.slice(0, q.limit) : rows;
    const last = items[items.length - 1];
    return {
      items: items.map(toItem),
      nextCursor: more && last ? encodeCursor({ at: last.page_at, id: last.id }) : null,
    };
  }
}
