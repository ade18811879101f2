import { io, type Socket } from 'socket.io-client';
import type { Client } from './server.js';

/**
 * Waits for a resource to reach a state, driven by the live events the server pushes (no
 * polling loop): re-reads the resource after each change notice, and once at the start.
 */
export class LiveWaiter {
  private readonly socket: Socket;
  private readonly listeners = new Set<() => void>();

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('change', () => {
      for (const l of [...this.listeners]) l();
    });
  }

  static async connect(client: Client): Promise<LiveWaiter> {
    const socket = io(`${client.base}/events`, {
      transports: ['websocket'],
      reconnection: false,
      ...(client.token
        ? { auth: { token: client.token } }
        : { extraHeaders: { cookie: client.cookie ?? '' } }),
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('ready', () => resolve());
      socket.once('connect_error', reject);
    });
    return new LiveWaiter(socket);
  }

  /** Resolves with the JSON once `done(json)` holds; re-checked on every change notice. */
  until<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let running = false;
      let again = false;
      const check = () => {
        if (running) {
          again = true;
          return;
        }
        running = true;
        read().then(
          (v) => {
            running = false;
            if (done(v)) {
              this.listeners.delete(check);
              resolve(v);
            } else if (again) {
              again = false;
              check();
            }
          },
          (err: unknown) => {
            this.listeners.delete(check);
            reject(err as Error);
          },
        );
      };
      this.listeners.add(check);
      check();
    });
  }

  close(): void {
    this.socket.close();
  }
}
