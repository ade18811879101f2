import { request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** Connection-scoped headers (RFC 9110 §7.6.1) a proxy must not forward. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export interface ProxyTarget {
  port: number;
  /** Path and query as the app sees them (the `/ports/<port>` prefix removed). */
  path: string;
  /** `/ports/<port>` with path routing, '' with hostname routing. */
  prefix: string;
}

/**
 * Berth's own credentials never reach the app: the port cookies, the control plane's session
 * cookie (same host name, so the browser sends it here too) and any Authorization header.
 */
function appCookies(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const kept = header
    .split(';')
    .map((c) => c.trim())
    .filter((c) => c && !/^berth_/i.test(c));
  return kept.length ? kept.join('; ') : undefined;
}

/** Headers for the app, from the raw list (keeps repeats and order). */
export function appHeaders(req: IncomingMessage, t: ProxyTarget, upgrade: boolean): Array<[string, string]> {
  const connectionTokens = new Set(
    (req.headers.connection ?? '')
      .toLowerCase()
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
  const out: Array<[string, string]> = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (
      lower === 'host' ||
      lower === 'authorization' ||
      lower === 'cookie' ||
      lower.startsWith('x-forwarded-')
    )
      continue;
    if (!upgrade && (HOP_BY_HOP.has(lower) || connectionTokens.has(lower))) continue;
    if (upgrade && lower.startsWith('proxy-')) continue;
    out.push([name, raw[i + 1]!]);
  }
  // The app is reached on loopback; a Host it recognises keeps dev servers' host checks quiet.
  out.push(['Host', `localhost:${t.port}`]);
  const cookies = appCookies(req.headers.cookie);
  if (cookies) out.push(['Cookie', cookies]);
  if (req.headers.host) out.push(['X-Forwarded-Host', req.headers.host]);
  const proto = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  out.push([
    'X-Forwarded-Proto',
    String(req.headers['x-forwarded-proto'] ?? proto)
      .split(',')[0]!
      .trim(),
  ]);
  if (t.prefix) out.push(['X-Forwarded-Prefix', t.prefix]);
  return out;
}

/** Redirects to `/x` (or to the app's own loopback origin) stay under the prefix. */
function rewriteLocation(loc: string, t: ProxyTarget): string {
  const own = new RegExp(`^https?://(localhost|127\\.0\\.0\\.1|\\[::1\\]):${t.port}(?=/|$)`, 'i');
  const local = loc.replace(own, '');
  if (local.startsWith('/') && !local.startsWith('//')) return t.prefix + local;
  if (local === '') return `${t.prefix}/`;
  return loc;
}

function responseHeaders(h: IncomingHttpHeaders, t: ProxyTarget): Record<string, string | string[]> {
  const connectionTokens = new Set(
    String(h.connection ?? '')
      .toLowerCase()
      .split(',')
      .map((s) => s.trim()),
  );
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || HOP_BY_HOP.has(k) || connectionTokens.has(k)) continue;
    out[k] = k === 'location' && typeof v === 'string' ? rewriteLocation(v, t) : v;
  }
  return out;
}

export type Unreachable = (res: ServerResponse, port: number, err: Error) => void;

/** Streams one request to 127.0.0.1:<port> and the answer back; nothing else is ever dialled. */
export function proxyHttp(
  req: IncomingMessage,
  res: ServerResponse,
  t: ProxyTarget,
  unreachable: Unreachable,
): void {
  const flat: Record<string, string | string[]> = {};
  for (const [k, v] of appHeaders(req, t, false)) {
    const key = k.toLowerCase();
    const prev = flat[key];
    flat[key] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const up = request(
    { host: '127.0.0.1', port: t.port, method: req.method, path: t.path, headers: flat },
    (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, responseHeaders(upRes.headers, t));
      upRes.pipe(res);
      upRes.on('error', () => res.destroy());
    },
  );
  up.on('error', (err) => {
    if (!res.headersSent) unreachable(res, t.port, err);
    else res.destroy();
  });
  res.on('close', () => {
    if (!res.writableFinished) up.destroy();
  });
  req.pipe(up);
}

/**
 * A WebSocket (or any Upgrade) to the app: the request head is re-sent to 127.0.0.1:<port> with
 * Berth's credentials removed, then bytes flow both ways with stream back-pressure.
 */
export function proxyUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  t: ProxyTarget,
  track: (s: Socket) => void,
): void {
  const up = connect({ host: '127.0.0.1', port: t.port });
  track(up);
  let connected = false;
  up.once('connect', () => {
    connected = true;
    up.setNoDelay(true);
    let text = `${req.method ?? 'GET'} ${t.path} HTTP/1.1\r\n`;
    for (const [k, v] of appHeaders(req, t, true)) text += `${k}: ${v.replace(/[\r\n]/g, '')}\r\n`;
    up.write(`${text}\r\n`);
    if (head.length) up.write(head);
    socket.pipe(up).pipe(socket);
  });
  up.on('error', () => {
    if (!connected)
      socket.end(
        `HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nnothing is listening on port ${t.port} in this environment\n`,
      );
    else socket.destroy();
  });
  up.on('close', () => socket.destroy());
  socket.on('error', () => up.destroy());
  socket.on('close', () => up.destroy());
}
