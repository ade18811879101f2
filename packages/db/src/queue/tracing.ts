import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { JobRow } from './jobs.js';

/**
 * The W3C `traceparent` of the active span, stored with a job so the worker's span continues the
 * trace of the request that enqueued it. Null when tracing is off (no propagator registered):
 * then nothing is stored and nothing costs more than this call.
 */
export function activeTraceParent(): string | null {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent ?? null;
}

/** Runs a job's handler inside a span that continues the enqueuer's trace. */
export function withJobSpan<T>(job: JobRow, fn: () => Promise<T>): Promise<T> {
  const parent = job.trace_parent
    ? propagation.extract(context.active(), { traceparent: job.trace_parent })
    : context.active();
  return trace.getTracer('berth.queue').startActiveSpan(
    `job ${job.kind}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: { 'berth.job.id': job.id, 'berth.job.kind': job.kind, 'berth.job.attempt': job.attempts },
    },
    parent,
    async (span) => {
      try {
        return await fn();
      } catch (err) {
        span.recordException(err as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
        throw err;
      } finally {
        span.end();
      }
    },
  );
}
