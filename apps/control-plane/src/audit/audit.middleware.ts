import type { RequestHandler, Response } from 'express';
import type { AuthedRequest } from '../accounts/auth.guard.js';
import { actorOf, type AuditEntry, type AuditService } from './audit.service.js';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** A POST whose last path segment is one of these is that action, not a create. */
const ACTIONS = new Set([
  'login',
  'logout',
  'bootstrap',
  'cancel',
  'start',
  'stop',
  'restart',
  'resume',
  'retry',
  'attach',
  'snapshot',
  'rotate',
  'revoke',
]);
const VERB: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'update', DELETE: 'delete' };
const API = '/api/v1';
/**
 * Names people search for, where the derived one would be clumsy. Terminal tickets are how a
 * terminal is opened or attached to (the WebSocket then goes to the gateway, not through here).
 */
const ALIASES: Record<string, string> = {
  'POST /api/v1/environments/:id/terminals': 'terminals.open',
  'POST /api/v1/environments/:id/terminals/:sessionId/tickets': 'terminals.attach',
  'POST /api/v1/environments/:id/terminals/:sessionId/shares': 'terminals.share',
  'DELETE /api/v1/environments/:id/terminals/shares/:shareId': 'terminals.share.revoke',
  // Someone else attaching, read-only, through a shared link.
  'POST /api/v1/terminal-shares/tickets': 'terminals.attach.shared',
  // Port tickets (docs/ports.md); visits of a preview link are recorded as ports.open too.
  'POST /api/v1/environments/:id/ports/:port/open': 'ports.open',
  'POST /api/v1/environments/:id/ports/:port/forward': 'ports.forward',
  'PUT /api/v1/environments/:id/ports/:port/sharing': 'ports.sharing.set',
};
// Body fields worth keeping: short enum-like values (a terminal role, a user's new role).
const KEPT_BODY_FIELDS = ['role'];

/** `/api/v1/tokens/<uuid>` → `/api/v1/tokens/:id` when no route matched (bad JSON, 413, 404). */
function normalize(path: string): string {
  return path
    .split('/')
    .slice(0, 10)
    .map((seg) =>
      /^[0-9a-f-]{36}$/i.test(seg) || /^\d+$/.test(seg)
        ? ':id'
        : seg.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40),
    )
    .join('/');
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const singular = (s: string) => (s.endsWith('s') && !s.endsWith('ss') ? s.slice(0, -1) : s);

/** `tokens.create`, `tasks.cancel`, `environments.terminals.create` from method and route pattern. */
export function verbOf(method: string, pattern: string): string {
  const alias = ALIASES[`${method} ${pattern}`];
  if (alias) return alias;
  const literals = pattern
    .slice(API.length)
    .split('/')
    .filter((s) => s && !s.startsWith(':'));
  const last = pattern.split('/').at(-1) ?? '';
  if (method === 'POST' && literals.length > 1 && ACTIONS.has(last)) return literals.join('.');
  return [...literals, VERB[method] ?? method.toLowerCase()].join('.');
}

/** The id a create answered with: `{id}` or `{user: {id}}`; only id-shaped strings. */
function createdIdOf(body: unknown): { id?: string; email?: string } {
  if (!body || typeof body !== 'object') return {};
  const idOf = (o: unknown) => {
    const v = o && typeof o === 'object' ? (o as Record<string, unknown>) : {};
    const id = typeof v.id === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(v.id) ? v.id : undefined;
    return id ? { id, ...(typeof v.email === 'string' ? { email: v.email } : {}) } : undefined;
  };
  const top = idOf(body);
  if (top) return top;
  for (const v of Object.values(body as Record<string, unknown>)) {
    const inner = idOf(v);
    if (inner) return inner;
  }
  return {};
}

export function describeRequest(req: AuthedRequest, res: Response, answered: unknown): AuditEntry {
  const path = req.originalUrl.split('?')[0] ?? '';
  const matched = (req.route as { path?: unknown } | undefined)?.path;
  const pattern = typeof matched === 'string' ? `${req.baseUrl}${matched}` : normalize(path);
  const action = verbOf(req.method, pattern);
  // Params by position in the pattern: independent of when the router resets req.params.
  const names = pattern.split('/');
  const values = path.split('/');
  let targetType: string | null = null;
  let targetId: string | null = null;
  const details: Record<string, unknown> = {};
  names.forEach((n, i) => {
    if (n.startsWith(':') && values[i]) {
      // A parent (the environment of a terminal) is kept in details; the last param is the target.
      if (targetType && targetId) details[`${targetType}Id`] = targetId;
      targetType = singular(names[i - 1] ?? 'resource');
      targetId = safeDecode(values[i]).slice(0, 120);
    }
  });
  const body = req.body as Record<string, unknown> | undefined;
  for (const k of KEPT_BODY_FIELDS) {
    const v = body?.[k];
    if (typeof v === 'string' && /^[a-z_-]{1,20}$/.test(v)) details[k] = v;
  }
  const ok = res.statusCode < 400;
  const created = ok ? createdIdOf(answered) : {};
  const entry: AuditEntry = {
    ...actorOf(req),
    action,
    route: `${req.method} ${pattern}`,
    result: res.statusCode,
    details,
  };
  if (pattern.startsWith(`${API}/auth/`)) {
    // Sign-in attempts: the email tried (never the password); on success, who it was.
    if (body && typeof body.email === 'string') details.email = body.email;
    if (!entry.userId && created.id) {
      entry.userId = created.id;
      entry.actorEmail = created.email ?? null;
    }
    targetType = 'user';
    targetId = created.id ?? entry.userId ?? null;
  } else if (!targetId) {
    const first = names[names.indexOf('v1') + 1];
    targetType = first ? singular(first) : null;
    targetId = created.id ?? null;
  }
  if (req.auth) details.via = req.auth.via;
  if (typeof matched !== 'string') details.routed = false;
  if (!res.writableFinished) details.aborted = true;
  return { ...entry, targetType, targetId };
}

/**
 * Audits every mutating call under /api/v1 once its response is done, whatever its status.
 * Express middleware (registered in server.ts before the body parsers) rather than a Nest
 * interceptor, so that auth failures, bad JSON and 413s are audited too.
 */
export function auditTrail(audit: AuditService): RequestHandler {
  return (req, res, next) => {
    const path = req.originalUrl.split('?')[0] ?? '';
    if (!MUTATING.has(req.method) || !(path === API || path.startsWith(`${API}/`))) return next();
    const write = audit.reserve();
    let answered: unknown;
    const json = res.json.bind(res);
    res.json = ((body: unknown) => {
      answered = body;
      return json(body);
    }) as typeof res.json;
    res.once('close', () => {
      let entry: AuditEntry;
      try {
        entry = describeRequest(req as AuthedRequest, res, answered);
      } catch {
        // A request that cannot be described is still recorded, with what is certain.
        entry = {
          ...actorOf(req as AuthedRequest),
          action: 'api.unknown',
          route: `${req.method} ${normalize(path)}`,
          result: res.statusCode,
        };
      }
      write(entry);
    });
    next();
  };
}
