import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Command } from 'commander';
import { WebSocket } from 'ws';
import { TCP_EOF_MESSAGE, type PortForwardTicket } from '@berth/protocol';
import { api, type ApiTarget } from '../api.js';
import type { Ctx } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { resolveEnvironment } from './env.js';
import { parsePort } from './ports.js';

const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;
/** Tickets are accepted for 60 s after issue; a fresh one is fetched well before that. */
const TICKET_REUSE_MS = 40_000;

export interface Mapping {
  host: string;
  local: number;
  remote: number;
}

/** `3000`, `8080:3000`, `0:3000` (any free local port) or `127.0.0.1:8080:3000`. */
export function parseMapping(raw: string): Mapping {
  const parts = raw.split(':');
  const remote = parsePort(parts.at(-1) ?? '', 'remote port');
  if (parts.length === 1) return { host: '127.0.0.1', local: remote, remote };
  const localRaw = parts.at(-2) ?? '';
  const local = localRaw === '0' ? 0 : parsePort(localRaw, 'local port');
  if (parts.length === 2) return { host: '127.0.0.1', local, remote };
  if (parts.length === 3 && parts[0]) return { host: parts[0], local, remote };
  throw new CliError(`cannot read ${raw}`, 'use LOCAL:REMOTE, e.g. 8080:3000', EXIT.usage);
}

/**
 * One local connection over one WebSocket to the gateway, which dials 127.0.0.1:REMOTE inside
 * the environment. Binary frames are bytes, a text `eof` is a half-close. Back-pressure both
 * ways: the local socket pauses while the WebSocket has >1 MiB unsent; the WebSocket stops
 * reading while the local socket cannot take more.
 */
function carry(local: Socket, ws: WebSocket, onError: (msg: string) => void): void {
  local.pause();
  let localPaused = true;
  const drained = () => {
    if (localPaused && ws.bufferedAmount < LOW_WATER && ws.readyState === ws.OPEN) {
      localPaused = false;
      local.resume();
    }
  };
  ws.once('open', drained);
  local.on('data', (chunk: Buffer) => {
    ws.send(chunk, { binary: true }, drained);
    if (!localPaused && ws.bufferedAmount > HIGH_WATER) {
      localPaused = true;
      local.pause();
    }
  });
  local.on('end', () => {
    if (ws.readyState === ws.OPEN) ws.send(TCP_EOF_MESSAGE);
  });
  local.on('error', () => ws.terminate());
  local.on('close', () => {
    if (ws.readyState === ws.OPEN) ws.close(1000, 'closed');
    else if (ws.readyState === ws.CONNECTING) ws.terminate();
  });
  ws.on('message', (data: Buffer, isBinary) => {
    if (!isBinary) {
      if (data.toString() === TCP_EOF_MESSAGE) local.end();
      return;
    }
    if (!local.write(data)) {
      ws.pause();
      local.once('drain', () => ws.resume());
    }
  });
  ws.on('close', (code, reason) => {
    if (code !== 1000) {
      if (code !== 1005 && code !== 1006)
        onError(`connection closed by the gateway (${code} ${reason.toString()})`);
      return void local.destroy();
    }
    if (!local.writableEnded) local.end();
  });
  ws.on('error', (err) => {
    onError(err.message);
    local.destroy();
  });
}

export interface Forwarder {
  /** Local ports actually bound (0 in a mapping picks a free one). */
  ports: number[];
  close(): Promise<void>;
}

export async function startForwarding(
  target: ApiTarget,
  env: string,
  mappings: Mapping[],
  log: (line: string) => void,
): Promise<Forwarder> {
  const tickets = new Map<number, { at: number; p: Promise<PortForwardTicket> }>();
  const ticket = (remote: number) => {
    const cached = tickets.get(remote);
    if (cached && Date.now() - cached.at < TICKET_REUSE_MS) return cached.p;
    const p = api<PortForwardTicket>(
      target,
      'POST',
      `/api/v1/environments/${encodeURIComponent(env)}/ports/${remote}/forward`,
      {},
    ).then((r) => r.data);
    tickets.set(remote, { at: Date.now(), p });
    p.catch(() => tickets.delete(remote));
    return p;
  };
  const sockets = new Set<WebSocket>();
  const locals = new Set<Socket>();
  const bridged = new WeakSet<Socket>();
  const servers: Server[] = [];
  let stopping = false;
  const ports: number[] = [];
  try {
    for (const m of mappings) {
      await ticket(m.remote); // fail fast: a stopped environment or a foreign one is an error now
      const server = createServer({ allowHalfOpen: true }, (local) => {
        local.setNoDelay(true);
        locals.add(local);
        local.once('close', () => locals.delete(local));
        // While stopping, a connection is done once what the environment sent has been flushed.
        local.on('finish', () => stopping && local.destroy());
        ticket(m.remote).then(
          (t) => {
            if (local.destroyed || stopping) return void local.destroy();
            const ws = new WebSocket(t.url, {
              headers: { authorization: `Bearer ${t.token}` },
              perMessageDeflate: false,
            });
            sockets.add(ws);
            bridged.add(local);
            ws.once('close', () => sockets.delete(ws));
            carry(local, ws, (msg) => log(`port ${m.remote}: ${msg}`));
          },
          (err: unknown) => {
            log(`port ${m.remote}: ${(err as Error).message}`);
            local.destroy();
          },
        );
      });
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(m.local, m.host, () => resolve());
      });
      const bound = (server.address() as AddressInfo).port;
      ports.push(bound);
      log(`forwarding ${m.host}:${bound} -> ${m.remote}`);
    }
  } catch (err) {
    for (const s of servers) s.close();
    if (err instanceof CliError) throw err;
    throw new CliError(
      `cannot listen: ${(err as Error).message}`,
      'pick another local port (LOCAL:REMOTE)',
      EXIT.error,
    );
  }
  return {
    ports,
    async close() {
      stopping = true;
      // net.Server#close waits for open connections, so end them: each WebSocket closes cleanly
      // (its local socket then gets what was in flight, an end, and is destroyed once flushed).
      const closed = Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      for (const ws of sockets) ws.close(1000, 'port-forward stopped');
      for (const l of locals) if (l.writableFinished || !bridged.has(l)) l.destroy();
      await closed;
    },
  };
}

export function portForwardCommand(program: Command, ctx: Ctx): void {
  program
    .command('port-forward <env> <mappings...>')
    .summary('forward local TCP ports to ports inside an environment')
    .description(
      'Listens on 127.0.0.1:LOCAL and carries each connection over a WebSocket to 127.0.0.1:REMOTE in the\n' +
        'environment, through its gateway. MAPPING is REMOTE, LOCAL:REMOTE (LOCAL 0 picks a free port) or\n' +
        'ADDRESS:LOCAL:REMOTE. Runs until interrupted (Ctrl-C).',
    )
    .action(async (envArg: string, raw: string[]) => {
      const mappings = raw.map(parseMapping);
      const target = await ctx.target();
      const env = await resolveEnvironment(target, envArg);
      const fwd = await startForwarding(target, env, mappings, (l) => process.stderr.write(`${l}\n`));
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void fwd.close().then(resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
