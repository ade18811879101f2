import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { RequestHandler } from 'express';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Span,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { EnvironmentProvider } from '@berth/providers';

export interface TracingOptions {
  /** OTEL_EXPORTER_OTLP_ENDPOINT: the collector's base URL; spans go to `<it>/v1/traces` (OTLP/HTTP JSON). */
  endpoint: string;
  headers: Record<string, string>;
  serviceName: string;
  serviceVersion: string;
}

export interface Tracing {
  /** Sends what is buffered, then stops: called last when the process shuts down. */
  shutdown(): Promise<void>;
}

let enabled = false;
const tracer = () => trace.getTracer('berth.control-plane');

/**
 * Tracing is on only when an OTLP endpoint is configured; off, the API's no-op tracer is used and
 * nothing is wrapped. One per process: the context manager and propagator are process-global.
 */
export function startTracing(opts: TracingOptions): Tracing {
  if (enabled) throw new Error('tracing is already started in this process');
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': opts.serviceName,
      'service.version': opts.serviceVersion,
    }),
    spanProcessors: [
      new BatchSpanProcessor(
        new OTLPTraceExporter({
          url: `${opts.endpoint.replace(/\/+$/, '')}/v1/traces`,
          headers: opts.headers,
        }),
      ),
    ],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  const stopFetch = traceFetch();
  enabled = true;
  return {
    async shutdown() {
      stopFetch();
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
      enabled = false;
    },
  };
}

/** A server span per request, continuing a caller's `traceparent`; named by the matched route. */
export function httpTracing(): RequestHandler {
  return (req, res, next) => {
    if (!enabled) return next();
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const span = tracer().startSpan(
      req.method,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'url.path': req.path } },
      parent,
    );
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path;
      span.updateName(route ? `${req.method} ${req.baseUrl}${route}` : `${req.method} ${req.path}`);
      if (route) span.setAttribute('http.route', `${req.baseUrl}${route}`);
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    context.with(trace.setSpan(parent, span), next);
  };
}

interface UndiciRequest {
  method: string;
  origin: string;
  path: string;
  addHeader(name: string, value: string): void;
}

/**
 * A client span for every `fetch` (the gateway exec API, Vault), with `traceparent` added so the
 * gateway's side joins the trace. Through undici's diagnostics channels: no wrapper at call sites.
 */
function traceFetch(): () => void {
  const spans = new WeakMap<object, Span>();
  const onCreate = (m: unknown) => {
    const { request } = m as { request: UndiciRequest };
    const span = tracer().startSpan(`${request.method} ${new URL(request.path, request.origin).pathname}`, {
      kind: SpanKind.CLIENT,
      attributes: { 'http.request.method': request.method, 'server.address': request.origin },
    });
    spans.set(request, span);
    const carrier: Record<string, string> = {};
    propagation.inject(trace.setSpan(context.active(), span), carrier);
    for (const [k, v] of Object.entries(carrier)) request.addHeader(k, v);
  };
  const onHeaders = (m: unknown) => {
    const { request, response } = m as { request: object; response: { statusCode: number } };
    spans.get(request)?.setAttribute('http.response.status_code', response.statusCode);
    if (response.statusCode >= 500) spans.get(request)?.setStatus({ code: SpanStatusCode.ERROR });
  };
  const onEnd = (m: unknown) => {
    const { request } = m as { request: object };
    spans.get(request)?.end();
    spans.delete(request);
  };
  const onError = (m: unknown) => {
    const { request, error } = m as { request: object; error: Error };
    const span = spans.get(request);
    span?.recordException(error);
    span?.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    span?.end();
    spans.delete(request);
  };
  const subs: Array<[string, (m: unknown) => void]> = [
    ['undici:request:create', onCreate],
    ['undici:request:headers', onHeaders],
    ['undici:request:trailers', onEnd],
    ['undici:request:error', onError],
  ];
  for (const [name, fn] of subs) subscribe(name, fn);
  return () => {
    for (const [name, fn] of subs) unsubscribe(name, fn);
  };
}

const PROVIDER_CALLS = new Set(['create', 'start', 'stop', 'destroy', 'inspect', 'list', 'snapshot']);

/** Spans around a provider's calls (`provider.docker.create`), when tracing is on. */
export function tracedProvider(name: string, provider: EnvironmentProvider): EnvironmentProvider {
  if (!enabled) return provider;
  return new Proxy(provider, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof prop !== 'string' || !PROVIDER_CALLS.has(prop) || typeof value !== 'function') return value;
      return (...args: unknown[]) =>
        tracer().startActiveSpan(
          `provider.${name}.${prop}`,
          { kind: SpanKind.CLIENT, attributes: { 'berth.provider': name } },
          async (span) => {
            try {
              return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
            } catch (err) {
              span.recordException(err as Error);
              span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
              throw err;
            } finally {
              span.end();
            }
          },
        );
    },
  });
}

/** `k1=v1,k2=v2` (OTEL_EXPORTER_OTLP_HEADERS), values URL-decoded as the spec says. */
export function parseOtlpHeaders(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (raw ?? '').split(',')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}
