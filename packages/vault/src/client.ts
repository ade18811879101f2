import { Agent, fetch as undiciFetch } from 'undici';
import { VaultError, flattenVaultError } from './errors.js';

export interface VaultClientOptions {
  /** Base address, e.g. `https://vault.example.com:8200` (no `/v1`). */
  address: string;
  /** Vault Enterprise / HCP namespace, sent as `X-Vault-Namespace`. */
  namespace?: string;
  /** PEM bundle to trust for this Vault's TLS certificate (in addition to nothing else). */
  caCert?: string;
  /** Per-request timeout; default 10 s. */
  timeoutMs?: number;
  /** Client token for authenticated calls (see {@link VaultClient.withToken}). */
  token?: string;
}

/** The `auth` block of a login or renew answer. */
export interface VaultAuth {
  clientToken: string;
  accessor: string;
  policies: string[];
  tokenPolicies: string[];
  metadata: Record<string, string>;
  leaseDuration: number;
  renewable: boolean;
  entityId: string;
}

export interface KvV2Secret {
  data: Record<string, unknown>;
  metadata: {
    created_time: string;
    custom_metadata: Record<string, string> | null;
    deletion_time: string;
    destroyed: boolean;
    version: number;
  };
}

export interface WrapInfo {
  token: string;
  accessor: string;
  ttl: number;
  creation_time: string;
  creation_path: string;
}

export interface WrappingLookup {
  creation_path: string;
  creation_time: string;
  creation_ttl: number;
}

/** Vault's generic response envelope. */
export interface VaultResponse<T = unknown> {
  request_id?: string;
  lease_id?: string;
  renewable?: boolean;
  lease_duration?: number;
  data: T;
  wrap_info: WrapInfo | null;
  warnings: string[] | null;
  auth: RawAuth | null;
}

interface RawAuth {
  client_token: string;
  accessor: string;
  policies: string[] | null;
  token_policies: string[] | null;
  metadata: Record<string, string> | null;
  lease_duration: number;
  renewable: boolean;
  entity_id: string;
}

export interface RequestOptions {
  body?: unknown;
  /** Overrides the client's token for this call (e.g. a wrapping token for unwrap). */
  token?: string | null;
  headers?: Record<string, string>;
  /** Query string parameters. */
  query?: Record<string, string | number | undefined>;
  /** Turns an HTTP status into advice for the user; falls back to generic advice. */
  hint?: (status: number, vaultErrors: string[]) => string | undefined;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * A small typed Vault HTTP client for the handful of endpoints Berth needs. Stateless apart
 * from its options: {@link withToken} returns a sibling client sharing the TLS dispatcher.
 */
export class VaultClient {
  readonly address: string;
  private readonly opts: VaultClientOptions;
  private readonly dispatcher: Agent | undefined;

  constructor(opts: VaultClientOptions, dispatcher?: Agent) {
    this.opts = opts;
    this.address = opts.address.replace(/\/+$/, '').replace(/\/v1$/, '');
    // Node's global fetch cannot take a CA; undici's own fetch with an Agent can. Only the
    // client with a custom CA pays for the separate dispatcher.
    this.dispatcher = dispatcher ?? (opts.caCert ? new Agent({ connect: { ca: opts.caCert } }) : undefined);
  }

  withToken(token: string): VaultClient {
    return new VaultClient({ ...this.opts, token }, this.dispatcher);
  }

  /** Closes the custom-CA connection pool, if any. */
  async close(): Promise<void> {
    await this.dispatcher?.close();
  }

  /** `POST /v1/auth/<mount>/login` with `{role, jwt}`. */
  async loginJwt(params: { mount?: string; role: string; jwt: string }): Promise<VaultAuth> {
    const mount = trimSlashes(params.mount ?? 'jwt');
    const res = await this.request<null>('POST', `auth/${mount}/login`, {
      body: { role: params.role, jwt: params.jwt },
      token: null,
      hint: (status, errors) => loginHint(mount, params.role, status, errors),
    });
    return toAuth(res.auth, `auth/${mount}/login`);
  }

  /** `GET /v1/<mount>/data/<path>`; throws a 404 VaultError when there is no such secret. */
  async readKv(mount: string, path: string, opts: { version?: number } = {}): Promise<KvV2Secret> {
    const apiPath = kvDataPath(mount, path);
    const res = await this.request<KvV2Secret | null>('GET', apiPath, {
      query: { version: opts.version },
      hint: (status) => kvHint(trimSlashes(mount), status),
    });
    if (!res.data || typeof res.data.data !== 'object' || res.data.data === null) {
      throw new VaultError({
        message: `Vault GET ${apiPath}: answer has no KV v2 data (is ${trimSlashes(mount)}/ a KV version 2 mount?)`,
        path: apiPath,
        hint: `Check that ${trimSlashes(mount)}/ is a KV v2 secrets engine (vault secrets list -detailed).`,
      });
    }
    return res.data;
  }

  /** `POST /v1/sys/wrapping/lookup {token}`: does not consume the wrapping token. */
  async lookupWrapping(wrappingToken: string): Promise<WrappingLookup> {
    const res = await this.request<WrappingLookup>('POST', 'sys/wrapping/lookup', {
      body: { token: wrappingToken },
      token: null,
    });
    return res.data;
  }

  /**
   * `POST /v1/sys/wrapping/unwrap` authenticated *as* the wrapping token, which consumes it.
   * Returns the original response that was wrapped.
   */
  async unwrap<T = unknown>(wrappingToken: string): Promise<VaultResponse<T>> {
    return this.request<T>('POST', 'sys/wrapping/unwrap', { token: wrappingToken });
  }

  /** `POST /v1/auth/token/renew-self`. */
  async renewSelf(incrementSeconds?: number): Promise<VaultAuth> {
    const res = await this.request<null>('POST', 'auth/token/renew-self', {
      body: incrementSeconds === undefined ? {} : { increment: incrementSeconds },
    });
    return toAuth(res.auth, 'auth/token/renew-self');
  }

  /** `POST /v1/auth/token/revoke-self`: the client's token is unusable afterwards. */
  async revokeSelf(): Promise<void> {
    await this.request('POST', 'auth/token/revoke-self', {});
  }

  /**
   * Any Vault API call. `path` is relative to `/v1/`. Non-2xx answers become a VaultError
   * carrying Vault's `errors` array.
   */
  async request<T = unknown>(
    method: string,
    path: string,
    opts: RequestOptions = {},
  ): Promise<VaultResponse<T>> {
    const apiPath = trimSlashes(path);
    const url = new URL(`${this.address}/v1/${apiPath}`);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { 'X-Vault-Request': 'true', ...opts.headers };
    const token = opts.token === undefined ? this.opts.token : opts.token;
    if (token) headers['X-Vault-Token'] = token;
    if (this.opts.namespace) headers['X-Vault-Namespace'] = this.opts.namespace;
    let body: string | undefined;
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    const timeoutMs = this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const init = { method, headers, body, signal: AbortSignal.timeout(timeoutMs) };

    let status: number;
    let text: string;
    try {
      if (this.dispatcher) {
        const res = await undiciFetch(url, { ...init, dispatcher: this.dispatcher });
        status = res.status;
        text = await res.text();
      } else {
        const res = await fetch(url, init);
        status = res.status;
        text = await res.text();
      }
    } catch (err) {
      throw networkError(err, method, apiPath, this.address, timeoutMs);
    }

    if (status >= 200 && status < 300) {
      if (status === 204 || text.trim() === '') {
        return { data: null as T, wrap_info: null, warnings: null, auth: null };
      }
      try {
        return JSON.parse(text) as VaultResponse<T>;
      } catch {
        throw new VaultError({
          message: `Vault ${method} ${apiPath}: answer with HTTP ${status} was not JSON`,
          path: apiPath,
          status,
          hint: `Check that ${this.address} is a Vault server and not a proxy or login page.`,
        });
      }
    }
    const vaultErrors = parseErrors(text);
    const hint = opts.hint?.(status, vaultErrors) ?? genericHint(status, this.address);
    // KV answers a missing secret with 404 and an empty errors array.
    const said =
      vaultErrors.length > 0
        ? vaultErrors.map(flattenVaultError).join('; ')
        : status === 404
          ? 'not found'
          : '(no error text)';
    throw new VaultError({
      message: `Vault ${method} ${apiPath} failed with HTTP ${status}: ${said}`,
      path: apiPath,
      status,
      vaultErrors,
      hint,
    });
  }
}

export function kvDataPath(mount: string, path: string): string {
  return `${trimSlashes(mount)}/data/${trimSlashes(path)}`;
}

function trimSlashes(s: string): string {
  return s.replace(/^\/+|\/+$/g, '');
}

function toAuth(raw: RawAuth | null, path: string): VaultAuth {
  if (!raw || typeof raw.client_token !== 'string') {
    throw new VaultError({
      message: `Vault ${path}: answer has no auth block`,
      path,
      hint: 'Unexpected answer shape.',
    });
  }
  return {
    clientToken: raw.client_token,
    accessor: raw.accessor,
    policies: raw.policies ?? [],
    tokenPolicies: raw.token_policies ?? [],
    metadata: raw.metadata ?? {},
    leaseDuration: raw.lease_duration,
    renewable: raw.renewable,
    entityId: raw.entity_id,
  };
}

function parseErrors(text: string): string[] {
  try {
    const parsed = JSON.parse(text) as { errors?: unknown };
    if (Array.isArray(parsed.errors)) return parsed.errors.filter((e): e is string => typeof e === 'string');
  } catch {
    // Not JSON: a proxy or load balancer answered. The status still tells the story.
  }
  return [];
}

function networkError(
  err: unknown,
  method: string,
  path: string,
  address: string,
  timeoutMs: number,
): VaultError {
  const e = err as { name?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') {
    return new VaultError({
      message: `Vault ${method} ${path}: no answer from ${address} within ${timeoutMs} ms`,
      path,
      code: 'ETIMEDOUT',
      hint: `Vault at ${address} did not answer in time: check the network path from this machine to Vault (firewall, VPN, proxy).`,
      cause: err,
    });
  }
  const code = e?.cause?.code ?? 'EUNKNOWN';
  let hint = `Check that ${address} is the right Vault address and reachable from here.`;
  if (code === 'ECONNREFUSED') {
    hint = `Nothing is listening at ${address}: check the address and port, and that Vault is running.`;
  } else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    hint = `The host name in ${address} does not resolve from here: check the Vault address.`;
  } else if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') {
    hint = `The connection to ${address} was cut: check for http vs https mismatch or a proxy in between.`;
  } else if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/i.test(code)) {
    hint = `TLS verification of ${address} failed (${code}): give Berth the CA certificate that signed Vault's certificate, and check the host name matches it.`;
  }
  return new VaultError({
    message: `Vault ${method} ${path}: could not reach ${address} (${code})`,
    path,
    code,
    hint,
    cause: err,
  });
}

function genericHint(status: number, address: string): string {
  switch (status) {
    case 400:
      return 'Vault rejected the request as invalid; its error text says why.';
    case 403:
      return 'Permission denied: the token has no policy allowing this path, or it has expired or been revoked.';
    case 404:
      return 'Nothing at this path: check the mount and path names.';
    case 412:
      return 'Vault is not yet consistent for this request (performance standby); retry.';
    case 429:
      return 'Vault is rate limiting this client; retry later.';
    case 473:
    case 503:
      return `Vault at ${address} is sealed, in standby or under maintenance.`;
    default:
      return status >= 500
        ? `Vault at ${address} had an internal error; check its server log.`
        : `Unexpected HTTP ${status}.`;
  }
}

function loginHint(mount: string, role: string, status: number, errors: string[]): string | undefined {
  const text = errors.join(' ');
  if (/role .* could not be found/.test(text)) {
    return `There is no role "${role}" on auth/${mount}: create it (vault write auth/${mount}/role/${role} ...) or fix the role name in Berth.`;
  }
  if (/audience/.test(text)) {
    return `The JWT's aud does not match the role's bound_audiences: the audience configured in Berth must equal bound_audiences on auth/${mount}/role/${role}.`;
  }
  if (/issuer/.test(text)) {
    return `The JWT's iss does not match bound_issuer in auth/${mount}/config: it must be Berth's public URL exactly.`;
  }
  if (/expired|not yet valid|issued in the future/.test(text)) {
    return "The JWT's time claims were rejected: check the clocks of Berth and Vault (and the role's leeways).";
  }
  if (/signature|keyset|jwks/i.test(text)) {
    return `Vault could not verify the JWT's signature: check jwks_url / oidc_discovery_url in auth/${mount}/config points at Berth and is reachable from Vault.`;
  }
  if (/claim/.test(text)) {
    return `A claim did not match the role: check bound_claims / user_claim on auth/${mount}/role/${role} (sub is "user:<your Berth user id>").`;
  }
  if (status === 403 && /permission denied/.test(text)) {
    return `Vault answers "permission denied" to a login on a path with no auth method: check that a JWT auth method is mounted at auth/${mount} (vault auth list).`;
  }
  if (status === 404 || /no handler for route/.test(text)) {
    return `No JWT auth method is mounted at auth/${mount}: enable it (vault auth enable -path=${mount} jwt) or fix the mount in Berth.`;
  }
  return undefined;
}

function kvHint(mount: string, status: number): string | undefined {
  if (status === 404) {
    return `No secret at this path (or none at this version): check the path, and that ${mount}/ is a KV version 2 mount.`;
  }
  if (status === 403) {
    return "Permission denied: the role's policies do not grant read on this path (for templated policies, the path must contain your own user name), or the token expired.";
  }
  return undefined;
}
