import type { TemplateContext } from './policy.js';
import {
  SYSTEM_DEFAULT_TTL,
  badRequest,
  envelope,
  invalidToken,
  isoTime,
  newAccessor,
  newToken,
  newUuid,
  parseDuration,
} from './util.js';

/** The fake's token store and identity entities, on the fake's clock. */

export interface TokenEntry {
  id: string;
  accessor: string;
  policies: string[];
  createdMs: number;
  ttl: number;
  maxTtl: number;
  expireMs: number | undefined;
  renewable: boolean;
  metadata: Record<string, string>;
  displayName: string;
  entityId: string;
  alias: { mountAccessor: string; name: string } | undefined;
  authMount: string | undefined;
  root: boolean;
}

export const DEFAULT_POLICY = 'default';

export class TokenStore {
  private readonly tokens = new Map<string, TokenEntry>();
  /** `<mount accessor>:<alias name>` → entity, so one user keeps one entity across logins. */
  private readonly entities = new Map<string, { id: string; name: string }>();

  constructor(private readonly now: () => number) {}

  addRoot(id: string): void {
    this.tokens.set(id, {
      id,
      accessor: newAccessor(),
      policies: ['root'],
      createdMs: this.now(),
      ttl: 0,
      maxTtl: 0,
      expireMs: undefined,
      renewable: false,
      metadata: {},
      displayName: 'root',
      entityId: '',
      alias: undefined,
      authMount: undefined,
      root: true,
    });
  }

  /** Missing, expired and revoked tokens all get Vault's plain 403. */
  resolve(id: string | undefined): TokenEntry {
    const entry = id ? this.tokens.get(id) : undefined;
    if (!entry) throw invalidToken();
    if (entry.expireMs !== undefined && this.now() >= entry.expireMs) {
      this.tokens.delete(entry.id);
      throw invalidToken();
    }
    return entry;
  }

  revoke(id: string): void {
    this.tokens.delete(id);
  }

  /** Disabling an auth method revokes every token it issued, as in Vault. */
  revokeByMount(mountPath: string): void {
    for (const [id, t] of this.tokens) if (t.authMount === mountPath) this.tokens.delete(id);
  }

  issue(params: {
    policies: string[];
    noDefault: boolean;
    ttl: number;
    maxTtl: number;
    metadata: Record<string, string>;
    displayName: string;
    alias: { mountAccessor: string; name: string };
    authMount: string;
  }): TokenEntry {
    const key = `${params.alias.mountAccessor}:${params.alias.name}`;
    let entity = this.entities.get(key);
    if (!entity) {
      entity = { id: newUuid(), name: `entity_${newAccessor().slice(0, 8)}` };
      this.entities.set(key, entity);
    }
    const policies = [...new Set([...(params.noDefault ? [] : [DEFAULT_POLICY]), ...params.policies])].sort();
    const now = this.now();
    const ttl = params.ttl > 0 ? params.ttl : SYSTEM_DEFAULT_TTL;
    const entry: TokenEntry = {
      id: newToken(),
      accessor: newAccessor(),
      policies,
      createdMs: now,
      ttl,
      maxTtl: params.maxTtl > 0 ? params.maxTtl : SYSTEM_DEFAULT_TTL,
      expireMs: now + ttl * 1000,
      renewable: true,
      metadata: params.metadata,
      displayName: params.displayName,
      entityId: entity.id,
      alias: params.alias,
      authMount: params.authMount,
      root: false,
    };
    this.tokens.set(entry.id, entry);
    return entry;
  }

  templateContext(t: TokenEntry): TemplateContext {
    const aliases = new Map<string, string>();
    if (t.alias) aliases.set(t.alias.mountAccessor, t.alias.name);
    const entity = [...this.entities.values()].find((e) => e.id === t.entityId);
    return { entityId: t.entityId || undefined, entityName: entity?.name, aliases };
  }

  authBlock(t: TokenEntry, leaseDuration: number): Record<string, unknown> {
    return {
      client_token: t.id,
      accessor: t.accessor,
      policies: t.policies,
      token_policies: t.policies,
      metadata: t.metadata,
      lease_duration: leaseDuration,
      renewable: t.renewable,
      entity_id: t.entityId,
      token_type: 'service',
      orphan: true,
      mfa_requirement: null,
      num_uses: 0,
    };
  }

  lookup(t: TokenEntry): Record<string, unknown> {
    const ttl = t.expireMs === undefined ? 0 : Math.max(0, Math.floor((t.expireMs - this.now()) / 1000));
    return {
      accessor: t.accessor,
      creation_time: Math.floor(t.createdMs / 1000),
      creation_ttl: t.ttl,
      display_name: t.displayName,
      entity_id: t.entityId,
      expire_time: t.expireMs === undefined ? null : isoTime(t.expireMs),
      explicit_max_ttl: 0,
      id: t.id,
      meta: t.metadata,
      num_uses: 0,
      orphan: true,
      path: t.authMount ? `auth/${t.authMount}login` : 'auth/token/root',
      policies: t.policies,
      renewable: t.renewable,
      ttl,
      type: 'service',
    };
  }

  /**
   * vault-plugin-auth-jwt's renew handler resets the TTL to the role's token_ttl and ignores
   * any requested increment; the fake does the same, capped by the max TTL.
   */
  renew(t: TokenEntry, body: Record<string, unknown>): Record<string, unknown> {
    if (!t.renewable) throw badRequest('lease is not renewable');
    parseDuration(body.increment, 'increment');
    const now = this.now();
    const maxLeft = Math.floor((t.createdMs + t.maxTtl * 1000 - now) / 1000);
    const granted = Math.max(0, Math.min(t.ttl, maxLeft));
    t.expireMs = now + granted * 1000;
    const res = envelope({ auth: this.authBlock(t, granted) });
    if (granted < t.ttl) {
      res.warnings = [
        `TTL of "${t.ttl}s" exceeded the effective max_ttl of "${maxLeft}s"; TTL value is capped accordingly`,
      ];
    }
    return res;
  }
}

interface WrapEntry {
  accessor: string;
  response: Record<string, unknown>;
  creationPath: string;
  creationMs: number;
  ttl: number;
}

/** Single-use response-wrapping tokens. */
export class WrapStore {
  private readonly wrapped = new Map<string, WrapEntry>();

  constructor(private readonly now: () => number) {}

  /** Stores a response and returns the envelope Vault sends instead of it. */
  wrap(response: Record<string, unknown>, creationPath: string, ttl: number): Record<string, unknown> {
    const token = newToken();
    const entry: WrapEntry = { accessor: newAccessor(), response, creationPath, creationMs: this.now(), ttl };
    this.wrapped.set(token, entry);
    const wrapInfo = {
      token,
      accessor: entry.accessor,
      ttl,
      creation_time: isoTime(entry.creationMs),
      creation_path: creationPath,
      wrapped_accessor: '',
    };
    return envelope({ wrap_info: wrapInfo });
  }

  lookup(token: string): Record<string, unknown> {
    const entry = this.live(token);
    return envelope({
      data: {
        creation_path: entry.creationPath,
        creation_time: isoTime(entry.creationMs),
        creation_ttl: entry.ttl,
      },
    });
  }

  unwrap(token: string): Record<string, unknown> {
    const entry = this.live(token);
    this.wrapped.delete(token);
    return { ...entry.response, request_id: newUuid() };
  }

  private live(token: string): WrapEntry {
    const entry = this.wrapped.get(token);
    if (!entry || this.now() >= entry.creationMs + entry.ttl * 1000) {
      this.wrapped.delete(token);
      throw badRequest('wrapping token is not valid or does not exist');
    }
    return entry;
  }
}
