import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: Array<{ key: string; value: Record<string, unknown> }>;
}

export interface OtlpBatch {
  service: string | undefined;
  /** The resource's string attributes (service.name, berth.environment.id, …). */
  resource: Record<string, string>;
  spans: OtlpSpan[];
}

/** A real OTLP/HTTP JSON receiver on loopback: what a collector gets is what tests assert on. */
export class Collector {
  readonly batches: OtlpBatch[] = [];
  private server!: Server;
  url = '';

  get spans(): OtlpSpan[] {
    return this.batches.flatMap((b) => b.spans);
  }

  /** Spans sent by one service (the `service.name` resource attribute). */
  spansOf(service: string): OtlpSpan[] {
    return this.batches.filter((b) => b.service === service).flatMap((b) => b.spans);
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/v1/traces') {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
            resourceSpans: Array<{
              resource?: { attributes?: Array<{ key: string; value: { stringValue?: string } }> };
              scopeSpans: Array<{ spans: OtlpSpan[] }>;
            }>;
          };
          for (const rs of body.resourceSpans) {
            const resource: Record<string, string> = {};
            for (const a of rs.resource?.attributes ?? [])
              if (a.value.stringValue !== undefined) resource[a.key] = a.value.stringValue;
            this.batches.push({
              service: resource['service.name'],
              resource,
              spans: rs.scopeSpans.flatMap((ss) => ss.spans),
            });
          }
        }
        res.setHeader('content-type', 'application/json');
        res.end('{}');
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}
