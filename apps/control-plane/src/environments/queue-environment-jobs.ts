import { Inject, Injectable } from '@nestjs/common';
import { enqueueJobs, type Queryable } from '@berth/db';
import { EnvironmentJobCatalog } from '@berth/protocol';
import { EnvironmentJobs, type EnvironmentJobKind } from './environment-jobs.port.js';
import { PROVIDERS, type ProviderRegistry } from './providers.js';
import { checkSpec, type StoredSpec } from './spec.js';

/** The real port: providers from the registry, jobs on the Postgres queue. */
@Injectable()
export class QueueEnvironmentJobs extends EnvironmentJobs {
  constructor(@Inject(PROVIDERS) private readonly registry: ProviderRegistry) {
    super();
  }

  providers(): string[] {
    return this.registry.names;
  }

  defaultProvider(): string {
    return this.registry.defaultName;
  }

  async validateSpec(_provider: string, spec: Record<string, unknown>): Promise<Record<string, unknown>> {
    return Promise.resolve(checkSpec(spec as StoredSpec, this.registry.policy) as Record<string, unknown>);
  }

  async enqueue(tx: Queryable, kind: EnvironmentJobKind, environmentId: string): Promise<void> {
    // One pending job per environment and action: a double click enqueues once.
    await enqueueJobs(tx, EnvironmentJobCatalog, [
      {
        kind,
        payload: { environmentId },
        options: { dedupeKey: `${kind}:${environmentId}`, maxAttempts: 5 },
      },
    ]);
  }
}
