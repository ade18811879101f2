import { randomBytes } from 'node:crypto';
import type { EnvironmentInfo, EnvironmentSpec } from '@berth/protocol';
import type { EnvironmentProvider } from './types.js';

export interface WarmPoolOptions {
  provider: EnvironmentProvider;
  /** How many ready environments to keep. */
  size: number;
  /** Everything but the id; pool members are created from it (same image, limits, owner). */
  template: Omit<EnvironmentSpec, 'id'>;
  idPrefix?: string;
  /** Member ids (default `<idPrefix>-<random>`); the control plane uses UUIDs so a member can become a row. */
  newId?: () => string;
  /** Called when a background refill fails (the pool stays smaller until the next fill). */
  onError?: (err: unknown) => void;
}

export interface Claim {
  /** The id the caller asked for. */
  id: string;
  /** The provider-side id of the environment that serves it; keep it with the environment record. */
  backingId: string;
  info: EnvironmentInfo;
}

/**
 * N pre-started environments for one image. `claim` hands one out at once and maps the new
 * environment id to it (a running gateway cannot change its own id, so it is mapped, not renamed).
 * The map lives in memory: the control plane persists `backingId` on its record.
 */
export class WarmPool {
  private readonly ready: string[] = [];
  private readonly claimed = new Map<string, string>();
  private filling?: Promise<void>;

  constructor(private readonly opts: WarmPoolOptions) {}

  get available(): number {
    return this.ready.length;
  }

  /** Creates members until `size` are ready; concurrent calls share one fill. */
  fill(): Promise<void> {
    if (this.filling) return this.filling;
    if (this.ready.length >= this.opts.size) return Promise.resolve();
    const run = async (): Promise<void> => {
      while (this.ready.length < this.opts.size) {
        const id = this.opts.newId?.() ?? `${this.opts.idPrefix ?? 'warm'}-${randomBytes(5).toString('hex')}`;
        await this.opts.provider.create({ ...this.opts.template, id });
        this.ready.push(id);
      }
    };
    const filling = run().finally(() => {
      if (this.filling === filling) this.filling = undefined;
    });
    this.filling = filling;
    return filling;
  }

  /** Returns a ready environment for `id`, or undefined when the pool is empty (create normally then). */
  async claim(id: string): Promise<Claim | undefined> {
    const existing = this.claimed.get(id);
    if (existing) return { id, backingId: existing, info: await this.opts.provider.inspect(existing) };
    const taken = await this.take();
    if (!taken) return undefined;
    this.claimed.set(id, taken.id);
    return { id, backingId: taken.id, info: taken.info };
  }

  /**
   * Hands out a ready member under its own id (the caller adopts that id) and refills in the
   * background; undefined when none is ready. `giveBack` returns one the caller could not use.
   */
  async take(): Promise<{ id: string; info: EnvironmentInfo } | undefined> {
    for (;;) {
      const id = this.ready.shift();
      if (!id) return undefined;
      const info = await this.opts.provider.inspect(id);
      if (info.state !== 'ready') {
        // Died while waiting in the pool: drop it and try the next one.
        await this.opts.provider.destroy(id).catch((err: unknown) => this.opts.onError?.(err));
        continue;
      }
      this.fill().catch((err: unknown) => this.opts.onError?.(err));
      return { id, info };
    }
  }

  giveBack(id: string): void {
    this.ready.unshift(id);
  }

  /** The provider-side id behind an environment id (itself when it was not claimed from the pool). */
  resolve(id: string): string {
    return this.claimed.get(id) ?? id;
  }

  /** Destroys the unclaimed members (claimed ones belong to their environments now). */
  async drain(): Promise<void> {
    await this.filling?.catch(() => undefined);
    const ids = this.ready.splice(0);
    await Promise.all(ids.map((id) => this.opts.provider.destroy(id)));
  }
}
