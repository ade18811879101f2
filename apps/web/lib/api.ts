// The typed client for the Berth API. Same origin as the page (the control plane serves both),
// so the session cookie rides along and no URL is configured. Every failure becomes an ApiError
// carrying the server's {code, message, hint}; nothing else (stack traces, HTML) reaches the UI.

export type Role = 'admin' | 'member';
export type Scope = 'read' | 'write' | 'admin';

export interface User {
  id: string;
  email: string;
  role: Role;
  displayName: string | null;
  createdAt: string;
}

export interface Me {
  user: User | null;
  via: 'session' | 'token';
  scopes: Scope[];
  tokenId: string | null;
}

export interface Token {
  id: string;
  name: string;
  prefix: string;
  scopes: Scope[];
  expiresAt: string | null;
  lastUsedAt: string | null;
  createdAt: string;
}

/** Only the create response carries the secret, and only once. */
export interface CreatedToken extends Token {
  token: string;
}

export interface SecretSettings {
  vaultAddress: string;
  authMount: string;
  role: string;
  audience: string;
  namespace: string | null;
  caCert: string | null;
  kvMount: string;
  updatedAt: string;
}

export type SecretSettingsInput = Omit<SecretSettings, 'updatedAt'>;

/** Where one env var's value lives in the user's Vault: a key of a KV v2 path. Never the value. */
export interface SecretRef {
  id: string;
  env: string;
  path: string;
  key: string;
  mount: string | null;
  createdAt: string;
}

export type TaskState =
  'queued' | 'provisioning' | 'running' | 'succeeded' | 'failed' | 'canceled' | 'timed_out';
export const TERMINAL_TASK_STATES: readonly TaskState[] = ['succeeded', 'failed', 'canceled', 'timed_out'];

export interface Task {
  id: string;
  state: TaskState;
  command: string[];
  environmentId: string | null;
  timeoutSeconds: number;
  deadlineAt: string | null;
  exitCode: number | null;
  error: string | null;
  cancelRequested: boolean;
  logBytes: number;
  node: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** The secret references it asked for by name; null: all of the owner's. */
  secrets: string[] | null;
  /** Where it was launched from, as its X-Berth-Client header said. */
  launchSource: 'web' | 'mobile' | 'cli' | 'api';
}

export interface TaskEvent {
  from: string | null;
  to: TaskState;
  reason: string | null;
  workerId: string | null;
  node: string | null;
  at: string;
}

export interface LogPage {
  offset: number;
  nextOffset: number;
  totalBytes: number;
  encoding: 'utf8' | 'base64';
  data: string;
  /** The task has finished and this page reached the end of its output. */
  complete: boolean;
}

export type EnvironmentState =
  | 'pending'
  | 'provisioning'
  | 'ready'
  | 'stopping'
  | 'stopped'
  | 'starting'
  | 'destroying'
  | 'destroyed'
  | 'failed';

export interface Environment {
  id: string;
  name: string;
  provider: string;
  state: EnvironmentState;
  stateReason: string | null;
  gatewayUrl: string | null;
  node: string | null;
  /** What it was built from: image, repo, berthYaml, devcontainer, resources (as checked by the server). */
  spec: Record<string, unknown>;
  createdAt: string;
  readyAt: string | null;
  lastActivityAt: string;
}

export interface NewEnvironment {
  name?: string;
  provider?: string;
  image?: string;
  repo?: { url: string; ref?: string };
  berthYaml?: string;
  devcontainer?: string;
  resources?: { cpu?: number; memoryMb?: number; pids?: number };
}

/** A task runs in an environment of yours (`environmentId`) or in one made for it (destroyed after unless `keep`). */
export interface NewTask {
  command: string[];
  timeoutSeconds?: number;
  /** Env names of the secret references the task gets; left out: all of them, `[]`: none. */
  secrets?: string[];
  environmentId?: string;
  environment?: NewEnvironment & { keep?: boolean };
}

export interface EnvironmentEvent {
  id: string;
  at: string;
  kind: string;
  message: string;
  data: unknown;
}

/** Connect to `url` with `token` within a minute (the gateway checks it offline). */
export interface TerminalTicket {
  url: string;
  token: string;
  sessionId: string | null;
  role: 'driver' | 'observer';
  expiresAt: string;
}

/** A read-only link to one terminal session. The token itself is only in the create answer. */
export interface TerminalShare {
  id: string;
  environmentId: string;
  sessionId: string;
  createdAt: string;
  expiresAt: string;
}

export interface CreatedShare {
  share: TerminalShare;
  /** `berth_shr_…`, shown once. */
  token: string;
  /** `/share/?token=…`, relative to this site. */
  path: string;
}

/** What a signed-in viewer gets for a share token: an observer ticket and whose terminal it is. */
export interface ShareTicket {
  ticket: TerminalTicket;
  environment: { id: string; name: string };
  sharedBy: string;
}

/** The gateway's own view of a session (fields it may add later are ignored). */
export interface TerminalSessionSummary {
  id: string;
  state?: string;
  command?: string[];
  cols?: number;
  rows?: number;
  createdAt?: string;
  clients?: Array<{ id: string; sub: string; role: 'driver' | 'observer'; connectedAt: string }>;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Per-field problems of a 400 validation_failed answer. */
export interface FieldProblem {
  path: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint: string,
    readonly fields: FieldProblem[] = [],
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get unauthorized(): boolean {
    return this.status === 401;
  }
}

/** Turns anything thrown into an ApiError, so components render one shape. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  return new ApiError(
    0,
    'client_error',
    'something went wrong in the page',
    'reload the page; if it keeps happening, report it',
  );
}

function fieldProblems(details: unknown): FieldProblem[] {
  if (!Array.isArray(details)) return [];
  return details.filter(
    (d): d is FieldProblem =>
      typeof d === 'object' &&
      d !== null &&
      typeof (d as FieldProblem).path === 'string' &&
      typeof (d as FieldProblem).message === 'string',
  );
}

function isErrorBody(
  v: unknown,
): v is { error: { code: string; message: string; hint?: string; details?: unknown } } {
  if (typeof v !== 'object' || v === null || !('error' in v)) return false;
  const e = (v as { error: unknown }).error;
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof (e as { code?: unknown }).code === 'string' &&
    typeof (e as { message?: unknown }).message === 'string'
  );
}

/**
 * Where a launch came from, for the server's records (the workload JWT's `launch_source`): a
 * phone is a coarse pointer on a narrow screen (820 px covers phones and small tablets held
 * upright); anything else is `web`. Asked on every call, so a rotated tablet or a desktop
 * window in touch emulation answers for its state at that moment.
 */
export function berthClient(): 'web' | 'mobile' {
  if (typeof window === 'undefined' || typeof window.matchMedia !== 'function') return 'web';
  return window.matchMedia('(pointer: coarse) and (max-width: 820px)').matches ? 'mobile' : 'web';
}

export async function request<T>(
  method: string,
  path: string,
  body?: unknown,
  extraHeaders: Record<string, string> = {},
): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      credentials: 'include',
      headers: {
        accept: 'application/json',
        'x-berth-client': berthClient(),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...extraHeaders,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(
      0,
      'network',
      'could not reach the Berth server',
      'check your connection and that `berth server` is running, then try again',
    );
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    if (isErrorBody(json))
      throw new ApiError(
        res.status,
        json.error.code,
        json.error.message,
        json.error.hint ?? '',
        fieldProblems(json.error.details),
      );
    // A proxy in front of Berth, or a server that is restarting, answers with something else.
    throw new ApiError(
      res.status,
      `http_${res.status}`,
      `the server answered ${res.status} ${res.statusText}`.trim(),
      'try again in a moment',
    );
  }
  if (json === undefined && text)
    throw new ApiError(
      res.status,
      'bad_response',
      'the server sent a response that is not JSON',
      'reload the page',
    );
  return json as T;
}

/** A random key; getRandomValues works on plain http too, unlike crypto.randomUUID. */
export function newIdempotencyKey(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return `web-${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;
}

/** `?limit=&cursor=` for the API's keyset pagination; pass nextCursor back unchanged. */
function pageQuery(opts: { cursor?: string | null; limit?: number }): string {
  const q = new URLSearchParams();
  if (opts.limit) q.set('limit', String(opts.limit));
  if (opts.cursor) q.set('cursor', opts.cursor);
  const qs = q.toString();
  return qs ? `?${qs}` : '';
}

export const api = {
  me: () => request<Me>('GET', '/me'),
  login: (email: string, password: string) =>
    request<{ user: User }>('POST', '/auth/login', { email, password }),
  logout: () => request<{ ok: true }>('POST', '/auth/logout'),
  bootstrap: (token: string, email: string, password: string) =>
    request<{ user: User }>('POST', '/auth/bootstrap', { token, email, password }),
  users: {
    list: (opts: { cursor?: string | null; limit?: number } = {}) =>
      request<Page<User>>('GET', `/users${pageQuery(opts)}`),
    create: (body: { email: string; password: string; role: Role; displayName?: string }) =>
      request<{ user: User }>('POST', '/users', body),
    update: (
      id: string,
      body: { role?: Role; password?: string; currentPassword?: string; displayName?: string | null },
    ) => request<{ user: User; changed: boolean }>('PATCH', `/users/${encodeURIComponent(id)}`, body),
    remove: (id: string) => request<{ deleted: true }>('DELETE', `/users/${encodeURIComponent(id)}`),
  },
  secrets: {
    settings: () => request<{ settings: SecretSettings | null }>('GET', '/secrets/settings'),
    putSettings: (body: SecretSettingsInput) =>
      request<{ settings: SecretSettings; changed: boolean }>('PUT', '/secrets/settings', body),
    deleteSettings: () => request<{ deleted: boolean }>('DELETE', '/secrets/settings'),
    refs: (opts: { cursor?: string | null; limit?: number } = {}) =>
      request<Page<SecretRef>>('GET', `/secrets/refs${pageQuery(opts)}`),
    addRef: (body: { env: string; path: string; key: string; mount?: string }) =>
      request<{ ref: SecretRef }>('POST', '/secrets/refs', body),
    removeRef: (id: string) =>
      request<{ deleted: true }>('DELETE', `/secrets/refs/${encodeURIComponent(id)}`),
  },
  tasks: {
    list: (opts: { cursor?: string | null; limit?: number } = {}) =>
      request<Page<Task>>('GET', `/tasks${pageQuery(opts)}`),
    get: (id: string) => request<{ task: Task }>('GET', `/tasks/${encodeURIComponent(id)}`),
    /** `key` makes a retried launch (double tap, flaky network) return the same task instead of a second one. */
    create: (body: NewTask, key: string) =>
      request<{ task: Task }>('POST', '/tasks', body, { 'idempotency-key': key }),
    cancel: (id: string) =>
      request<{ task: Task; changed: boolean }>('POST', `/tasks/${encodeURIComponent(id)}/cancel`),
    timeline: (id: string) =>
      request<{ events: TaskEvent[] }>('GET', `/tasks/${encodeURIComponent(id)}/timeline`),
    logs: (id: string, offset: number) =>
      request<LogPage>('GET', `/tasks/${encodeURIComponent(id)}/logs?offset=${offset}&encoding=base64`),
  },
  environments: {
    list: (opts: { cursor?: string | null; limit?: number } = {}) =>
      request<Page<Environment>>('GET', `/environments${pageQuery(opts)}`),
    get: (id: string) =>
      request<{ environment: Environment }>('GET', `/environments/${encodeURIComponent(id)}`),
    create: (body: NewEnvironment) => request<{ environment: Environment }>('POST', '/environments', body),
    events: (id: string, after?: string | null) =>
      request<{ items: EnvironmentEvent[]; nextAfter: string | null }>(
        'GET',
        `/environments/${encodeURIComponent(id)}/events?limit=500${after ? `&after=${encodeURIComponent(after)}` : ''}`,
      ),
    act: (id: string, action: 'stop' | 'start' | 'destroy') =>
      action === 'destroy'
        ? request<{ environment: Environment; changed: boolean }>(
            'DELETE',
            `/environments/${encodeURIComponent(id)}`,
          )
        : request<{ environment: Environment; changed: boolean }>(
            'POST',
            `/environments/${encodeURIComponent(id)}/${action}`,
          ),
  },
  terminals: {
    /** A ticket for a new shell session (driver). */
    create: (envId: string) =>
      request<TerminalTicket>('POST', `/environments/${encodeURIComponent(envId)}/terminals`, {}),
    /** A ticket to join an existing session, typing (driver) or watching (observer). */
    attach: (envId: string, sessionId: string, role: 'driver' | 'observer') =>
      request<TerminalTicket>(
        'POST',
        `/environments/${encodeURIComponent(envId)}/terminals/${encodeURIComponent(sessionId)}/tickets`,
        { role },
      ),
    list: (envId: string) =>
      request<{ sessions: TerminalSessionSummary[] }>(
        'GET',
        `/environments/${encodeURIComponent(envId)}/terminals`,
      ),
    /** A read-only link to a session of yours; anyone signed in who has it can watch until it expires. */
    share: (envId: string, sessionId: string, expiresInMinutes?: number) =>
      request<CreatedShare>(
        'POST',
        `/environments/${encodeURIComponent(envId)}/terminals/${encodeURIComponent(sessionId)}/shares`,
        expiresInMinutes === undefined ? {} : { expiresInMinutes },
      ),
    /** The environment's live links (neither expired nor revoked). */
    shares: (envId: string) =>
      request<{ items: TerminalShare[] }>(
        'GET',
        `/environments/${encodeURIComponent(envId)}/terminals/shares`,
      ),
    /** `viewersCutOff: false` (with a `warning`) when the environment could not be told to close viewers. */
    revokeShare: (envId: string, shareId: string) =>
      request<{ revoked: true; viewersCutOff: boolean; warning?: string }>(
        'DELETE',
        `/environments/${encodeURIComponent(envId)}/terminals/shares/${encodeURIComponent(shareId)}`,
      ),
    /** An observer ticket from a share token; called again for each fresh ticket a reconnect needs. */
    shareTicket: (token: string) => request<ShareTicket>('POST', '/terminal-shares/tickets', { token }),
  },
  tokens: {
    list: (opts: { cursor?: string | null; limit?: number } = {}) =>
      request<Page<Token>>('GET', `/tokens${pageQuery(opts)}`),
    create: (body: { name: string; expiresInDays?: number; scopes?: Scope[] }) =>
      request<CreatedToken>('POST', '/tokens', body),
    revoke: (id: string) => request<{ revoked: true }>('DELETE', `/tokens/${encodeURIComponent(id)}`),
  },
};
