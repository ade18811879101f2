import { describe, expect, it } from 'vitest';
import { isTraced, parseTraceparent, routeOf } from './tracing.js';

describe('gateway tracing', () => {
  it('continues a sampled traceparent, starts a new trace for a missing or malformed one, records nothing for an unsampled one', () => {
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    expect(parseTraceparent(`00-${trace}-00f067aa0ba902b7-01`)).toEqual({
      traceId: trace,
      parentSpanId: '00f067aa0ba902b7',
    });
    expect(parseTraceparent(`00-${trace}-00f067aa0ba902b7-00`)).toBeNull();
    for (const bad of [undefined, 'garbage', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`, ['a', 'b']]) {
      const root = parseTraceparent(bad);
      expect(root?.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(root?.traceId).not.toBe(trace);
      expect(root?.parentSpanId).toBeUndefined();
    }
  });

  it('traces Berth’s own routes, never the application traffic of port previews', () => {
    expect(isTraced('/exec/tasks/x/messages')).toBe(true);
    expect(isTraced('/terminal')).toBe(true);
    expect(isTraced('/sessions')).toBe(true);
    expect(isTraced('/ports/3000/reset/abcDEFsecret')).toBe(false);
    expect(isTraced('/healthz')).toBe(false);
  });

  it('names spans by route, so ids and port numbers do not make a span name per request', () => {
    expect(routeOf('/exec/tasks/0b6f6a4e-2f41-4a8e-9a53-2b1b7f0c9d11/messages')).toBe(
      '/exec/tasks/:id/messages',
    );
    expect(routeOf('/ports/8080/')).toBe('/ports/:n/');
    expect(routeOf('/healthz')).toBe('/healthz');
  });
});
