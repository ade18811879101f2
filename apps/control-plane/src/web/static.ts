import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * Serves the web app's static export (apps/web/out) at `/`, on the control plane's own port.
 *
 * - `/login` is `login.html`, `/` is `index.html`; files under `/_next/static/` carry a content
 *   hash in their name, so they are cached for a year, while HTML is `no-store` (a deploy must
 *   show at once, and pages must never be served from a shared cache after sign-out).
 * - Paths the API owns are never answered here, even when a file of that name exists.
 * - The build is looked up on every request, so `npm run build:web` on a running server works
 *   without a restart; without a build, pages say how to make one.
 * - HTML gets a Content-Security-Policy whose script-src lists the sha256 of each inline script
 *   of that page (Next inlines its flight data), so no 'unsafe-inline' is needed for scripts.
 */

export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../../web/out', import.meta.url));

const RESERVED = [
  /^\/api(\/|$)/,
  /^\/healthz$/,
  /^\/readyz$/,
  /^\/metrics$/,
  /^\/\.well-known(\/|$)/,
  /^\/socket\.io(\/|$)/,
  /^\/events(\/|$)/,
  /^\/p\//, // port preview links (apps/control-plane/src/ports)
];

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
};

export function isReservedPath(path: string): boolean {
  return RESERVED.some((r) => r.test(path));
}

/**
 * The policy for one page. `connect-src` allows ws:/wss: everywhere because terminals connect
 * straight to each environment's gateway, on another port or host than the control plane.
 */
export function contentSecurityPolicy(scriptHashes: string[]): string {
  return [
    "default-src 'self'",
    `script-src 'self'${scriptHashes.map((h) => ` '${h}'`).join('')}`,
    // React style attributes and xterm.js set inline styles; styles cannot run code.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self' ws: wss:",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

const INLINE_SCRIPT = /<script\b([^>]*)>([\s\S]*?)<\/script>/gi;

/** sha256 sources for every inline script of a page (those without src=). */
export function inlineScriptHashes(html: string): string[] {
  const out = new Set<string>();
  for (const m of html.matchAll(INLINE_SCRIPT)) {
    const attrs = m[1] ?? '';
    const body = m[2] ?? '';
    if (/\bsrc\s*=/i.test(attrs) || body.length === 0) continue;
    out.add(`sha256-${createHash('sha256').update(body, 'utf8').digest('base64')}`);
  }
  return [...out];
}

function setSecurityHeaders(res: Response, csp: string): void {
  res.setHeader('Content-Security-Policy', csp);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
}

function notBuiltPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Berth: web app not built</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1b1f24}
code{background:#f0f2f5;padding:.15em .4em;border-radius:4px}pre{background:#f0f2f5;padding:.75rem 1rem;border-radius:8px;overflow-x:auto}</style>
</head><body>
<h1>Web app not built</h1>
<p>The Berth API is running, but the web app has not been built on this machine.</p>
<p>From the repository root, run:</p>
<pre><code>npm run build -w @berth/web</code></pre>
<p>then reload this page (no restart needed). The API is at <a href="/api/docs">/api/docs</a>; the CLI works without the web app.</p>
</body></html>
`;
}

interface CachedPage {
  mtimeMs: number;
  body: Buffer;
  csp: string;
}

async function fileAt(path: string): Promise<{ path: string; mtimeMs: number; size: number } | null> {
  try {
    const s = await stat(path);
    return s.isFile() ? { path, mtimeMs: s.mtimeMs, size: s.size } : null;
  } catch {
    return null;
  }
}

export interface WebAppOptions {
  /** The static export; apps/web/out by default. */
  dir?: string;
}

export function webApp(opts: WebAppOptions = {}): RequestHandler {
  const root = resolve(opts.dir ?? DEFAULT_WEB_DIR);
  const pages = new Map<string, CachedPage>();
  const notBuilt = Buffer.from(notBuiltPage());
  const notBuiltCsp = contentSecurityPolicy([]);

  /** The file a URL path names: exact file, then `<path>.html`, then `<path>/index.html`. */
  async function resolveFile(urlPath: string) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(urlPath);
    } catch {
      return null;
    }
    // No NUL bytes, and no dotfiles (out/.source-hash is the build's bookkeeping, not content).
    if (decoded.includes('\0') || /\/\./.test(decoded)) return null;
    const base = resolve(root, `.${decoded}`);
    // Never leave the export directory (`..`, encoded or not).
    if (base !== root && !base.startsWith(root + sep)) return null;
    const trimmed = base.endsWith(sep) ? base.slice(0, -1) : base;
    if (decoded.endsWith('/'))
      return (
        (await fileAt(join(trimmed, 'index.html'))) ??
        (trimmed === root ? null : await fileAt(`${trimmed}.html`))
      );
    return (
      (await fileAt(trimmed)) ??
      (await fileAt(`${trimmed}.html`)) ??
      (await fileAt(join(trimmed, 'index.html')))
    );
  }

  async function sendHtml(
    req: Request,
    res: Response,
    file: { path: string; mtimeMs: number },
    status: number,
  ) {
    let page = pages.get(file.path);
    if (!page || page.mtimeMs !== file.mtimeMs) {
      const body = await readFile(file.path);
      page = {
        mtimeMs: file.mtimeMs,
        body,
        csp: contentSecurityPolicy(inlineScriptHashes(body.toString('utf8'))),
      };
      pages.set(file.path, page);
    }
    setSecurityHeaders(res, page.csp);
    res.status(status);
    res.setHeader('Content-Type', TYPES['.html']!);
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Length', String(page.body.length));
    res.end(req.method === 'HEAD' ? undefined : page.body);
  }

  async function sendAsset(
    req: Request,
    res: Response,
    file: { path: string; size: number },
    urlPath: string,
  ) {
    const type = TYPES[extname(file.path).toLowerCase()] ?? 'application/octet-stream';
    res.setHeader('Content-Type', type);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // Hashed build output never changes under its name; everything else may change with a rebuild.
    res.setHeader(
      'Cache-Control',
      urlPath.startsWith('/_next/static/') ? 'public, max-age=31536000, immutable' : 'no-cache',
    );
    res.setHeader('Content-Length', String(file.size));
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    res.end(await readFile(file.path));
  }

  /** Browsers navigating to a page; API clients asking for JSON fall through to Nest's 404. */
  const wantsHtml = (req: Request) => (req.headers.accept ?? '').includes('text/html');

  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const urlPath = req.path;
    if (isReservedPath(urlPath)) return next();
    void (async () => {
      if (!(await fileAt(join(root, 'index.html')))) {
        if (!wantsHtml(req) && urlPath !== '/') return next();
        setSecurityHeaders(res, notBuiltCsp);
        res.status(503).setHeader('Content-Type', TYPES['.html']!);
        res.setHeader('Cache-Control', 'no-store');
        res.end(req.method === 'HEAD' ? undefined : notBuilt);
        return;
      }
      const file = await resolveFile(urlPath);
      if (file) {
        if (file.path.endsWith('.html')) await sendHtml(req, res, file, 200);
        else await sendAsset(req, res, file, urlPath);
        return;
      }
      const notFound = wantsHtml(req) ? await fileAt(join(root, '404.html')) : null;
      if (notFound) return sendHtml(req, res, notFound, 404);
      next();
    })().catch(next);
  };
}
