// FAKE Modal: init of one fake container, run as `unshare -m -p -f [-n] -- node sandbox-init.mjs <json>`.
// The container's filesystem is an overlay: this host's / read-only below, the image (or sandbox)
// directory as the writable upper layer, so absolute paths (/workspace, /tmp) work as in a real
// image and every write lands in that directory (a snapshot is a copy of it). With a network
// namespace (sandboxes) loopback is private, so every sandbox may listen on the same port, as on
// Modal; the way in is the tunnel: per open port this process listens on a host-visible unix
// socket and pipes connections to 127.0.0.1:<port> inside.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';

const cfg = JSON.parse(process.argv[2] ?? '{}');
if (cfg.net) execFileSync('ip', ['link', 'set', 'lo', 'up']);
await Promise.all(
  cfg.ports.map(
    ({ socket, port }) =>
      new Promise((ok, fail) => {
        const server = createServer((conn) => {
          const up = createConnection({ host: '127.0.0.1', port });
          conn.pipe(up).pipe(conn);
          conn.on('error', () => up.destroy());
          up.on('error', () => conn.destroy());
        });
        server.once('error', fail);
        server.listen(socket, () => ok(undefined));
      }),
  ),
);
const merged = join(cfg.dir, 'merged');
for (const d of ['merged', 'work', 'upper']) mkdirSync(join(cfg.dir, d), { recursive: true });
execFileSync('mount', ['--make-rprivate', '/']);
execFileSync('mount', [
  '-t',
  'overlay',
  'overlay',
  '-o',
  `lowerdir=/,upperdir=${join(cfg.dir, 'upper')},workdir=${join(cfg.dir, 'work')}`,
  merged,
]);
execFileSync('mount', ['--rbind', '/dev', join(merged, 'dev')]);
execFileSync('mount', ['-t', 'proc', 'proc', join(merged, 'proc')]);
const [cmd, ...args] = cfg.argv;
const child = spawn(
  'chroot',
  [merged, 'sh', '-c', 'mkdir -p "$0" && cd "$0" && exec "$@"', cfg.workdir, cmd, ...args],
  { stdio: 'inherit', env: process.env },
);
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15)));
