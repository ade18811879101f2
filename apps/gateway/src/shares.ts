import type { IncomingMessage, ServerResponse } from 'node:http';
import { TerminalCloseCode } from '@berth/protocol';
import type { TokenVerifier } from './auth.js';
import { authorizeBearer, sendJson } from './http.js';
import type { Logger } from './log.js';
import type { Attachment, ShareBinding } from './session.js';
import type { SessionRegistry } from './sessions.js';

/** A link revoked without a known expiry is remembered this long (a link lives a day at most). */
const REMEMBER_REVOKED_S = 24 * 60 * 60;
/** setTimeout's limit; links never live this long, but a bad claim must not fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const SHARE_ID = /^[A-Za-z0-9_-]{1,64}$/;

export interface ShareRefusal {
  code: number;
  reason: string;
}

/**
 * Read-only links as the gateway sees them: a viewer's ticket (and the resume token issued for
 * it) names its share and when that expires. The viewer is closed at expiry (a timer per
 * attachment) and when the control plane revokes the share (`DELETE /shares/<id>`); after that,
 * tickets still within their minute and resume tokens for the share are refused.
 */
export class ShareGuard {
  /** Revoked share id → seconds since the epoch after which its expiry refuses it anyway. */
  private readonly revoked = new Map<string, number>();

  constructor(
    private readonly sessions: SessionRegistry,
    private readonly verifier: TokenVerifier,
    private readonly log: Logger,
  ) {}

  /** Why a connection bound to this share may not attach now; undefined when it may. */
  refusal(share: ShareBinding | undefined): ShareRefusal | undefined {
    if (!share) return undefined;
    if (this.revoked.has(share.id)) return { code: TerminalCloseCode.ShareRevoked, reason: 'share revoked' };
    if (share.exp !== undefined && share.exp * 1000 <= Date.now())
      return { code: TerminalCloseCode.ShareExpired, reason: 'share expired' };
    return undefined;
  }

  /** Closes a share viewer when its link expires; returns what cancels that (on detach). */
  watch(client: Attachment): () => void {
    const exp = client.share?.exp;
    if (exp === undefined) return () => undefined;
    const timer = setTimeout(
      () => client.close(TerminalCloseCode.ShareExpired, 'share expired'),
      Math.min(Math.max(0, exp * 1000 - Date.now()), MAX_TIMER_MS),
    );
    return () => clearTimeout(timer);
  }

  /** `DELETE /shares/<id>`; true when the request was this route. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): boolean {
    const m = /^\/shares\/([^/]+)$/.exec(url.pathname);
    if (!m) return false;
    if (req.method !== 'DELETE') {
      sendJson(res, 405, { error: { code: 'method_not_allowed', message: 'use DELETE' } });
      return true;
    }
    this.revoke(req, res, decodeURIComponent(m[1]!)).catch((err: unknown) =>
      sendJson(res, 500, { error: { code: 'internal', message: String(err) } }),
    );
    return true;
  }

  /**
   * Only the control plane revokes: scope `exec` (never a terminal or observer ticket) with a
   * `share` claim naming this share, so a token minted for one link cannot end another.
   */
  private async revoke(req: IncomingMessage, res: ServerResponse, shareId: string): Promise<void> {
    const claims = await authorizeBearer(req, res, this.verifier, 'exec', (c) => {
      if (!SHARE_ID.test(shareId) || c.share !== shareId)
        throw new Error(`token is for share ${c.share ?? 'none'}`);
    });
    if (!claims) return;
    const exp = claims.share_exp;
    const now = Date.now() / 1000;
    for (const [id, until] of this.revoked) if (until < now) this.revoked.delete(id);
    // Past its expiry a link is refused anyway; until then tickets made before the revoke (good
    // for a minute) and resume tokens must not get back in.
    this.revoked.set(shareId, Math.max(exp ?? now + REMEMBER_REVOKED_S, now + 120));
    const closed = this.sessions.endShare(shareId, TerminalCloseCode.ShareRevoked, 'share revoked');
    this.log.info('share revoked', { shareId, closed });
    sendJson(res, 200, { closed });
  }
}
