import type { EnvironmentInfo, EnvironmentSpec } from '@berth/protocol';

/** One line of provisioning output, or a progress step. */
export interface ProgressEvent {
  /** `build` (image build), `clone`, `setup` (postCreateCommand), `start` (gateway). */
  phase: 'build' | 'clone' | 'setup' | 'start';
  message: string;
  /** Build step index and total, when the builder reports them. */
  step?: { index: number; total: number };
}

export interface CreateOptions {
  onProgress?: (event: ProgressEvent) => void;
}

export interface CreateResult extends EnvironmentInfo {
  /** False when the environment already existed (create is idempotent on the id). */
  created: boolean;
  image?: string;
  /** Plain words on what isolates this environment; `local` without bubblewrap says it is none. */
  isolation: string;
}

/** An environment the provider knows about, for reconciliation. */
export interface ListedEnvironment {
  id: string;
  ownerId?: string;
  /** The installation label it was created with (absent on ones made before labels existed). */
  installation?: string;
  state: EnvironmentInfo['state'];
}

export interface EnvironmentProvider {
  readonly name: string;
  /** Idempotent on `spec.id`: a second call (e.g. a job re-run after a crash) returns the existing one. */
  create(spec: EnvironmentSpec, options?: CreateOptions): Promise<CreateResult>;
  /** Starts a stopped environment and waits until its gateway answers. */
  start(id: string): Promise<EnvironmentInfo>;
  stop(id: string): Promise<void>;
  /** Removes everything the environment owns; a missing environment is not an error. */
  destroy(id: string): Promise<void>;
  inspect(id: string): Promise<EnvironmentInfo>;
  list(): Promise<ListedEnvironment[]>;
  /** The machine this provider's environments run on, when it is one machine (docker, local). */
  node?(): Promise<string>;
  snapshot?(id: string, name?: string): Promise<{ image: string }>;
}

/**
 * Where a provider keeps what an environment needs but cannot hold itself (Modal: the snapshot
 * image a stopped environment starts from). Shared by every control plane of an installation
 * (Postgres), so any of them can start what another stopped. Small JSON, never a secret.
 */
export interface ProviderStateStore {
  get(id: string): Promise<unknown>;
  put(id: string, state: unknown): Promise<void>;
  /** A missing id is not an error. */
  delete(id: string): Promise<void>;
  list(): Promise<{ id: string; state: unknown }[]>;
}
