import type { IncomingMessage, ServerResponse } from 'node:http';

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
