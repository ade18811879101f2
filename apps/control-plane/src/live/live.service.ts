import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Server as HttpServer } from 'node:http';
import pgListen, { type Subscriber } from 'pg-listen';
import { Server, type Socket } from 'socket.io';
import { z } from 'zod';
import type { Config } from '../config.js';
import { CONFIG } from '../common/di.js';
import { AuthService } from '../accounts/auth.service.js';
import { SESSION_COOKIE, type AuthContext } from '../accounts/auth.types.js';

// pg-listen is CommonJS with its function on `exports.default`: seen from ESM it is one level down.
const createSubscriber = pgListen.default;

export const LIVE_CHANNEL = 'berth_live';

export const LiveChange = z.object({
  kind: z.enum(['environment', 'task']),
  id: z.string(),
  owner: z.string(),
  state: z.string(),
});
export type LiveChange = z.infer<typeof LiveChange>;

export const DATABASE_URL = Symbol('DATABASE_URL');

/** A session ended or a token was revoked somewhere: every replica re-checks its sockets. */
const Revoked = z.object({ kind: z.literal('revoked') });

/** Anything that names a task: its state changed, or a chunk of its output was stored. */
const TaskNotice = z.object({ kind: z.enum(['task', 'task_output']), id: z.string() });

export type ConnectionHandler = (socket: Socket, ctx: AuthContext) => void;

/**
 * socket.io namespace `/events`: each signed-in user joins a room of their own and receives
 * `change` events ({kind, id, state}) for their environments and tasks. Changes arrive through
 * Postgres NOTIFY, so every replica sees every change. Connections authenticate like the API
 * (session cookie or `auth: {token}`).
 */
@Injectable()
export class LiveService implements OnApplicationBootstrap, OnModuleDestroy {
  private io: Server | undefined;
  private subscriber: Subscriber | undefined;
  private readonly taskWatchers = new Map<string, Set<() => void>>();
  private readonly connectionHandlers: ConnectionHandler[] = [];
  private recheckTimer: NodeJS.Timeout | undefined;
  private rechecking: Promise<number> | undefined;
  private recheckAgain = false;

  constructor(
    @Inject(HttpAdapterHost) private readonly host: HttpAdapterHost,
    @Inject(AuthService) private readonly auth: AuthService,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(DATABASE_URL) private readonly databaseUrl: string,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const http = this.host.httpAdapter.getHttpServer() as HttpServer;
    // WebSocket only: long-polling spreads one client over many requests, which several replicas
    // behind a plain load balancer would split between them (it needs sticky sessions; this does not).
    this.io = new Server(http, {
      path: '/socket.io',
      serveClient: false,
      cors: { origin: false },
      transports: ['websocket'],
    });
    const nsp = this.io.of('/events');
    nsp.use((socket, next) => {
      this.authenticate(socket).then(
        (ctx) => {
          socket.data.auth = ctx;
          next();
        },
        (err: unknown) => next(new Error((err as Error).message || 'unauthorized')),
      );
    });
    nsp.on('connection', (socket) => {
      const ctx = socket.data.auth as AuthContext;
      void socket.join(`user:${ctx.userId}`);
      for (const h of this.connectionHandlers) h(socket, ctx);
      socket.emit('ready', { userId: ctx.userId });
    });

    this.subscriber = createSubscriber(
      { connectionString: this.databaseUrl, application_name: 'berth-live' },
      {
        retryLimit: Infinity,
        retryTimeout: 0,
        retryInterval: (n: number) => Math.round(Math.random() * Math.min(10_000, 100 * 2 ** n)),
        parse: (s: string) => s,
      },
    );
    this.subscriber.notifications.on(LIVE_CHANNEL, (payload: unknown) => {
      let json: unknown;
      try {
        json = JSON.parse(String(payload));
      } catch {
        return;
      }
      if (Revoked.safeParse(json).success) {
        void this.revalidate().catch(() => undefined);
        return;
      }
      const notice = TaskNotice.safeParse(json);
      if (notice.success) for (const w of [...(this.taskWatchers.get(notice.data.id) ?? [])]) w();
      const change = LiveChange.safeParse(json);
      if (!change.success) return;
      const parsed = change.data;
      nsp
        .to(`user:${parsed.owner}`)
        .emit('change', { kind: parsed.kind, id: parsed.id, state: parsed.state });
    });
    this.subscriber.events.on('error', () => undefined);
    await this.subscriber.connect();
    await this.subscriber.listenTo(LIVE_CHANNEL);
    // What no notice announces (a session or token expiring, a deleted user) is caught here.
    this.recheckTimer = setInterval(
      () => void this.revalidate().catch(() => undefined),
      this.config.liveRecheckSeconds * 1000,
    );
    this.recheckTimer.unref();
  }

  /**
   * Re-checks the credential of every socket on this replica and disconnects (after a `revoked`
   * event saying why) those whose session ended or token was revoked or expired, on the injected
   * clock. Returns how many were disconnected. Calls during a run make one more run after it.
   */
  async revalidate(): Promise<number> {
    if (this.rechecking) {
      this.recheckAgain = true;
      return this.rechecking;
    }
    const run = async (): Promise<number> => {
      let dropped = 0;
      do {
        this.recheckAgain = false;
        const sockets = [...(this.io?.of('/events').sockets.values() ?? [])];
        for (const socket of sockets) {
          const ctx = socket.data.auth as AuthContext | undefined;
          if (!ctx || socket.disconnected) continue;
          const ok = await this.auth.stillValid(ctx).catch(() => true); // a DB hiccup is not a logout
          if (ok) continue;
          socket.emit('revoked', {
            reason: ctx.via === 'session' ? 'your session has ended' : 'the token was revoked or expired',
          });
          socket.disconnect(true);
          dropped += 1;
        }
      } while (this.recheckAgain);
      return dropped;
    };
    this.rechecking = run().finally(() => (this.rechecking = undefined));
    return this.rechecking;
  }

  /**
   * Calls `fn` on every notice about the task (state change, output stored), from any replica.
   * Only a nudge: the caller re-reads through its own access checks. Returns the unsubscribe.
   */
  watchTask(taskId: string, fn: () => void): () => void {
    let set = this.taskWatchers.get(taskId);
    if (!set) this.taskWatchers.set(taskId, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0 && this.taskWatchers.get(taskId) === set) this.taskWatchers.delete(taskId);
    };
  }

  /** Other modules add their own events on `/events` (e.g. following a task's output). */
  onConnection(handler: ConnectionHandler): void {
    this.connectionHandlers.push(handler);
  }

  private async authenticate(socket: Socket): Promise<AuthContext> {
    const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
    if (typeof token === 'string' && token) return this.auth.authenticate(token, undefined);
    const cookieHeader = socket.handshake.headers.cookie;
    const origin = socket.handshake.headers.origin;
    // Cookies ride along cross-site; only the app's own origin may use them here.
    if (
      origin &&
      new URL(this.config.publicUrl).origin !== origin &&
      new URL(origin).host !== socket.handshake.headers.host
    )
      throw new Error('cross-site connection refused');
    const session = cookieHeader ? readCookie(cookieHeader, SESSION_COOKIE) : undefined;
    return this.auth.authenticate(undefined, session);
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.recheckTimer);
    await this.rechecking?.catch(() => undefined);
    const io = this.io;
    if (io) await new Promise<void>((resolve) => void io.close(() => resolve()));
    this.io = undefined;
    await this.subscriber?.close().catch(() => undefined);
    this.subscriber = undefined;
  }
}

function readCookie(header: string, name: string): string | undefined {
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return undefined;
}
