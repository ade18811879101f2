import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeProvider } from '@berth/providers';
import { ADMIN, Client, startTestServer, type TestServer } from '../testing/server.js';

let s: TestServer;
let admin: Client;

beforeAll(async () => {
  s = await startTestServer({ BERTH_PROVIDERS: 'fake' }, { providers: { fake: new FakeProvider() } });
  admin = new Client(s.url);
  await admin.login(ADMIN.email, ADMIN.password);
});
afterAll(async () => {
  await s.stop();
});

const create = (url: string) => admin.post('/api/v1/environments', { repo: { url } });

describe('repository URLs', () => {
  it.each([
    ['https://github.com/acme/app.git'],
    ['git@github.com:acme/app.git'],
    ['ssh://git@git.example.com:2222/acme/app.git'],
  ])('accepts %s', async (url) => {
    const r = await create(url);
    expect(r.status).toBe(201);
  });

  it.each([
    [
      'https://x-access-token:ghp_secret@github.com/acme/app.git',
      /must not contain a user name, token or password/,
    ],
    ['https://ghp_secret@github.com/acme/app.git', /must not contain a user name, token or password/],
    ['ssh://git:hunter2@git.example.com/acme/app.git', /must not contain a user name, token or password/],
    ['git:hunter2@github.com:acme/app.git', /must not contain a password/],
    ['http://github.com/acme/app.git', /http URLs are not allowed/],
    ['file:///etc/shadow-repo', /file URLs are not allowed/],
    ['/srv/git/app.git', /is not a URL/],
    ['--upload-pack=touch /tmp/pwned', /must not start with "-"/],
  ])('refuses %s with a 400 and a hint to use secrets', async (url, message) => {
    const before = (await admin.get('/api/v1/environments?all=true')).json.items.length;
    const r = await create(url);
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('invalid_repo_url');
    expect(r.json.error.message).toMatch(message);
    expect(r.json.error.hint).toMatch(/secret/);
    // The URL with its credential is not echoed back, and nothing was created.
    expect(r.text).not.toContain('hunter2');
    expect(r.text).not.toContain('ghp_secret');
    expect((await admin.get('/api/v1/environments?all=true')).json.items.length).toBe(before);
  });
});

describe('Vault address', () => {
  it('refuses a user name or password in the URL', async () => {
    const r = await admin.req('PUT', '/api/v1/secrets/settings', {
      vaultAddress: 'https://admin:s3cret@vault.example.com:8200',
      role: 'berth',
      audience: 'vault',
    });
    expect(r.status).toBe(400);
    expect(r.text).toMatch(/must not contain a user name or password/);
    expect(r.text).not.toContain('s3cret');
  });
});
