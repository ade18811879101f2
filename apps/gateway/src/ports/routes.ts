import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { GatewayConfig } from '@berth/protocol';
import type { JtiCache, TokenVerifier } from '../auth.js';
import { authorizeBearer, bearer, sendJson } from '../http.js';
import type { Logger } from '../log.js';
import { parseCookies, PORT_COOKIE_TTL_S, PortCookies } from './cookie.js';
import { bridge, dialLoopback } from './forward.js';
import { listeningPorts } from './listening.js';
import { proxyHttp, proxyUpgrade, type ProxyTarget } from './proxy.js';

/** Query parameter carrying the one-time ticket a browser trades for the port cookie. */
export const TICKET_PARAM = 'berth_ticket';
export const PORTS_PREFIX = '/ports/';
/** `berth port-forward`: raw TCP over a WebSocket (outside `/ports/` so no app path is shadowed). */
export const FORWARD_PREFIX = '/tcp/';

export interface PortRoutes {
  /** True when the request was answered here. */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  close(): void;
}

interface Deps {
  server: Server;
  config: Pick<GatewayConfig, 'environmentId' | 'issuer'>;
  verifier: TokenVerifier;
  jtis: JtiCache;
  log: Logger;
}

interface Route extends ProxyTarget {
  cookiePath: string;
  /** The path without the ticket parameter, for the redirect after the exchange. */
  cleanUrl: string;
  ticket: string | undefined;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res: ServerResponse, status: number, title: string, text: string, link?: string): void {
  const body = `<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${escapeHtml(title)}</title>
<body style="font:16px system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem">
<h1 style="font-size:1.3rem">${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p>
${link ? `<p><a href="${escapeHtml(link)}">Open it through Berth</a></p>` : ''}</body>\n`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'x-berth-gateway': 'ports',
  });
  res.end(body);
}

function validPort(s: string | undefined): number | undefined {
  if (!s || !/^\d{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/**
 * Port previews and forwarding. Every request here ends at 127.0.0.1:<port> of this
 * environment or is refused: the target port is the only thing a client chooses, the gateway's
 * own port is refused, absolute-form request targets and CONNECT are refused.
 */
export function createPortRoutes(d: Deps): PortRoutes {
  const cookies = new PortCookies(d.config.environmentId);
  const tracked = new Set<Socket | Duplex>();
  const track = (s: Socket | Duplex) => {
    tracked.add(s);
    s.once('close', () => tracked.delete(s));
  };
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
  const selfPort = () => (d.server.address() as AddressInfo | null)?.port;
  const hostRe = new RegExp(`^(\\d{1,5})-${d.config.environmentId.replace(/[^A-Za-z0-9-]/g, '')}\\.`, 'i');
  let reopenBase: string | undefined;
  try {
    reopenBase = new URL(d.config.issuer).origin === 'null' ? undefined : d.config.issuer.replace(/\/+$/, '');
  } catch {
    reopenBase = undefined;
  }
  const reopen = (port: number) =>
    reopenBase ? `${reopenBase}/p/${encodeURIComponent(d.config.environmentId)}/${port}` : undefined;

  // CONNECT is how a forward proxy is asked to dial anywhere; this is not one.
  d.server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    socket.end('HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });

  /** Which port a request is for: `<port>-<env>.<domain>` (hostname routing) or `/ports/<port>/…`. */
  function route(req: IncomingMessage): Route | 'redirect' | undefined {
    const raw = req.url ?? '/';
    const url = new URL(raw, 'http://gateway');
    const ticket = url.searchParams.get(TICKET_PARAM) ?? undefined;
    url.searchParams.delete(TICKET_PARAM);
    const query = url.search;
    const hostMatch = hostRe.exec(req.headers.host ?? '');
    if (hostMatch) {
      const port = validPort(hostMatch[1]);
      if (!port) return undefined;
      const path = url.pathname + query;
      return { port, path, prefix: '', cookiePath: '/', cleanUrl: path, ticket };
    }
    if (!url.pathname.startsWith(PORTS_PREFIX) && url.pathname !== PORTS_PREFIX.slice(0, -1))
      return undefined;
    const rest = url.pathname.slice(PORTS_PREFIX.length);
    const slash = rest.indexOf('/');
    const port = validPort(slash < 0 ? rest : rest.slice(0, slash));
    if (!port) return undefined;
    if (slash < 0) return 'redirect';
    const prefix = `${PORTS_PREFIX}${port}`;
    // The normalised path (dot segments resolved, still percent-encoded), minus the prefix.
    const rawPath = url.pathname.slice(prefix.length);
    return {
      port,
      path: rawPath + query,
      prefix,
      cookiePath: `${prefix}/`,
      cleanUrl: prefix + rawPath + query,
      ticket,
    };
  }

  async function exchange(r: Route, req: IncomingMessage, res: ServerResponse): Promise<void> {
    let claims;
    try {
      claims = await d.verifier.verify(r.ticket!, 'port');
      if (claims.port !== r.port) throw new Error(`ticket is for port ${claims.port ?? 'none'}`);
      if (claims.access === 'forward') throw new Error('a forwarding ticket cannot open a preview');
      if (!claims.jti || !d.jtis.use(claims.jti, claims.exp)) throw new Error('ticket already used');
    } catch (err) {
      d.log.warn('port ticket refused', { port: r.port, reason: (err as Error).message });
      return page(
        res,
        401,
        'This link has expired',
        `The ticket in this link is not valid (${(err as Error).message}). Links are for one use within a minute.`,
        reopen(r.port),
      );
    }
    const exp = Math.floor(Date.now() / 1000) + PORT_COOKIE_TTL_S;
    const value = cookies.mint({ sub: claims.sub, port: r.port, exp, iat: Date.now() });
    const secure = req.headers['x-forwarded-proto'] === 'https' ? '; Secure' : '';
    d.log.info('port opened', { port: r.port, sub: claims.sub });
    res.writeHead(303, {
      location: r.cleanUrl,
      'set-cookie': `${cookies.name(r.port)}=${value}; Path=${r.cookiePath}; Max-Age=${PORT_COOKIE_TTL_S}; HttpOnly; SameSite=Lax${secure}`,
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
    });
    res.end();
  }

  function granted(r: Route, req: IncomingMessage): boolean {
    const name = cookies.name(r.port);
    return parseCookies(req.headers.cookie).some(([k, v]) => k === name && cookies.verify(v, r.port));
  }

  /**
   * `DELETE /ports/<port>` from the control plane (scope `exec`, `port` claim) when a port's
   * sharing is lowered: browsers that opened it before must come back through Berth.
   */
  async function revoke(req: IncomingMessage, res: ServerResponse, port: number): Promise<void> {
    const claims = await authorizeBearer(req, res, d.verifier, 'exec', (c) => {
      if (c.port !== port) throw new Error(`token is for port ${c.port ?? 'none'}`);
    });
    if (!claims) return;
    cookies.revoke(port);
    d.log.info('port cookies revoked', { port });
    res.writeHead(204);
    res.end();
  }

  async function listPorts(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!(await authorizeBearer(req, res, d.verifier, 'port'))) return;
    const self = selfPort();
    const ports = (await listeningPorts()).filter((p) => p.port !== self);
    sendJson(res, 200, { ports });
  }

  function refusedSelf(port: number): boolean {
    return port === selfPort();
  }

  return {
    handleRequest(req, res) {
      if (!(req.url ?? '/').startsWith('/')) {
        // Absolute-form targets (`GET http://elsewhere/`) are what forward proxies take.
        page(res, 400, 'Not a proxy', 'This gateway only serves ports inside its own environment.');
        return true;
      }
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/ports' && req.method === 'GET' && !hostRe.test(req.headers.host ?? '')) {
        listPorts(req, res).catch(() => page(res, 500, 'Error', 'could not read the listening ports'));
        return true;
      }
      const revokePort = req.method === 'DELETE' && /^\/ports\/(\d{1,5})$/.exec(path ?? '');
      if (revokePort && !hostRe.test(req.headers.host ?? '')) {
        const port = validPort(revokePort[1]);
        if (port) {
          revoke(req, res, port).catch(() => page(res, 500, 'Error', 'could not revoke'));
          return true;
        }
      }
      const r = route(req);
      if (r === undefined) return false;
      if (r === 'redirect') {
        const url = new URL(req.url ?? '/', 'http://gateway');
        res.writeHead(308, { location: `${url.pathname}/${url.search}` });
        res.end();
        return true;
      }
      if (refusedSelf(r.port)) {
        page(res, 403, 'Not allowed', 'The gateway’s own port cannot be previewed.');
        return true;
      }
      if (r.ticket) {
        exchange(r, req, res).catch(() => page(res, 500, 'Error', 'the ticket could not be checked'));
        return true;
      }
      if (!granted(r, req)) {
        page(
          res,
          401,
          'Sign-in needed',
          `Port ${r.port} of this environment opens through Berth, which hands your browser a ticket.`,
          reopen(r.port),
        );
        return true;
      }
      proxyHttp(req, res, r, (out, port) =>
        page(
          out,
          502,
          `Nothing is listening on port ${port}`,
          `No program in this environment accepts connections on port ${port} (127.0.0.1). Start your server, then reload.`,
        ),
      );
      return true;
    },

    handleUpgrade(req, socket, head) {
      const raw = req.url ?? '/';
      if (!raw.startsWith('/')) {
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
        return true;
      }
      const url = new URL(raw, 'http://gateway');
      if (url.pathname.startsWith(FORWARD_PREFIX) && !hostRe.test(req.headers.host ?? '')) {
        forward(req, socket, head, url).catch(() => socket.destroy());
        return true;
      }
      const r = route(req);
      if (r === undefined) return false;
      const refuse = (status: string) => socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
      if (r === 'redirect') return (refuse('404 Not Found'), true);
      if (refusedSelf(r.port)) return (refuse('403 Forbidden'), true);
      if (!granted(r, req)) return (refuse('401 Unauthorized'), true);
      // Only WebSocket: after another upgrade (h2c…) the raw pipe would carry requests unfiltered.
      if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return (refuse('400 Bad Request'), true);
      track(socket);
      proxyUpgrade(req, socket, head, r, track);
      return true;
    },

    close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      for (const s of tracked) s.destroy();
    },
  };

  async function forward(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<void> {
    const refuse = (status: string, why: string): void =>
      void socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${why}\n`);
    const port = validPort(url.pathname.slice(FORWARD_PREFIX.length));
    if (!port) return refuse('404 Not Found', 'no such port');
    if (refusedSelf(port)) return refuse('403 Forbidden', 'the gateway’s own port cannot be forwarded');
    const token = bearer(req) ?? url.searchParams.get('token');
    try {
      if (!token) throw new Error('missing token');
      const claims = await d.verifier.verify(token, 'port');
      if (claims.port !== port) throw new Error(`ticket is for port ${claims.port ?? 'none'}`);
      if (claims.access !== 'forward') throw new Error('not a forwarding ticket');
      // Reusable within its minute: one `berth port-forward` opens many connections with it.
    } catch (err) {
      return refuse('401 Unauthorized', (err as Error).message);
    }
    let tcp: Socket;
    try {
      tcp = await dialLoopback(port);
    } catch {
      return refuse('502 Bad Gateway', `nothing is listening on port ${port} in this environment`);
    }
    track(tcp);
    wss.handleUpgrade(req, socket, head, (ws) => bridge(ws, tcp));
  }
}
