import { compactVerify, createRemoteJWKSet, errors as joseErrors, type JWTVerifyGetKey } from 'jose';
import { HttpError, badRequest, parseDuration, parseStringList } from './util.js';

/**
 * The fake's JWT auth method, modelled on vault-plugin-auth-jwt's `role_type=jwt` login path:
 * the same validation order, the same error strings (from hashicorp/cap's jwt validator), the
 * same leeway defaults (150 s for exp/nbf when missing, 60 s clock skew).
 */

export interface JwtConfig {
  jwks_url: string;
  oidc_discovery_url: string;
  bound_issuer: string;
  jwt_supported_algs: string[];
  default_role: string;
}

export interface JwtRole {
  role_type: string;
  bound_audiences: string[];
  bound_subject: string;
  bound_claims: Record<string, unknown> | null;
  bound_claims_type: string;
  user_claim: string;
  claim_mappings: Record<string, string> | null;
  token_policies: string[];
  token_ttl: number;
  token_max_ttl: number;
  token_no_default_policy: boolean;
  expiration_leeway: number;
  not_before_leeway: number;
  clock_skew_leeway: number;
  allowed_redirect_uris: string[];
}

export interface LoginResult {
  roleName: string;
  role: JwtRole;
  aliasName: string;
  metadata: Record<string, string>;
}

const DEFAULT_ALGS = [
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'EdDSA',
];
const DEFAULT_LEEWAY = 150;
const DEFAULT_CLOCK_SKEW = 60;

export class JwtAuthMount {
  config: JwtConfig | undefined;
  readonly roles = new Map<string, JwtRole>();
  private keySet: JWTVerifyGetKey | undefined;

  async writeConfig(body: Record<string, unknown>): Promise<void> {
    const config: JwtConfig = {
      jwks_url: str(body.jwks_url),
      oidc_discovery_url: str(body.oidc_discovery_url),
      bound_issuer: str(body.bound_issuer),
      jwt_supported_algs: parseStringList(body.jwt_supported_algs),
      default_role: str(body.default_role).toLowerCase(),
    };
    if (
      body.jwt_validation_pubkeys !== undefined &&
      parseStringList(body.jwt_validation_pubkeys).length > 0
    ) {
      throw badRequest(
        'fake vault: jwt_validation_pubkeys is not supported; use jwks_url or oidc_discovery_url',
      );
    }
    const set = [config.jwks_url, config.oidc_discovery_url].filter((s) => s !== '').length;
    if (set !== 1) {
      throw badRequest(
        "exactly one of 'jwt_validation_pubkeys', 'jwks_url' or 'oidc_discovery_url' must be set",
      );
    }
    for (const alg of config.jwt_supported_algs) {
      if (!DEFAULT_ALGS.includes(alg))
        throw badRequest(`invalid jwt_supported_algs: unsupported signing algorithm "${alg}"`);
    }
    let jwksUrl = config.jwks_url;
    if (config.oidc_discovery_url) {
      // Like go-oidc: the discovery document must name the URL it was fetched from as issuer.
      const base = config.oidc_discovery_url.replace(/\/+$/, '');
      let doc: { issuer?: string; jwks_uri?: string };
      try {
        const res = await fetch(`${base}/.well-known/openid-configuration`, {
          signal: AbortSignal.timeout(5000),
        });
        if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
        doc = (await res.json()) as typeof doc;
      } catch (err) {
        throw badRequest(`error checking oidc discovery URL: ${(err as Error).message}`);
      }
      // Exact, trailing slash included, as go-oidc compares it.
      if (doc.issuer !== config.oidc_discovery_url) {
        throw badRequest(
          `error checking oidc discovery URL: oidc: issuer did not match the issuer returned by provider, expected "${config.oidc_discovery_url}" got "${doc.issuer ?? ''}"`,
        );
      }
      if (!doc.jwks_uri)
        throw badRequest('error checking oidc discovery URL: discovery document has no jwks_uri');
      jwksUrl = doc.jwks_uri;
    } else {
      try {
        const res = await fetch(jwksUrl, { signal: AbortSignal.timeout(5000) });
        const json = (await res.json()) as { keys?: unknown };
        if (!res.ok || !Array.isArray(json.keys)) throw new Error('not a JWKS');
      } catch {
        throw badRequest('error checking jwks URL');
      }
    }
    this.config = config;
    this.keySet = createRemoteJWKSet(new URL(jwksUrl), { cooldownDuration: 0, cacheMaxAge: 60_000 });
  }

  readConfig(): Record<string, unknown> {
    if (!this.config) return {};
    return { ...this.config, jwt_validation_pubkeys: [], provider_config: {}, namespace_in_state: true };
  }

  writeRole(name: string, body: Record<string, unknown>): void {
    const existing = this.roles.get(name);
    const pick = <K extends keyof JwtRole>(
      key: K,
      parse: (v: unknown) => JwtRole[K],
      fallback: JwtRole[K],
    ): JwtRole[K] => (body[key] !== undefined ? parse(body[key]) : (existing?.[key] ?? fallback));
    const policiesInput = body.token_policies ?? body.policies;
    const role: JwtRole = {
      role_type: pick('role_type', (v) => str(v), 'oidc'),
      bound_audiences: pick('bound_audiences', parseStringList, []),
      bound_subject: pick('bound_subject', (v) => str(v), ''),
      bound_claims: pick('bound_claims', (v) => (isObject(v) ? v : null), null),
      bound_claims_type: pick('bound_claims_type', (v) => str(v), 'string'),
      user_claim: pick('user_claim', (v) => str(v), ''),
      claim_mappings: pick(
        'claim_mappings',
        (v) => (isObject(v) ? (v as Record<string, string>) : null),
        null,
      ),
      token_policies:
        policiesInput !== undefined ? parseStringList(policiesInput) : (existing?.token_policies ?? []),
      token_ttl: pick('token_ttl', (v) => parseDuration(v, 'token_ttl'), parseDuration(body.ttl, 'ttl')),
      token_max_ttl: pick(
        'token_max_ttl',
        (v) => parseDuration(v, 'token_max_ttl'),
        parseDuration(body.max_ttl, 'max_ttl'),
      ),
      token_no_default_policy: pick('token_no_default_policy', (v) => v === true || v === 'true', false),
      expiration_leeway: pick('expiration_leeway', (v) => parseDuration(v, 'expiration_leeway'), 0),
      not_before_leeway: pick('not_before_leeway', (v) => parseDuration(v, 'not_before_leeway'), 0),
      clock_skew_leeway: pick('clock_skew_leeway', (v) => parseDuration(v, 'clock_skew_leeway'), 0),
      allowed_redirect_uris: pick('allowed_redirect_uris', parseStringList, []),
    };
    if (role.role_type !== 'jwt' && role.role_type !== 'oidc')
      throw badRequest(`invalid 'role_type': ${role.role_type}`);
    if (role.role_type === 'oidc' && role.allowed_redirect_uris.length === 0) {
      throw badRequest("'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.");
    }
    if (!role.user_claim) throw badRequest('a user claim must be defined on the role');
    if (role.bound_claims_type !== 'string') {
      throw badRequest(
        `fake vault: bound_claims_type "${role.bound_claims_type}" is not supported (only exact "string" matching)`,
      );
    }
    if (
      role.role_type === 'jwt' &&
      role.bound_audiences.length === 0 &&
      !role.bound_subject &&
      (!role.bound_claims || Object.keys(role.bound_claims).length === 0)
    ) {
      throw badRequest('must have at least one bound constraint when creating/updating a role');
    }
    this.roles.set(name, role);
  }

  /** Validates a login; `nowSec` is the fake clock so expiry tests need no sleeping. */
  async login(body: Record<string, unknown>, nowSec: number): Promise<LoginResult> {
    const config = this.config;
    if (!config) throw badRequest('could not load configuration');
    const roleName = str(body.role).toLowerCase() || config.default_role;
    if (!roleName) throw badRequest('missing role');
    const role = this.roles.get(roleName);
    if (!role) throw badRequest(`role "${roleName}" could not be found`);
    if (role.role_type === 'oidc') throw badRequest('role with oidc role_type is not allowed');
    const token = str(body.jwt);
    if (!token) throw badRequest('missing token');

    const claims = await this.verifySignature(token, config);
    validateClaims(claims, config, role, nowSec);

    // Since plugin v0.20.3 a single string aud counts too, not only a list.
    const aud = claims.aud;
    const hasAud = (Array.isArray(aud) && aud.length > 0) || (typeof aud === 'string' && aud !== '');
    if (hasAud && role.bound_audiences.length === 0) {
      throw badRequest('audience claim found in JWT but no audiences bound to the role');
    }
    const userRaw = getClaim(claims, role.user_claim);
    if (userRaw === undefined) throw badRequest(`claim "${role.user_claim}" not found in token`);
    if (typeof userRaw !== 'string')
      throw badRequest(`claim "${role.user_claim}" could not be converted to string`);
    const metadata: Record<string, string> = {};
    for (const [claim, metaKey] of Object.entries(role.claim_mappings ?? {})) {
      const v = getClaim(claims, claim);
      if (v === undefined) continue;
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
        throw badRequest(`error converting claim '${claim}' to string`);
      }
      metadata[metaKey] = String(v);
    }
    validateBoundClaims(role.bound_claims ?? {}, claims);
    return { roleName, role, aliasName: userRaw, metadata };
  }

  private async verifySignature(token: string, config: JwtConfig): Promise<Record<string, unknown>> {
    const keySet = this.keySet;
    if (!keySet) throw badRequest('could not load configuration');
    const algorithms = config.jwt_supported_algs.length > 0 ? config.jwt_supported_algs : DEFAULT_ALGS;
    try {
      const { payload } = await compactVerify(token, keySet, { algorithms });
      const claims = JSON.parse(new TextDecoder().decode(payload)) as unknown;
      if (!isObject(claims)) throw new joseErrors.JWSInvalid('payload is not a JSON object');
      return claims;
    } catch (err) {
      const code = (err as { code?: string }).code;
      const prefix = 'error validating token: ';
      if (code === 'ERR_JOSE_ALG_NOT_ALLOWED') {
        throw badRequest(
          `${prefix}invalid algorithm (alg) header parameter: token signed with unexpected algorithm`,
        );
      }
      if (code === 'ERR_JWS_INVALID' || err instanceof SyntaxError) {
        throw badRequest(
          `${prefix}error verifying token signature: malformed jwt: ${(err as Error).message}`,
        );
      }
      if (code === 'ERR_JWKS_TIMEOUT' || code === 'ERR_JWKS_INVALID' || code === undefined) {
        throw badRequest(
          `${prefix}error verifying token signature: fetching keys: ${(err as Error).message}`,
        );
      }
      throw badRequest(`${prefix}error verifying token signature: failed to verify id token signature`);
    }
  }
}

function validateClaims(
  claims: Record<string, unknown>,
  config: JwtConfig,
  role: JwtRole,
  now: number,
): void {
  const fail = (msg: string): HttpError => badRequest(`error validating token: ${msg}`);
  if (config.bound_issuer && claims.iss !== config.bound_issuer) throw fail('invalid issuer (iss) claim');
  if (role.bound_subject && claims.sub !== role.bound_subject) throw fail('invalid subject (sub) claim');
  const aud = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
  if (role.bound_audiences.length > 0 && !role.bound_audiences.some((a) => aud.includes(a))) {
    throw fail('invalid audience (aud) claim: audience claim does not match any expected audience');
  }
  let iat = num(claims.iat);
  let exp = num(claims.exp);
  let nbf = num(claims.nbf);
  if (iat === 0 && exp === 0 && nbf === 0) {
    throw fail('no issued at (iat), not before (nbf), or expiration time (exp) claims in token');
  }
  const leeway = (v: number): number => (v < 0 ? 0 : v === 0 ? DEFAULT_LEEWAY : v);
  if (exp === 0) exp = Math.max(iat, nbf) + leeway(role.expiration_leeway);
  if (nbf === 0) nbf = iat !== 0 ? iat : exp - leeway(role.not_before_leeway);
  iat = iat || 0;
  const skew =
    role.clock_skew_leeway < 0
      ? 0
      : role.clock_skew_leeway === 0
        ? DEFAULT_CLOCK_SKEW
        : role.clock_skew_leeway;
  if (now + skew < nbf) throw fail('invalid not before (nbf) claim: token not yet valid');
  if (now - skew > exp) throw fail('invalid expiration time (exp) claim: token is expired');
  if (iat !== 0 && now + skew < iat) throw fail('invalid issued at (iat) claim: token issued in the future');
}

function validateBoundClaims(bound: Record<string, unknown>, claims: Record<string, unknown>): void {
  for (const [claim, expected] of Object.entries(bound)) {
    const actual = getClaim(claims, claim);
    if (actual === undefined || actual === null)
      throw badRequest(`error validating claims: claim "${claim}" is missing`);
    const actVals = Array.isArray(actual) ? actual : [actual];
    const expVals: unknown[] = Array.isArray(expected) ? expected : [expected];
    if (!expVals.some((e) => actVals.some((a) => a === e))) {
      throw badRequest(
        `error validating claims: claim "${claim}" does not match any associated bound claim values`,
      );
    }
  }
}

/** Claim names starting with "/" are JSON pointers into nested claims, as in Vault. */
function getClaim(claims: Record<string, unknown>, name: string): unknown {
  if (!name.startsWith('/')) return claims[name];
  let cur: unknown = claims;
  for (const part of name.slice(1).split('/')) {
    if (!isObject(cur)) return undefined;
    cur = cur[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return cur;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v);
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? Math.floor(v) : 0;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
