import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AddressInfo, Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  decodeFrame,
  encodePong,
  GatewayConfig,
  TerminalCloseCode,
  TerminalOp,
  type GatewayConfigInput,
  type GatewayHealth,
  type TerminalRole,
} from '@berth/protocol';
import { AuthError, createTokenVerifier, JtiCache } from './auth.js';
import { createExecApi, type ExecOptions } from './exec/exec-api.js';
import { authorizeBearer, bearer, sendJson } from './http.js';
import { createLogger, type Logger } from './log.js';
import { createPortRoutes } from './ports/routes.js';
import { SessionRegistry } from './sessions.js';
import { ShareGuard } from './shares.js';
import { createTracer } from './tracing.js';
import type { Attachment, Session, ShareBinding } from './session.js';
import { receiveDirect, sendBinary } from '@berth/terminal/node';

export const GATEWAY_VERSION = '0.1.0';
export const TERMINAL_PATH = '/terminal';

export interface GatewayOptions {
  /** Command for new sessions when the client names none (default: $SHELL or /bin/bash). */
  shell?: string[];
  logToStdout?: boolean;
  highWaterBytes?: number;
  lowWaterBytes?: number;
  /** Ping interval that finds silently dead connections. */
  heartbeatMs?: number;
  /** Task exec API limits (output kept on disk, stop grace). */
  exec?: ExecOptions;
}

export interface Gateway {
  port: number;
  sessions: SessionRegistry;
  close(): Promise<void>;
}

const MAX_FRAME_BYTES = 16 * 1024 * 1024;

class Refusal extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

interface Admission {
  session: Session;
  sub: string;
  role: TerminalRole;
  share: ShareBinding | undefined;
  resumeToken: string | undefined;
  offset: number | undefined;
}

function childEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('BERTH_GATEWAY_CONFIG')) continue;
    env[k] = v;
  }
  env.TERM = 'xterm-256color';
  env.COLORTERM = 'truecolor';
  return env;
}

function intParam(url: URL, name: string): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return undefined;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

export async function startGateway(
  input: GatewayConfigInput,
  options: GatewayOptions = {},
): Promise<Gateway> {
  const config = GatewayConfig.parse(input);
  const log: Logger = createLogger(config.dataDir, options.logToStdout ?? true);
  const verifier = createTokenVerifier(config);
  const exec = createExecApi(config, verifier, log, options.exec);
  const jtis = new JtiCache();
  const startedAt = Date.now();
  const highWaterBytes = options.highWaterBytes ?? 1024 * 1024;
  const sessions = new SessionRegistry({
    shell: options.shell ?? [process.env.SHELL || '/bin/bash'],
    cwd: config.workdir,
    env: childEnv(),
    ringBytes: config.terminal.ringBytes,
    idleTimeoutMs: config.terminal.idleTimeoutMs,
    highWaterBytes,
    lowWaterBytes: options.lowWaterBytes ?? Math.floor(highWaterBytes / 4),
  });
  sessions.on('ended', (s) => log.info('session ended', { sessionId: s.id, exit: s.exit }));
  const shares = new ShareGuard(sessions, verifier, log);

  async function admit(url: URL, req: IncomingMessage): Promise<Admission> {
    const ticket = url.searchParams.get('token') ?? bearer(req);
    const resume = url.searchParams.get('resume');
    const offset = intParam(url, 'offset');
    let sid = url.searchParams.get('sid') ?? undefined;
    let sub: string;
    let role: TerminalRole;
    let share: ShareBinding | undefined;
    if (ticket) {
      let claims;
      try {
        claims = await verifier.verify(ticket, 'terminal');
      } catch (err) {
        throw new Refusal(TerminalCloseCode.Unauthorized, (err as Error).message);
      }
      if (claims.jti && !jtis.use(claims.jti, claims.exp)) {
        throw new Refusal(TerminalCloseCode.Unauthorized, 'ticket already used');
      }
      if (claims.sid && sid && claims.sid !== sid)
        throw new Refusal(TerminalCloseCode.Forbidden, 'ticket is for another session');
      sid = sid ?? claims.sid;
      sub = claims.sub;
      role = claims.role ?? 'observer';
      share = claims.share ? { id: claims.share, exp: claims.share_exp } : undefined;
    } else if (resume && sid) {
      const ident = sessions.get(sid)?.resolveResumeToken(resume);
      if (!ident) throw new Refusal(TerminalCloseCode.Unauthorized, 'invalid resume token');
      ({ sub, role, share } = ident);
    } else {
      throw new Refusal(TerminalCloseCode.Unauthorized, 'missing token');
    }
    const ended = shares.refusal(share);
    if (ended) throw new Refusal(ended.code, ended.reason);
    if (!config.terminal.interactive) {
      throw new Refusal(
        TerminalCloseCode.Disabled,
        'interactive terminals are turned off on this environment by the operator',
      );
    }
    let session: Session | undefined;
    if (sid) {
      session = sessions.get(sid);
      if (!session) throw new Refusal(TerminalCloseCode.SessionNotFound, `no terminal session ${sid}`);
    } else {
      if (role !== 'driver')
        throw new Refusal(TerminalCloseCode.Forbidden, 'an observer can only join an existing session');
      let command: string[] | undefined;
      const cmd = url.searchParams.get('cmd');
      if (cmd) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(cmd);
        } catch {
          parsed = undefined;
        }
        if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) {
          throw new Refusal(TerminalCloseCode.Forbidden, 'cmd must be a JSON array of strings');
        }
        command = parsed as string[];
      }
      const cols = Math.min(intParam(url, 'cols') || 80, 1000);
      const rows = Math.min(intParam(url, 'rows') || 24, 1000);
      session = await sessions.create({ cols, rows, command });
      log.info('session started', { sessionId: session.id, pid: session.pid, command: session.command, sub });
    }
    const resumeToken = ticket ? undefined : (resume ?? undefined);
    return { session, sub, role, share, resumeToken, offset };
  }

  function onConnection(ws: WebSocket, adm: Admission): void {
    const { session } = adm;
    // The share may have been revoked while the upgrade completed.
    const ended = shares.refusal(adm.share);
    if (ended) return ws.close(ended.code, ended.reason);
    const client: Attachment = {
      id: randomUUID(),
      sub: adm.sub,
      role: adm.role,
      share: adm.share,
      connectedAt: new Date(),
      resumeToken:
        adm.resumeToken ?? session.issueResumeToken({ sub: adm.sub, role: adm.role, share: adm.share }),
      mode: 'live',
      sentOffset: 0,
      ackedOffset: 0,
      send: (frame) => {
        if (ws.readyState === ws.OPEN) sendBinary(ws, frame);
      },
      close: (code, reason) => ws.close(code, reason),
    };
    receiveDirect(ws);
    const unwatch = shares.watch(client);
    let alive = true;
    ws.on('pong', () => (alive = true));
    const heartbeat = setInterval(() => {
      if (!alive) return ws.terminate();
      alive = false;
      ws.ping();
    }, options.heartbeatMs ?? 20_000);
    ws.on('message', (data: Buffer, isBinary) => {
      if (!isBinary) return;
      let frame;
      try {
        frame = decodeFrame(data);
      } catch {
        return ws.close(1003, 'bad frame');
      }
      switch (frame.op) {
        case TerminalOp.Input:
          return session.input(client, frame.data);
        case TerminalOp.Resize:
          return session.resize(client, frame.cols, frame.rows);
        case TerminalOp.Ack:
          return session.ack(client, frame.offset);
        case TerminalOp.Ping:
          return client.send(encodePong(frame.payload));
        default:
          return;
      }
    });
    ws.on('close', () => {
      clearInterval(heartbeat);
      unwatch();
      session.detach(client);
      log.info('client detached', { sessionId: session.id, clientId: client.id });
    });
    ws.on('error', () => ws.terminate());
    log.info('client attached', {
      sessionId: session.id,
      clientId: client.id,
      sub: client.sub,
      role: client.role,
      offset: adm.offset,
    });
    session.attach(client, adm.offset);
  }

  async function listSessions(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // The list names every session and its command: only for the owner's tokens, not for a
    // ticket to one session (an observer someone shared a session with holds one of those).
    const claims = await authorizeBearer(req, res, verifier, 'terminal', (c) => {
      if (c.role === 'observer' || c.sid)
        throw new AuthError('this ticket is for one terminal session; it cannot list them');
    });
    if (!claims) return;
    sendJson(res, 200, { sessions: sessions.list().map((s) => s.describe()) });
  }

  const server = createServer((req, res) => {
    if (ports.handleRequest(req, res)) return;
    const url = new URL(req.url ?? '/', 'http://gateway');
    if (exec.handle(req, res, url)) return;
    if (shares.handle(req, res, url)) return;
    if (req.method === 'GET' && url.pathname === '/healthz') {
      const body: GatewayHealth = {
        ok: true,
        environmentId: config.environmentId,
        version: GATEWAY_VERSION,
        uptimeMs: Date.now() - startedAt,
      };
      return sendJson(res, 200, body);
    }
    if (req.method === 'GET' && url.pathname === '/sessions') {
      listSessions(req, res).catch((err: unknown) =>
        sendJson(res, 500, { error: { code: 'internal', message: String(err) } }),
      );
      return;
    }
    sendJson(res, 404, { error: { code: 'not_found', message: `no route ${req.method} ${url.pathname}` } });
  });
  const ports = createPortRoutes({ server, config, verifier, jtis, log });
  const tracer = config.otlpEndpoint
    ? createTracer({
        endpoint: config.otlpEndpoint,
        environmentId: config.environmentId,
        version: GATEWAY_VERSION,
        onError: (err) => log.warn('span export failed', { error: err.message }),
      })
    : undefined;
  if (tracer) {
    server.prependListener('request', (req, res) => tracer.onRequest(req, res));
    server.prependListener('upgrade', (req: IncomingMessage, socket: Duplex) =>
      tracer.onUpgrade(req, socket),
    );
  }

  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    (socket as Socket).setNoDelay(true);
    if (ports.handleUpgrade(req, socket, head)) return;
    const url = new URL(req.url ?? '/', 'http://gateway');
    if (url.pathname !== TERMINAL_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    admit(url, req).then(
      (adm) => wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, adm)),
      (err: unknown) => {
        const refusal = err instanceof Refusal ? err : new Refusal(1011, 'internal error');
        log.warn('terminal refused', { code: refusal.code, reason: refusal.message });
        // Completing the upgrade only to close it lets a browser read the reason; no frame is sent.
        wss.handleUpgrade(req, socket, head, (ws) => ws.close(refusal.code, refusal.message.slice(0, 120)));
      },
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  log.info('gateway listening', { port, environmentId: config.environmentId });

  let closing: Promise<void> | undefined;
  return {
    port,
    sessions,
    close: () =>
      (closing ??= (async () => {
        for (const ws of wss.clients) ws.close(TerminalCloseCode.GoingAway, 'gateway shutting down');
        const execClosed = exec.close();
        await sessions.closeAll('gateway shutting down');
        ports.close();
        for (const ws of wss.clients) ws.terminate();
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await execClosed;
        await tracer?.shutdown();
        await log.close();
      })()),
  };
}
