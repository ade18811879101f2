import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeProvider } from '@berth/providers';
import { ADMIN, Client, startTestServer, type TestServer } from '../testing/server.js';
import { LiveWaiter } from '../testing/live.js';

let s: TestServer;
let admin: Client;
const fake = new FakeProvider();

beforeAll(async () => {
  s = await startTestServer({ BERTH_PROVIDERS: 'fake' }, { providers: { fake } });
  admin = new Client(s.url);
  await admin.login(ADMIN.email, ADMIN.password);
});
afterAll(async () => {
  await s.stop();
});

describe('deleting a user who has environments', () => {
  it('is refused (409, names them, says what to do) until they are destroyed; nothing is lost', async () => {
    const pw = 'member password 1';
    const created = await admin.post('/api/v1/users', {
      email: 'leaver@example.com',
      password: pw,
      role: 'member',
    });
    const userId = created.json.user.id as string;
    const member = new Client(s.url);
    await member.login('leaver@example.com', pw);
    const live = await LiveWaiter.connect(member);
    try {
      const envId = (await member.post('/api/v1/environments', { name: 'keepme' })).json.environment
        .id as string;
      await live.until(
        () => member.get(`/api/v1/environments/${envId}`),
        (r) => r.json.environment.state === 'ready',
      );

      const refused = await admin.del(`/api/v1/users/${userId}`);
      expect(refused.status).toBe(409);
      expect(refused.json.error).toMatchObject({ code: 'user_has_environments' });
      expect(refused.json.error.message).toContain('keepme');
      expect(refused.json.error.hint).toMatch(/destroy their environments first/);
      // The user, the environment and its container are all still there.
      expect((await admin.get(`/api/v1/users/${userId}`)).status).toBe(200);
      expect((await member.get(`/api/v1/environments/${envId}`)).json.environment.state).toBe('ready');
      expect(fake.envs.has(envId)).toBe(true);

      await member.del(`/api/v1/environments/${envId}`);
      await live.until(
        () => member.get(`/api/v1/environments/${envId}`),
        (r) => r.json.environment.state === 'destroyed',
      );
    } finally {
      live.close();
    }
    expect((await admin.del(`/api/v1/users/${userId}`)).status).toBe(200);
    expect((await admin.get(`/api/v1/users/${userId}`)).status).toBe(404);
  });
});
