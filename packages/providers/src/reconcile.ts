import type { EnvironmentProvider, ListedEnvironment } from './types.js';

export interface ReconcileReport {
  /** Environments the provider runs that have no record (candidates for destroy). */
  orphans: ListedEnvironment[];
  /** Known environment ids the provider has no trace of. */
  missing: string[];
}

/** Compares what a provider holds with the ids the control plane knows; it changes nothing. */
export async function reconcile(
  provider: EnvironmentProvider,
  knownIds: Iterable<string>,
): Promise<ReconcileReport> {
  const known = new Set(knownIds);
  const listed = await provider.list();
  const present = new Set(listed.map((e) => e.id));
  return {
    orphans: listed.filter((e) => !known.has(e.id)),
    missing: [...known].filter((id) => !present.has(id)),
  };
}
