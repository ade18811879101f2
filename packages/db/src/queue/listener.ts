import pgListen, { type Subscriber } from 'pg-listen';

// A CommonJS module whose function is `exports.default`: seen from ESM it is one level down.
const createSubscriber = pgListen.default;
import { NOTIFY_CHANNEL } from './sql.js';

export interface QueueLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
export const silentLogger: QueueLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

export interface ListenerOptions {
  url: string;
  /** Called on each nudge, and after every (re)connect since nudges may have been lost meanwhile. */
  onNudge: () => void;
  /** After each (re)connect, once LISTEN is in place. */
  onConnected?: () => void;
  logger?: QueueLogger;
  /** Shows in pg_stat_activity; tests find the connection by it. */
  applicationName?: string;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

/** Full jitter: anywhere between 0 and the exponential cap, so listeners do not reconnect in lockstep. */
export function reconnectDelayMs(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  return Math.round(random() * Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt)));
}

/**
 * The dedicated LISTEN connection (pg-listen). A nudge carries no data: it only says "look at
 * the table". pg-listen reconnects on its own (we give it a jittered backoff and no deadline);
 * the worker's slow poll covers whatever is missed while it is down.
 */
export class JobListener {
  private subscriber: Subscriber | undefined;
  private closing = false;
  connected = false;

  constructor(private readonly opts: ListenerOptions) {}

  async start(): Promise<void> {
    const log = this.opts.logger ?? silentLogger;
    const base = this.opts.backoffBaseMs ?? 100;
    const max = this.opts.backoffMaxMs ?? 5_000;
    const sub = createSubscriber(
      { connectionString: this.opts.url, application_name: this.opts.applicationName ?? 'berth-listen' },
      {
        retryInterval: (attempt: number) => reconnectDelayMs(attempt, base, max),
        retryLimit: Infinity,
        retryTimeout: 0,
        paranoidChecking: 30_000,
        parse: (s: string) => s,
      },
    );
    this.subscriber = sub;
    sub.notifications.on(NOTIFY_CHANNEL, () => this.opts.onNudge());
    sub.events.on('connected', () => {
      this.connected = true;
      if (this.closing) {
        // Reconnected while we were closing: pg-listen only ended the old client.
        sub.close().catch(() => undefined);
        return;
      }
      this.opts.onNudge();
      this.opts.onConnected?.();
    });
    sub.events.on('reconnect', (attempt: number) => {
      this.connected = false;
      log.warn({ attempt }, 'job listener reconnecting');
    });
    sub.events.on('error', (err: Error) => {
      this.connected = false;
      log.error({ err }, 'job listener error');
    });
    await sub.connect();
    await sub.listenTo(NOTIFY_CHANNEL);
    this.opts.onConnected?.();
  }

  async close(): Promise<void> {
    this.closing = true;
    const sub = this.subscriber;
    this.subscriber = undefined;
    if (!sub) return;
    sub.notifications.removeAllListeners(NOTIFY_CHANNEL);
    await sub.close().catch(() => undefined);
  }
}
