import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FakeProvider } from '@berth/providers';
import { ADMIN, Client, startTestServer, type TestServer } from '../testing/server.js';
import { Collector } from '../testing/otlp-collector.js';

const collector = new Collector();
let s: TestServer;

beforeAll(async () => {
  await collector.start();
  s = await startTestServer(
    { BERTH_PROVIDERS: 'fake', OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_SERVICE_NAME: 'berth-test' },
    { providers: { fake: new FakeProvider() } },
  );
});
afterAll(() => collector.stop());

describe('OpenTelemetry traces (OTLP)', () => {
  it('one trace runs from the caller through the API, the job and the provider call', async () => {
    const admin = new Client(s.url);
    await admin.login(ADMIN.email, ADMIN.password);
    const created = await admin.post('/api/v1/environments', { name: 'traced' });
    expect(created.status).toBe(201);
    const id = created.json.environment.id as string;
    // vi.waitFor's default is 1 s: too short for a job-queue round trip on a loaded CI machine.
    await vi.waitFor(
      async () =>
        expect((await admin.get(`/api/v1/environments/${id}`)).json.environment.state).toBe('ready'),
      { timeout: 20_000 },
    );
    // Shutting down flushes every span still buffered.
    await s.stop();

    const named = (name: string, kind: number) =>
      collector.spans.filter((x) => x.name === name && x.kind === kind);
    const [api] = named('POST /api/v1/environments', 2); // SERVER
    expect(api).toBeDefined();
    // The caller's fetch was traced too, and its traceparent continued on the server.
    const client = named('POST /api/v1/environments', 3).find((c) => c.spanId === api!.parentSpanId);
    expect(client?.traceId).toBe(api!.traceId);
    const job = named('job environment.provision', 5).find((j) => j.traceId === api!.traceId); // CONSUMER
    expect(job?.parentSpanId).toBe(api!.spanId);
    const create = named('provider.fake.create', 3).find((p) => p.traceId === api!.traceId);
    expect(create?.parentSpanId).toBe(job!.spanId);
  });
});
