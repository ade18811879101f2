import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * The gateway's side of a trace: a server span per HTTP request and WebSocket connection,
 * continuing the caller's W3C `traceparent` (the control plane's worker sends one with every exec
 * call), exported as OTLP/HTTP JSON. Written by hand rather than with the OpenTelemetry SDK: the
 * gateway is one bundle copied into every environment, and these ~150 lines are all it needs.
 */
export interface GatewayTracer {
  onRequest(req: IncomingMessage, res: ServerResponse): void;
  onUpgrade(req: IncomingMessage, socket: Duplex): void;
  /** Sends what is buffered; called when the gateway closes. */
  shutdown(): Promise<void>;
}

export interface TracerOptions {
  /** The collector's base URL: spans go to `<endpoint>/v1/traces`. */
  endpoint: string;
  environmentId: string;
  version: string;
  /** Export when this many spans are buffered, or `flushMs` after the first one. */
  batchSize?: number;
  flushMs?: number;
  /** Failures to export are reported here, never thrown: tracing must not break the gateway. */
  onError?: (err: Error) => void;
}

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Array<{ key: string; value: { stringValue: string } | { intValue: string } }>;
  status: { code: number };
}

const SERVER = 2;
const STATUS_ERROR = 2;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** Trace and parent of a valid, sampled `traceparent`; a new root otherwise. Unsampled: null. */
export function parseTraceparent(
  header: string | string[] | undefined,
): { traceId: string; parentSpanId?: string } | null {
  const m = typeof header === 'string' ? TRACEPARENT.exec(header.trim()) : null;
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return { traceId: randomBytes(16).toString('hex') };
  if ((parseInt(m[3]!, 16) & 1) === 0) return null;
  return { traceId: m[1]!, parentSpanId: m[2]! };
}

const nowNano = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e3)) * 1000n;

/** Paths carry ids (tasks, ports); the span name keeps their shape so spans group by route. */
export function routeOf(path: string): string {
  return path
    .replace(/\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?=\/|$)/gi, '/:id')
    .replace(/\/\d+(?=\/|$)/g, '/:n');
}

/**
 * Berth's own routes only. Port previews carry the user's application traffic (paths with their
 * tokens, anyone's requests on a public port): none of that goes to the operator's collector.
 */
export function isTraced(path: string): boolean {
  return path.startsWith('/exec/') || path === '/terminal' || path === '/sessions';
}

/** Batches being sent at once; past it a batch is dropped rather than piling up requests. */
const MAX_INFLIGHT = 4;

export function createTracer(opts: TracerOptions): GatewayTracer {
  const url = `${opts.endpoint.replace(/\/+$/, '')}/v1/traces`;
  const batchSize = opts.batchSize ?? 64;
  const flushMs = opts.flushMs ?? 1000;
  let buffer: OtlpSpan[] = [];
  let timer: NodeJS.Timeout | undefined;
  const inflight = new Set<Promise<void>>();

  const resource = {
    attributes: [
      { key: 'service.name', value: { stringValue: 'berth-gateway' } },
      { key: 'service.version', value: { stringValue: opts.version } },
      { key: 'berth.environment.id', value: { stringValue: opts.environmentId } },
    ],
  };

  function flush(): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (buffer.length === 0) return;
    const spans = buffer;
    buffer = [];
    if (inflight.size >= MAX_INFLIGHT) {
      opts.onError?.(new Error(`OTLP collector at ${url} is slow: dropped ${spans.length} spans`));
      return;
    }
    const body = JSON.stringify({
      resourceSpans: [{ resource, scopeSpans: [{ scope: { name: 'berth.gateway' }, spans }] }],
    });
    const p = fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(10_000),
    }).then(
      async (res) => {
        await res.arrayBuffer();
        if (!res.ok) opts.onError?.(new Error(`OTLP export to ${url} answered HTTP ${res.status}`));
      },
      (err: unknown) => opts.onError?.(err instanceof Error ? err : new Error(String(err))),
    );
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  }

  function record(span: OtlpSpan): void {
    buffer.push(span);
    if (buffer.length >= batchSize) flush();
    else if (!timer) {
      timer = setTimeout(flush, flushMs);
      timer.unref();
    }
  }

  function start(req: IncomingMessage, name: string) {
    const ctx = parseTraceparent(req.headers.traceparent);
    if (!ctx) return undefined;
    return {
      traceId: ctx.traceId,
      spanId: randomBytes(8).toString('hex'),
      ...(ctx.parentSpanId ? { parentSpanId: ctx.parentSpanId } : {}),
      name,
      kind: SERVER,
      startTimeUnixNano: nowNano().toString(),
    };
  }

  return {
    onRequest(req, res) {
      const path = new URL(req.url ?? '/', 'http://gateway').pathname;
      if (!isTraced(path)) return;
      const span = start(req, `${req.method ?? 'GET'} ${routeOf(path)}`);
      if (!span) return;
      let done = false;
      const end = () => {
        if (done) return;
        done = true;
        const status = res.headersSent ? res.statusCode : 0;
        record({
          ...span,
          endTimeUnixNano: nowNano().toString(),
          attributes: [
            { key: 'http.request.method', value: { stringValue: req.method ?? 'GET' } },
            { key: 'url.path', value: { stringValue: path } },
            { key: 'http.response.status_code', value: { intValue: String(status) } },
          ],
          // A client that went away before an answer is an error too.
          status: { code: status >= 500 || status === 0 ? STATUS_ERROR : 0 },
        });
      };
      res.once('finish', end);
      res.once('close', end);
    },
    onUpgrade(req, socket) {
      const path = new URL(req.url ?? '/', 'http://gateway').pathname;
      if (!isTraced(path)) return;
      const span = start(req, `WS ${routeOf(path)}`);
      if (!span) return;
      socket.once('close', () =>
        record({
          ...span,
          endTimeUnixNano: nowNano().toString(),
          attributes: [{ key: 'url.path', value: { stringValue: path } }],
          status: { code: 0 },
        }),
      );
    },
    async shutdown() {
      flush();
      await Promise.all([...inflight]);
    },
  };
}
