import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ADMIN,
  Client,
  startTestServer,
  type TestServer,
} from '../../apps/control-plane/src/testing/server.js';
import { LiveWaiter } from '../../apps/control-plane/src/testing/live.js';
import { Collector } from '../../apps/control-plane/src/testing/otlp-collector.js';

/**
 * One trace from the API request that launched a task, through the job that ran it, to the
 * environment's gateway (a real local environment), as an OTLP collector receives it.
 */

const SERVER = 2;
const CLIENT = 3;
const collector = new Collector();
let s: TestServer;
let admin: Client;
let live: LiveWaiter;

beforeAll(async () => {
  await collector.start();
  s = await startTestServer({
    BERTH_PROVIDERS: 'local',
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
    OTEL_SERVICE_NAME: 'berth-test',
    BERTH_GATEWAY_OTLP_ENDPOINT: collector.url,
  });
  admin = new Client(s.url);
  await admin.login(ADMIN.email, ADMIN.password);
  live = await LiveWaiter.connect(admin);
});

afterAll(async () => {
  live?.close();
  await s?.stop();
  await collector.stop();
});

describe('traces reach into the environment’s gateway', () => {
  it('API → job → the worker’s call to the gateway → the gateway’s own span, in one trace', async () => {
    const env = await admin.post('/api/v1/environments', { name: 'traced-gw' });
    expect(env.status).toBe(201);
    const envId = env.json.environment.id as string;
    await live.until(
      () => admin.get(`/api/v1/environments/${envId}`),
      (r) => ['ready', 'failed'].includes(r.json.environment.state as string),
    );
    const r = await admin.post('/api/v1/tasks', {
      environmentId: envId,
      command: ['sh', '-c', 'echo traced'],
    });
    expect(r.status).toBe(201);
    const taskId = r.json.task.id as string;
    const done = await live.until(
      () => admin.get(`/api/v1/tasks/${taskId}`),
      (x) => ['succeeded', 'failed', 'canceled', 'timed_out'].includes(x.json.task.state as string),
    );
    expect(done.json.task.state).toBe('succeeded');
    // Destroying the environment stops its gateway, which sends what it has buffered.
    expect((await admin.del(`/api/v1/environments/${envId}`)).status).toBe(200);
    const started = (x: { name: string; kind: number }) =>
      x.name === 'POST /exec/tasks/:id/messages' && x.kind === SERVER;
    await vi.waitFor(() => expect(collector.spansOf('berth-gateway').some(started)).toBe(true), {
      timeout: 15_000,
    });
    await s.stop(); // flushes the control plane's spans

    const cp = collector.spansOf('berth-test');
    const [api] = cp.filter((x) => x.name === 'POST /api/v1/tasks' && x.kind === SERVER);
    expect(api).toBeDefined();
    const inTrace = (xs: typeof cp) => xs.filter((x) => x.traceId === api!.traceId);
    const gateway = inTrace(collector.spansOf('berth-gateway')).filter((x) => x.kind === SERVER);
    // The start message (and the output read) reached the gateway as part of the launch's trace...
    expect(gateway.map((g) => g.name)).toContain('POST /exec/tasks/:id/messages');
    const start = gateway.find((g) => g.name === 'POST /exec/tasks/:id/messages')!;
    // ...each gateway span is the child of the worker's client span for that very call...
    const call = inTrace(cp).find((c) => c.spanId === start.parentSpanId);
    expect(call).toMatchObject({ kind: CLIENT, name: `POST /exec/tasks/${taskId}/messages` });
    // ...and the gateway's spans say which environment they come from.
    const batch = collector.batches.find((b) => b.spans.includes(start));
    expect(batch?.resource).toMatchObject({ 'service.name': 'berth-gateway', 'berth.environment.id': envId });
    expect(start.attributes?.find((a) => a.key === 'url.path')?.value).toEqual({
      stringValue: `/exec/tasks/${taskId}/messages`,
    });
  });
});
