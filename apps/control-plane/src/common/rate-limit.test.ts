import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, Client, memberClient, startTestServer, type TestServer } from '../testing/server.js';
import { TokenBuckets } from './rate-limit.js';

describe('token buckets (injected clock)', () => {
  it('allows a burst, then refills at the rate', () => {
    let now = 0;
    const b = new TokenBuckets(60, 3, { now: () => new Date(now) });
    expect([b.take('a'), b.take('a'), b.take('a')]).toEqual([0, 0, 0]);
    expect(b.take('a')).toBe(1); // one per second at 60/min
    expect(b.take('b')).toBe(0); // keys are independent
    now += 1000;
    expect(b.take('a')).toBe(0);
    expect(b.take('a')).toBe(1);
    now += 60_000;
    expect([b.take('a'), b.take('a'), b.take('a'), b.take('a')]).toEqual([0, 0, 0, 1]); // capped at the burst
  });
});

describe('mutation rate limit', () => {
  let s: TestServer;
  let admin: Client;
  beforeAll(async () => {
    // One per minute refill: nothing comes back during the test, so counts are exact.
    s = await startTestServer({ BERTH_MUTATION_RATE_PER_MINUTE: '1', BERTH_MUTATION_RATE_BURST: '4' });
    admin = new Client(s.url);
    await admin.login(ADMIN.email, ADMIN.password); // counts against the client address, not the user
  });
  afterAll(() => s.stop());

  it('refuses a user’s changes past the burst with 429, Retry-After and which limit; reads and other users go on', async () => {
    const member = await memberClient(s, admin, 'rate@example.com'); // admin: POST /users (1)
    const results = [];
    for (let i = 0; i < 4; i++) results.push((await admin.post('/api/v1/tokens', { name: `t${i}` })).status);
    expect(results).toEqual([201, 201, 201, 429]);
    const refused = await admin.post('/api/v1/tokens', { name: 'again' });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.json.error).toMatchObject({ code: 'rate_limited' });
    expect(refused.json.error.message).toContain('at most 1 per minute (bursts of 4) per user');
    // The refused call did nothing.
    const tokens = (await admin.get('/api/v1/tokens')).json.items as Array<{ name: string }>;
    expect(tokens.map((t) => t.name)).not.toContain('again');
    expect((await admin.get('/api/v1/me')).status).toBe(200);
    expect((await member.post('/api/v1/tokens', { name: 'mine' })).status).toBe(201);
  });
});
