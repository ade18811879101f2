import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, startTestServer, type TestServer } from '../../apps/control-plane/src/testing/server.js';
import { runCli } from '../helpers/cli.js';

let s: TestServer;
let home: string;
let env: Record<string, string>;

beforeAll(async () => {
  s = await startTestServer();
  home = await mkdtemp(join(tmpdir(), 'berth-cli-'));
  env = { HOME: home };
});
afterAll(async () => {
  await s.stop();
  await rm(home, { recursive: true, force: true });
});

describe('berth login / whoami / token', () => {
  it('login stores a token in ~/.config/berth/config.json with mode 0600', async () => {
    const r = await runCli(
      ['login', '--url', s.url, '--email', ADMIN.email, '--password-stdin'],
      env,
      ADMIN.password + '\n',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Signed in to ${s.url} as ${ADMIN.email}`);
    const path = join(home, '.config', 'berth', 'config.json');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const cfg = JSON.parse(await readFile(path, 'utf8'));
    expect(cfg.token).toMatch(/^berth_pat_/);
    const who = await runCli(['whoami', '--json'], env);
    expect(who.code).toBe(0);
    expect(JSON.parse(who.stdout)).toMatchObject({ url: s.url, user: { email: ADMIN.email }, via: 'token' });
  });

  it('a wrong password exits non-zero with the server’s hint', async () => {
    const r = await runCli(
      ['login', '--url', s.url, '--email', ADMIN.email, '--password-stdin'],
      { HOME: home + '-x' },
      'wrong\n',
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/error: wrong email or password/);
    expect(r.stderr).toMatch(/hint: /);
  });

  it('token create | ls | rm, with --json', async () => {
    const c = await runCli(['token', 'create', 'deploy', '--expires-in-days', '5', '--json'], env);
    expect(c.code).toBe(0);
    const created = JSON.parse(c.stdout);
    expect(created.token).toMatch(/^berth_pat_/);
    const ls = await runCli(['token', 'ls', '--json'], env);
    const listed = JSON.parse(ls.stdout) as Array<{ id: string; name: string }>;
    expect(listed.find((t) => t.id === created.id)?.name).toBe('deploy');
    expect(ls.stdout).not.toContain(created.token);
    const table = await runCli(['token', 'ls'], env);
    expect(table.stdout).toMatch(/^ID\s+NAME\s+PREFIX/);
    expect(table.stdout).toContain('deploy');

    // BERTH_URL + BERTH_TOKEN win over the config file.
    const viaEnv = await runCli(['whoami', '--json'], {
      ...env,
      BERTH_URL: s.url,
      BERTH_TOKEN: created.token,
    });
    expect(JSON.parse(viaEnv.stdout).tokenId).toBe(created.id);

    const rm1 = await runCli(['token', 'rm', created.id], env);
    expect(rm1.code).toBe(0);
    const again = await runCli(['whoami'], { ...env, BERTH_URL: s.url, BERTH_TOKEN: created.token });
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/revoked/);
    const rm2 = await runCli(['token', 'rm', created.id], env);
    expect(rm2.code).toBe(4);
  });

  it('without a login, commands say how to sign in', async () => {
    const r = await runCli(['whoami'], { HOME: home + '-none' });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/hint: run `berth login`/);
  });

  it('an unreachable server is a clear error', async () => {
    const r = await runCli(['whoami'], { HOME: home, BERTH_URL: 'http://127.0.0.1:9', BERTH_TOKEN: 'x' });
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/cannot reach Berth at http:\/\/127.0.0.1:9/);
  });

  it('usage errors exit 2', async () => {
    const r = await runCli(['token', 'create'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing required argument/);
  });
});

describe('berth secrets', () => {
  it('config, add, show, rm — references only', async () => {
    const c = await runCli(
      [
        'secrets',
        'config',
        '--vault-address',
        'https://vault.example.com',
        '--role',
        'berth',
        '--audience',
        'vault',
      ],
      env,
    );
    expect(c.code).toBe(0);
    expect(c.stdout).toContain('Vault settings saved');
    const a = await runCli(
      ['secrets', 'add', 'NPM_TOKEN', '--path', 'users/admin/npm', '--key', 'token', '--json'],
      env,
    );
    expect(a.code).toBe(0);
    const ref = JSON.parse(a.stdout);
    const show = await runCli(['secrets', 'show', '--json'], env);
    expect(JSON.parse(show.stdout)).toMatchObject({
      settings: { vaultAddress: 'https://vault.example.com' },
      refs: [{ env: 'NPM_TOKEN' }],
    });
    const bad = await runCli(['secrets', 'add', 'not valid', '--path', 'p', '--key', 'k'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/environment variable name/);
    expect((await runCli(['secrets', 'rm', ref.id], env)).code).toBe(0);
  });

  it('config --ca-cert sends the PEM of a private CA; a file that is not one is refused; unset forgets the settings', async () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIBdummyCAcertificate\n-----END CERTIFICATE-----\n';
    const good = join(home, 'ca.pem');
    const bad = join(home, 'key.pem');
    await writeFile(good, pem);
    await writeFile(bad, 'not a certificate\n');
    const base = [
      'secrets',
      'config',
      '--vault-address',
      'https://vault.corp',
      '--role',
      'berth',
      '--audience',
      'v',
    ];
    const refused = await runCli([...base, '--ca-cert', bad], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/is not a PEM certificate/);
    const missing = await runCli([...base, '--ca-cert', join(home, 'nope.pem')], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read --ca-cert/);
    expect((await runCli([...base, '--ca-cert', good], env)).code).toBe(0);
    const show = await runCli(['secrets', 'show', '--json'], env);
    expect(JSON.parse(show.stdout).settings).toMatchObject({
      vaultAddress: 'https://vault.corp',
      caCert: pem,
    });
    const unset = await runCli(['secrets', 'unset'], env);
    expect(unset).toMatchObject({ code: 0, stdout: 'Vault settings removed\n' });
    expect(JSON.parse((await runCli(['secrets', 'show', '--json'], env)).stdout).settings).toBeNull();
  });
});
