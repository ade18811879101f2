import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { SignJWT, type JWK } from 'jose';
import type { GatewayTokenClaims } from '@berth/protocol';
import type { Config } from '../config.js';
import { CLOCK, CONFIG, type Clock } from '../common/di.js';
import type { KeySet } from './keys.js';

export const KEYS = Symbol('KEYS');

export interface GatewayTokenRequest {
  environmentId: string;
  userId: string;
  scope: GatewayTokenClaims['scope'];
  role?: 'driver' | 'observer';
  sessionId?: string;
  /** Scope `port`: which port, and whether for a browser preview or raw TCP forwarding. */
  port?: number;
  access?: 'preview' | 'forward';
  /** A read-only link: on a viewer's `terminal` ticket, or the `exec` token that revokes it. */
  share?: { id: string; expiresAt: Date };
  /** Seconds; tickets are for immediate use. */
  ttlSeconds?: number;
}

export interface WorkloadIdentityRequest {
  userId: string;
  audience: string;
  environmentId: string;
  taskId?: string;
  provider: string;
  launchSource: 'web' | 'mobile' | 'cli' | 'api';
  ttlSeconds?: number;
}

/** Berth's OIDC issuer: signs gateway tickets and per-launch workload identities (EdDSA). */
@Injectable()
export class IdentityService {
  constructor(
    @Inject(KEYS) private readonly keys: KeySet,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  get issuer(): string {
    return this.config.publicUrl;
  }

  /**
   * What every new environment's gateway is started with: who issues its tokens, the keys to
   * check them, and where to send its spans.
   */
  gatewaySpec(): { issuer: string; jwks: { keys: Array<Record<string, unknown>> }; otlpEndpoint?: string } {
    return {
      issuer: this.issuer,
      jwks: this.jwks() as { keys: Array<Record<string, unknown>> },
      ...(this.config.gatewayOtlpEndpoint ? { otlpEndpoint: this.config.gatewayOtlpEndpoint } : {}),
    };
  }

  jwks(): { keys: JWK[] } {
    return { keys: this.keys.all.map((k) => k.publicJwk) };
  }

  async signGatewayToken(r: GatewayTokenRequest): Promise<{ token: string; expiresAt: Date }> {
    const now = Math.floor(this.clock.now().getTime() / 1000);
    const exp = now + Math.min(r.ttlSeconds ?? 60, 3600);
    const claims: Record<string, unknown> = { scope: r.scope };
    if (r.role) claims.role = r.role;
    if (r.sessionId) claims.sid = r.sessionId;
    if (r.port) claims.port = r.port;
    if (r.access) claims.access = r.access;
    if (r.share) {
      claims.share = r.share.id;
      claims.share_exp = Math.floor(r.share.expiresAt.getTime() / 1000);
    }
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'EdDSA', kid: this.keys.active.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(`user:${r.userId}`)
      .setAudience(r.environmentId)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(this.keys.active.privateKey);
    return { token, expiresAt: new Date(exp * 1000) };
  }

  async signWorkloadIdentity(
    r: WorkloadIdentityRequest,
  ): Promise<{ token: string; jti: string; expiresAt: Date }> {
    const now = Math.floor(this.clock.now().getTime() / 1000);
    const exp = now + Math.min(r.ttlSeconds ?? 300, 900);
    const jti = randomUUID();
    const token = await new SignJWT({
      environment_id: r.environmentId,
      ...(r.taskId ? { task_id: r.taskId } : {}),
      provider: r.provider,
      launch_source: r.launchSource,
    })
      .setProtectedHeader({ alg: 'EdDSA', kid: this.keys.active.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(`user:${r.userId}`)
      .setAudience(r.audience)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(exp)
      .setJti(jti)
      .sign(this.keys.active.privateKey);
    return { token, jti, expiresAt: new Date(exp * 1000) };
  }
}
