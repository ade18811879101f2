import type { Queryable } from '@berth/db';

export type EnvironmentJobKind =
  'environment.provision' | 'environment.stop' | 'environment.start' | 'environment.destroy';

/**
 * What the environments service needs from the provider layer and the queue: which providers
 * are enabled, spec validation (before anything is created), and enqueueing a lifecycle job in
 * the caller's transaction. An abstract class so it doubles as the injection token.
 */
export abstract class EnvironmentJobs {
  abstract providers(): string[];
  abstract defaultProvider(): string;
  abstract validateSpec(provider: string, spec: Record<string, unknown>): Promise<Record<string, unknown>>;
  abstract enqueue(tx: Queryable, kind: EnvironmentJobKind, environmentId: string): Promise<void>;
}
