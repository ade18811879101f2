import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createTestDatabase, type TestDatabase } from '@berth/db/testing';
import { pino } from 'pino';
import { loadConfig, type Config } from '../config.js';
import { startServer, type RunningServer } from '../server.js';
import type { Clock } from '../common/di.js';
import type { EnvironmentProvider } from '@berth/providers';

export const ADMIN = { email: 'admin@example.com', password: 'correct horse battery' };

export interface TestServer extends RunningServer {
  db: TestDatabase;
  config: Config;
  dataDir: string;
  /** Every log line the server wrote, for assertions that secrets never reach the log. */
  logs: string[];
  stop(): Promise<void>;
}

/** A real control plane on a free port, against its own fresh database. */
export async function startTestServer(
  env: Record<string, string> = {},
  opts: { clock?: Clock; admin?: boolean; providers?: Record<string, EnvironmentProvider> } = {},
): Promise<TestServer> {
  const db = await createTestDatabase();
  const dataDir = await mkdtemp(join(tmpdir(), 'berth-cp-'));
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const config = loadConfig({
    HOME: dataDir,
    BERTH_DATA_DIR: dataDir,
    DATABASE_URL: db.url,
    BERTH_PORT: '0',
    BERTH_LOG_LEVEL: 'info',
    ...(opts.admin === false ? {} : { BERTH_ADMIN_EMAIL: ADMIN.email, BERTH_ADMIN_PASSWORD: ADMIN.password }),
    ...env,
  });
  const server = await startServer(config, {
    logger: pino({ level: 'info' }, sink),
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.providers ? { providers: opts.providers } : {}),
    announce: (l) => logs.push(l),
  });
  return {
    ...server,
    db,
    config,
    dataDir,
    logs,
    async stop() {
      await server.close();
      // Leak check: a local environment a test did not destroy leaves its gateway running.
      const leaked = killProcessesUnder(dataDir);
      if (leaked.length)
        console.warn(
          `startTestServer: killed ${leaked.length} leftover process(es) of ${dataDir}: ${leaked.join(', ')}`,
        );
      await db.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * SIGKILLs every process whose command line names `dir` (gateways of local environments, which
 * outlive their control plane on purpose), with its process group.
 */
export function killProcessesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(dir)) pids.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  for (const pid of pids) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // not a group leader, or already gone
      }
    }
  }
  return pids;
}

/** A small client that keeps cookies like a browser and speaks JSON. */
export class Client {
  cookie?: string;
  constructor(
    readonly base: string,
    public token?: string,
  ) {}

  async req(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const h: Record<string, string> = { ...headers };
    if (body !== undefined && typeof body !== 'string') h['content-type'] = 'application/json';
    if (typeof body === 'string') h['content-type'] ??= 'application/json';
    if (this.token) h.authorization = `Bearer ${this.token}`;
    if (this.cookie) h.cookie = this.cookie;
    const res = await fetch(this.base + path, {
      method,
      headers: h,
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const set = res.headers.getSetCookie();
    for (const c of set) if (c.startsWith('berth_session=')) this.cookie = c.split(';')[0];
    const text = await res.text();
    let json: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- test convenience
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text, headers: res.headers };
  }
  get = (p: string) => this.req('GET', p);
  post = (p: string, b?: unknown, h?: Record<string, string>) => this.req('POST', p, b ?? {}, h);
  patch = (p: string, b?: unknown) => this.req('PATCH', p, b ?? {});
  del = (p: string) => this.req('DELETE', p);

  async login(email: string, password: string) {
    const r = await this.post('/api/v1/auth/login', { email, password });
    if (r.status !== 200) throw new Error(`login failed: ${r.status} ${r.text}`);
    return r;
  }
}

/** Signs in as the admin and creates a member with its own token-based client. */
export async function memberClient(s: TestServer, admin: Client, email: string): Promise<Client> {
  const pw = 'member password 1';
  const r = await admin.post('/api/v1/users', { email, password: pw, role: 'member' });
  if (r.status !== 201) throw new Error(`create user failed: ${r.status} ${r.text}`);
  const c = new Client(s.url);
  await c.login(email, pw);
  const t = await c.post('/api/v1/tokens', { name: 'test' });
  return new Client(s.url, t.json.token as string);
}
