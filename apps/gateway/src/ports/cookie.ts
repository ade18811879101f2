import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** How long a browser keeps a port open after one ticket; lowering sharing takes effect by then. */
export const PORT_COOKIE_TTL_S = 3600;

export interface PortGrant {
  sub: string;
  port: number;
  /** Seconds since the epoch. */
  exp: number;
  /** Milliseconds since the epoch; a revocation refuses cookies minted before it. */
  iat: number;
}

/**
 * Port cookies are minted and checked by this gateway alone, with a key that never leaves its
 * memory: the control plane is not asked, and a restart simply asks browsers to open the port
 * through Berth again.
 */
export class PortCookies {
  private readonly key = randomBytes(32);
  /** Port → time (ms) before which its cookies no longer count (sharing was lowered). */
  private readonly revokedBefore = new Map<number, number>();

  constructor(private readonly environmentId: string) {}

  /** Scoped to environment and port: gateways on one host share a cookie jar (ports do not isolate cookies). */
  name(port: number): string {
    return `berth_port_${this.environmentId.replace(/[^A-Za-z0-9]/g, '')}_${port}`;
  }

  mint(grant: PortGrant): string {
    const body = Buffer.from(JSON.stringify([grant.sub, grant.port, grant.exp, grant.iat])).toString(
      'base64url',
    );
    return `${body}.${this.mac(body)}`;
  }

  verify(value: string | undefined, port: number, nowS = Date.now() / 1000): PortGrant | undefined {
    if (!value) return undefined;
    const [body, mac] = value.split('.');
    if (!body || !mac) return undefined;
    const want = Buffer.from(this.mac(body));
    const got = Buffer.from(mac);
    if (want.length !== got.length || !timingSafeEqual(want, got)) return undefined;
    try {
      const v: unknown = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
      if (!Array.isArray(v) || typeof v[0] !== 'string' || v[1] !== port || typeof v[2] !== 'number')
        return undefined;
      if (v[2] <= nowS || typeof v[3] !== 'number') return undefined;
      if (v[3] <= (this.revokedBefore.get(port) ?? 0)) return undefined;
      return { sub: v[0], port, exp: v[2], iat: v[3] };
    } catch {
      return undefined;
    }
  }

  /** Every cookie for `port` minted until now stops working. */
  revoke(port: number, nowMs = Date.now()): void {
    this.revokedBefore.set(port, nowMs);
  }

  private mac(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }
}

/** Cookie header → pairs, keeping order; values are left encoded. */
export function parseCookies(header: string | undefined): Array<[string, string]> {
  if (!header) return [];
  const out: Array<[string, string]> = [];
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    out.push([part.slice(0, i).trim(), part.slice(i + 1).trim()]);
  }
  return out;
}
