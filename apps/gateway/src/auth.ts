import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { GatewayTokenClaims, type GatewayConfig } from '@berth/protocol';

/** Tickets are for first use within this window; an open connection then lives on. */
export const TICKET_MAX_AGE_S = 60;

export class AuthError extends Error {}

export interface TokenVerifier {
  verify(token: string, scope: GatewayTokenClaims['scope']): Promise<GatewayTokenClaims>;
}

/**
 * Offline verification against the JWKS the gateway was started with: EdDSA only (so `alg: none`
 * and HMAC confusion are refused by jose before any key is touched), issuer, audience = this
 * environment, and an `iat` no older than the ticket window.
 */
export function createTokenVerifier(
  config: Pick<GatewayConfig, 'jwks' | 'issuer' | 'environmentId'>,
): TokenVerifier {
  const keys = createLocalJWKSet(config.jwks as unknown as JSONWebKeySet);
  return {
    async verify(token, scope) {
      let payload: unknown;
      try {
        ({ payload } = await jwtVerify(token, keys, {
          algorithms: ['EdDSA'],
          issuer: config.issuer,
          audience: config.environmentId,
          maxTokenAge: TICKET_MAX_AGE_S,
          requiredClaims: ['exp', 'iat', 'sub'],
        }));
      } catch (err) {
        throw new AuthError(`invalid token: ${(err as Error).message}`);
      }
      const claims = GatewayTokenClaims.safeParse(payload);
      if (!claims.success) throw new AuthError('invalid token: claims do not match');
      if (claims.data.scope !== scope)
        throw new AuthError(`invalid token: scope ${claims.data.scope}, need ${scope}`);
      return claims.data;
    },
  };
}

/** Remembers ticket ids until they expire so a ticket attaches once. */
export class JtiCache {
  private readonly seen = new Map<string, number>();

  use(jti: string, expSeconds: number): boolean {
    const now = Date.now() / 1000;
    for (const [id, exp] of this.seen) if (exp < now) this.seen.delete(id);
    if (this.seen.has(jti)) return false;
    this.seen.set(jti, expSeconds);
    return true;
  }
}
