import { Controller, Get, Inject, Param, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Public, type AuthedRequest } from '../accounts/auth.guard.js';
import { AuthService } from '../accounts/auth.service.js';
import { SESSION_COOKIE, type AuthContext } from '../accounts/auth.types.js';
import { actorOf } from '../audit/audit.service.js';
import type { Config } from '../config.js';
import { CLOCK, CONFIG, type Clock } from '../common/di.js';
import { TokenBuckets } from '../common/rate-limit.js';
import { Uuid } from '../common/validation.js';
import { PortsService } from './ports.service.js';

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(
  res: Response,
  status: number,
  title: string,
  text: string,
  link?: { href: string; label: string },
) {
  res
    .status(status)
    .set({
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
      'referrer-policy': 'no-referrer',
    })
    .send(
      `<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${escapeHtml(title)}</title>
<body style="font:16px system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem">
<h1 style="font-size:1.3rem">${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p>
${link ? `<p><a href="${escapeHtml(link.href)}">${escapeHtml(link.label)}</a></p>` : ''}</body>\n`,
    );
}

/**
 * `GET /p/:envId/:port`: the preview link people copy and share. Each visit that the port's
 * sharing level allows is redirected to the gateway with a fresh one-time ticket.
 */
@ApiExcludeController()
@Controller('p')
export class PreviewController {
  /** Each visit signs a ticket and writes an audit row, so anonymous floods are braked per address. */
  private readonly buckets: TokenBuckets | undefined;

  constructor(
    @Inject(PortsService) private readonly ports: PortsService,
    @Inject(AuthService) private readonly auth: AuthService,
    @Inject(CONFIG) config: Config,
    @Inject(CLOCK) clock: Clock,
  ) {
    if (config.mutationRatePerMinute > 0)
      this.buckets = new TokenBuckets(config.mutationRatePerMinute, config.mutationRateBurst, clock);
  }

  @Public()
  @Get(':envId/:port')
  async open(
    @Req() req: Request,
    @Res() res: Response,
    @Param('envId') envId: string,
    @Param('port') raw: string,
  ) {
    const port = /^\d{1,5}$/.test(raw) ? Number(raw) : 0;
    const viewer = await this.viewer(req);
    const wait = this.buckets?.take(
      viewer ? `user:${viewer.userId}` : `ip:${req.ip ?? req.socket.remoteAddress}`,
    );
    if (wait) {
      res.set('retry-after', String(wait));
      return page(res, 429, 'Too many requests', `Try again in ${wait} s.`);
    }
    if (!Uuid.safeParse(envId).success || port < 1 || port > 65535) {
      return page(res, 404, 'Not found', 'There is no such preview link.');
    }
    const d = await this.ports.preview(viewer, envId, port, actorOf(req as AuthedRequest));
    switch (d.kind) {
      case 'redirect':
        res.set({ 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
        return res.redirect(302, d.url);
      case 'sign_in':
        return page(res, 401, 'Sign in to open this port', 'This preview is not public.', {
          href: `/login?next=${encodeURIComponent(`/p/${envId}/${port}`)}`,
          label: 'Sign in to Berth',
        });
      case 'not_found':
        return page(res, 404, 'Not found', 'There is no such preview link, or it is not shared with you.');
      case 'not_ready':
        return page(
          res,
          409,
          'The environment is not running',
          `The environment is ${d.state}. Its owner can start it from Berth.`,
        );
    }
  }

  /** The signed-in user, if any: a session cookie (browsers) or a bearer token (curl). */
  private async viewer(req: Request): Promise<AuthContext | undefined> {
    const header = req.headers.authorization;
    const bearer = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    const cookie = (req as Request & { cookies?: Record<string, string> }).cookies?.[SESSION_COOKIE];
    if (!bearer && !cookie) return undefined;
    try {
      return await this.auth.authenticate(bearer, bearer ? undefined : cookie);
    } catch {
      return undefined;
    }
  }
}
