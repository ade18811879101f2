import { randomBytes, randomUUID } from 'node:crypto';

/** An error answer in Vault's shape: `{"errors": [...]}` with an HTTP status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
  ) {
    super(errors.join('; ') || `HTTP ${status}`);
  }
}

export const badRequest = (msg: string): HttpError => new HttpError(400, [msg]);
/** Vault's answer for a missing, expired or revoked token. */
export const invalidToken = (): HttpError => new HttpError(403, ['permission denied']);
/** Vault's answer for an ACL denial: a go-multierror with one entry. */
export const aclDenied = (): HttpError =>
  new HttpError(403, ['1 error occurred:\n\t* permission denied\n\n']);
export const noRoute = (path: string): HttpError =>
  new HttpError(404, [`no handler for route "${path}". route entry not found.`]);

/** Vault's 32-day system default TTL. */
export const SYSTEM_DEFAULT_TTL = 768 * 3600;

/** Parses Vault duration inputs: seconds as number or digits, or Go durations like `1h30m`. */
export function parseDuration(v: unknown, field: string): number {
  if (v === undefined || v === null || v === '') return 0;
  if (typeof v === 'number' && Number.isFinite(v)) return Math.floor(v);
  if (typeof v === 'string') {
    if (/^\d+$/.test(v)) return Number(v);
    const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
    let total = 0;
    let consumed = '';
    for (const m of v.matchAll(re)) {
      const n = Number(m[1]);
      const unit = m[2];
      total += unit === 'h' ? n * 3600 : unit === 'm' ? n * 60 : unit === 's' ? n : n / 1000;
      consumed += m[0];
    }
    if (consumed === v) return Math.floor(total);
  }
  throw badRequest(
    `error converting input ${JSON.stringify(v)} for field "${field}": time: invalid duration`,
  );
}

/** Vault accepts lists as JSON arrays or comma-separated strings. */
export function parseStringList(v: unknown): string[] {
  if (v === undefined || v === null || v === '') return [];
  if (Array.isArray(v))
    return v
      .map(String)
      .map((s) => s.trim())
      .filter((s) => s !== '');
  return String(v)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export function newToken(): string {
  return `hvs.${randomBytes(18).toString('base64url')}`;
}

export function newAccessor(): string {
  return randomBytes(18).toString('base64url');
}

export function newUuid(): string {
  return randomUUID();
}

export function mountAccessor(type: string): string {
  return `auth_${type}_${randomBytes(4).toString('hex')}`;
}

/** Vault's generic envelope around `data` / `auth` / `wrap_info`. */
export function envelope(fields: {
  data?: unknown;
  auth?: unknown;
  wrap_info?: unknown;
  mount_type?: string;
}): Record<string, unknown> {
  return {
    request_id: newUuid(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data: fields.data ?? null,
    wrap_info: fields.wrap_info ?? null,
    warnings: null,
    auth: fields.auth ?? null,
    mount_type: fields.mount_type ?? '',
  };
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}
