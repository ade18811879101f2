import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayTokenClaims } from '@berth/protocol';
import type { TokenVerifier } from './auth.js';

/** The token of an `Authorization: Bearer …` header, if there is one. */
export function bearer(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  return h?.startsWith('Bearer ') ? h.slice(7) : undefined;
}

/** A JSON answer that no cache keeps (it may carry session state or an error about a token). */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/**
 * The claims of the request's bearer token verified for `scope`, or undefined once a 401 has been
 * sent. `check` throws to refuse a token that verified but is not for this request (another
 * share, another port); its message is the one the caller reads.
 */
export async function authorizeBearer(
  req: IncomingMessage,
  res: ServerResponse,
  verifier: TokenVerifier,
  scope: GatewayTokenClaims['scope'],
  check: (claims: GatewayTokenClaims) => void = () => undefined,
): Promise<GatewayTokenClaims | undefined> {
  try {
    const token = bearer(req);
    if (!token) throw new Error('missing bearer token');
    const claims = await verifier.verify(token, scope);
    check(claims);
    return claims;
  } catch (err) {
    sendJson(res, 401, { error: { code: 'unauthorized', message: (err as Error).message } });
    return undefined;
  }
}
