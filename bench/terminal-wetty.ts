import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { withTimeout, type Conn, type Target } from './terminal-conn.js';

const WETTY_VERSION = '3.2.0';
const log = (line: string): void => void process.stderr.write(line + '\n');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function installWetty(peersDir: string): void {
  const main = join(peersDir, 'node_modules/wetty/build/main.js');
  if (existsSync(main)) return;
  mkdirSync(peersDir, { recursive: true });
  // Never committed, never part of the root install.
  writeFileSync(join(peersDir, '.gitignore'), '*\n');
  log(`installing wetty@${WETTY_VERSION} into bench/.peers …`);
  const r = spawnSync(
    'npm',
    ['install', '--no-audit', '--no-fund', '--no-save', '--prefix', peersDir, `wetty@${WETTY_VERSION}`],
    { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 600_000 },
  );
  if (r.status !== 0)
    throw new Error(
      `npm install wetty@${WETTY_VERSION} failed: ${(r.stderr || r.stdout || String(r.error)).trim().split('\n').slice(-3).join(' | ')}`,
    );
}

/**
 * wetty (the peer): installed at run time into `peersDir`, never part of the root install; it runs
 * the scripts from `cwd`.
 */
export async function wettyTarget(peersDir: string, cwd: string): Promise<Target> {
  installWetty(peersDir);
  const port = await freePort();
  // As root with the default ssh host "localhost", wetty runs the command itself (no ssh).
  const child: ChildProcess = spawn(
    process.execPath,
    [
      join(peersDir, 'node_modules/wetty/build/main.js'),
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--command',
      '/bin/sh',
    ],
    {
      cwd,
      env: { ...process.env, NODE_ENV: 'production' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  child.stdout?.resume();
  const requirePeer = createRequire(join(peersDir, 'package.json'));
  const { io } = requirePeer('socket.io-client') as typeof import('socket.io-client');
  // Wait until it accepts HTTP.
  await withTimeout(
    (async () => {
      for (;;) {
        if (child.exitCode !== null)
          throw new Error(`wetty exited (${child.exitCode}): ${stderr.trim().slice(-500)}`);
        try {
          await fetch(`http://127.0.0.1:${port}/`);
          return;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    })(),
    'wetty start',
    30_000,
  );
  const sockets = new Set<ReturnType<typeof io>>();
  return {
    name: 'wetty',
    async open(script) {
      const socket = io(`http://127.0.0.1:${port}`, {
        path: '/socket.io',
        transports: ['websocket'],
        forceNew: true,
        reconnection: false,
      });
      sockets.add(socket);
      const fns: ((chunk: Buffer | string) => void)[] = [];
      // wetty's own flow control: its PTY pauses past 2 MiB unless the client commits.
      let uncommitted = 0;
      socket.on('data', (data: string) => {
        uncommitted += data.length;
        if (uncommitted >= 262_144) {
          socket.emit('commit', uncommitted);
          uncommitted = 0;
        }
        for (const fn of fns) fn(data);
      });
      await withTimeout(
        new Promise<void>((resolve) => socket.once('login', () => resolve())),
        'wetty login',
        30_000,
      );
      socket.emit('resize', { cols: 80, rows: 24 });
      const conn: Conn = {
        write: (data) => void socket.emit('input', data),
        onData: (fn) => void fns.push(fn),
        close: () => {
          sockets.delete(socket);
          socket.close();
        },
      };
      conn.write(`exec sh ${script}\r`);
      return conn;
    },
    async close() {
      for (const s of sockets) s.close();
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}
