import type { EnvironmentSpec } from '@berth/protocol';
import type { ProviderStateStore } from '../types.js';

/**
 * What a Modal environment needs to boot a sandbox again, kept in the installation's
 * `ProviderStateStore` (Postgres in the control plane) rather than on one control plane's disk.
 * Only what `start` uses: no spec paths, no repo, no credentials.
 */
export interface ModalEnvState {
  v: 1;
  ownerId: string;
  desired: 'running' | 'stopped';
  /** The built image; after a stop, the filesystem snapshot to start from. */
  imageId: string;
  /** Sandbox env: berth.yaml `env`, devcontainer `containerEnv` and the spec's `env`. */
  env: Record<string, string>;
  resources: { cpus: number; memoryMb: number };
  /** The user the gateway (and so every terminal and task) runs as. */
  user: string;
  /** Public JWKS and issuer the gateway verifies tickets with. */
  gateway?: EnvironmentSpec['gateway'];
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The stored value if it has the shape this version writes; anything else is no state. */
export function parseState(v: unknown): ModalEnvState | undefined {
  if (!isRecord(v) || v.v !== 1) return undefined;
  const r = v.resources;
  if (
    typeof v.ownerId !== 'string' ||
    (v.desired !== 'running' && v.desired !== 'stopped') ||
    typeof v.imageId !== 'string' ||
    typeof v.user !== 'string' ||
    !isRecord(v.env) ||
    !Object.values(v.env).every((x) => typeof x === 'string') ||
    !isRecord(r) ||
    typeof r.cpus !== 'number' ||
    typeof r.memoryMb !== 'number'
  )
    return undefined;
  return v as unknown as ModalEnvState;
}

/** In-process store: for tests and single-process use; a restart forgets stopped environments. */
export class MemoryStateStore implements ProviderStateStore {
  /** JSON text, so a caller's later mutation cannot reach what was stored (as with Postgres). */
  readonly entries = new Map<string, string>();

  async get(id: string): Promise<unknown> {
    const v = this.entries.get(id);
    return v === undefined ? undefined : JSON.parse(v);
  }

  async put(id: string, state: unknown): Promise<void> {
    this.entries.set(id, JSON.stringify(state));
  }

  async delete(id: string): Promise<void> {
    this.entries.delete(id);
  }

  async list(): Promise<{ id: string; state: unknown }[]> {
    return [...this.entries].map(([id, v]) => ({ id, state: JSON.parse(v) as unknown }));
  }
}
