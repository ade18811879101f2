// The one-time setup of docs/secrets.md, by which a user's Vault comes to trust Berth's workload
// JWTs: a jwt auth method with Berth's keys, a read policy and a role. Only Vault's HTTP API with
// a root token, so the same call sets up the fake Vault and a real one.
import type { VaultClient } from '../client.js';

export interface TrustBerthOptions {
  /** Path of the jwt auth method (docs/secrets.md uses `berth`). */
  mount?: string;
  description?: string;
  /** Berth's issuer URL: the `bound_issuer`, and where OIDC discovery looks when there is no `jwksUrl`. */
  issuer: string;
  /** Berth's JWKS URL; left out, Vault finds the keys by OIDC discovery on `issuer`. */
  jwksUrl?: string;
  /** The `aud` the role accepts (the audience in Berth's secret settings). */
  audience: string;
  /**
   * The policy the role's tokens get: read on `path`. A function is given the template that
   * names the signed-in user (`{{identity.entity.aliases.<accessor>.name}}`, the JWT's `sub`).
   */
  policy: { name: string; path: string | ((user: string) => string) };
  /** The role Berth logs in with (default `berth`). */
  roleName?: string;
  /** Vault's own role fields (`bound_claims`, `claim_mappings`, ...), over the defaults of `addRole`. */
  role?: Record<string, unknown>;
}

export interface BerthTrust {
  /** The auth method's accessor, as `vault auth list` shows it. */
  accessor: string;
  /**
   * Writes another role on the same mount: a `jwt` role for the audience, `user_claim: sub`,
   * the policy and 10-minute tokens, with `fields` (Vault's names) over those.
   */
  addRole(name: string, fields?: Record<string, unknown>): Promise<void>;
}

export async function trustBerth(root: VaultClient, opts: TrustBerthOptions): Promise<BerthTrust> {
  const mount = opts.mount ?? 'berth';
  await root.request('POST', `sys/auth/${mount}`, {
    body: { type: 'jwt', ...(opts.description ? { description: opts.description } : {}) },
  });
  const auths = await root.request<Record<string, { accessor: string }>>('GET', 'sys/auth');
  const accessor = auths.data[`${mount}/`]?.accessor;
  if (!accessor) throw new Error(`no accessor for ${mount}/ in sys/auth`);
  await root.request('POST', `auth/${mount}/config`, {
    body: opts.jwksUrl
      ? { jwks_url: opts.jwksUrl, bound_issuer: opts.issuer, jwt_supported_algs: ['EdDSA'] }
      : { oidc_discovery_url: opts.issuer, bound_issuer: opts.issuer },
  });
  const { name: policy, path } = opts.policy;
  const readable = typeof path === 'string' ? path : path(`{{identity.entity.aliases.${accessor}.name}}`);
  await root.request('POST', `sys/policies/acl/${policy}`, {
    body: { policy: `path "${readable}" {\n  capabilities = ["read"]\n}\n` },
  });
  const addRole = async (name: string, fields: Record<string, unknown> = {}): Promise<void> => {
    await root.request('POST', `auth/${mount}/role/${name}`, {
      body: {
        role_type: 'jwt',
        bound_audiences: [opts.audience],
        user_claim: 'sub',
        token_policies: [policy],
        token_ttl: '10m',
        ...fields,
      },
    });
  };
  await addRole(opts.roleName ?? 'berth', opts.role);
  return { accessor, addRole };
}

/** Berth's issuer and JWKS URL, from the OIDC discovery document of the control plane at `berthUrl`. */
export async function berthKeys(berthUrl: string): Promise<{ issuer: string; jwksUrl: string }> {
  const res = await fetch(`${berthUrl}/.well-known/openid-configuration`);
  if (!res.ok) throw new Error(`${berthUrl}/.well-known/openid-configuration: ${res.status}`);
  const disco = (await res.json()) as { issuer: string; jwks_uri: string };
  return { issuer: disco.issuer, jwksUrl: disco.jwks_uri };
}
