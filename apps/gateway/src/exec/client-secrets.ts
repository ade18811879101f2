import { z } from 'zod';

/**
 * What `berth run` sends straight to the gateway for one launch: a Vault response-wrapping
 * token (`--vault-wrapped-token`) or values read from a local file (`--secrets-file`). Either
 * way it never passes through the control plane, so it cannot reach its database or logs.
 */
export const ClientSecretsBody = z.union([
  z.strictObject({ wrappedToken: z.string().min(1).max(4096) }),
  z.strictObject({
    values: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/), z.string().max(64 * 1024))
      .refine((v) => Object.keys(v).length > 0 && Object.keys(v).length <= 200, {
        message: 'between 1 and 200 values',
      }),
  }),
]);
export type ClientSecrets = z.infer<typeof ClientSecretsBody>;

/** How long sent secrets wait for their task's start before they are dropped. */
const HOLD_MS = 10 * 60_000;

interface Held {
  secrets?: ClientSecrets;
  /** Taken already: the id stays known until its hold time ends, so it cannot be reused. */
  taken: boolean;
  timer: NodeJS.Timeout;
  waiters: Array<(s: ClientSecrets | undefined) => void>;
}

/**
 * Holds client-sent secrets in memory (never on disk) until the start of the launch they were
 * sent for takes them, once. A start may arrive before or after them; it waits a bounded time.
 */
export class ClientSecretsStore {
  private readonly held = new Map<string, Held>();

  private entry(id: string): Held {
    let h = this.held.get(id);
    if (!h) {
      h = { taken: false, timer: setTimeout(() => this.drop(id), HOLD_MS).unref(), waiters: [] };
      this.held.set(id, h);
    }
    return h;
  }

  private drop(id: string): void {
    const h = this.held.get(id);
    if (!h) return;
    clearTimeout(h.timer);
    this.held.delete(id);
    for (const w of h.waiters) w(undefined);
  }

  /** False when secrets were sent for this launch already (a launch id is single use). */
  put(id: string, secrets: ClientSecrets): boolean {
    const h = this.entry(id);
    if (h.secrets || h.taken) return false;
    const waiter = h.waiters.shift();
    if (waiter) {
      h.taken = true;
      waiter(secrets);
    } else h.secrets = secrets;
    return true;
  }

  /** The launch's secrets, removed from memory; undefined when none came within `waitMs`. */
  take(id: string, waitMs: number): Promise<ClientSecrets | undefined> {
    const h = this.entry(id);
    if (h.taken) return Promise.resolve(undefined);
    if (h.secrets) {
      const s = h.secrets;
      h.secrets = undefined;
      h.taken = true;
      return Promise.resolve(s);
    }
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        h.waiters = h.waiters.filter((w) => w !== done);
        resolve(undefined);
      }, waitMs);
      const done = (s: ClientSecrets | undefined) => {
        clearTimeout(t);
        resolve(s);
      };
      h.waiters.push(done);
    });
  }

  close(): void {
    for (const id of [...this.held.keys()]) this.drop(id);
  }
}
