import { EnvironmentSpec } from '@berth/protocol';

export interface ResourceLimits {
  cpus: number;
  memoryMb: number;
  pids: number;
}

/** Operator policy: defaults applied when a spec asks for nothing, maximums it may not exceed. */
export interface SpecPolicy {
  defaults: ResourceLimits;
  max: ResourceLimits;
  /** Container runtimes an environment may ask for; the first is the default. */
  runtimes: string[];
}

export const defaultSpecPolicy: SpecPolicy = {
  defaults: { cpus: 1, memoryMb: 1024, pids: 512 },
  max: { cpus: 4, memoryMb: 8192, pids: 4096 },
  runtimes: ['runc'],
};

export interface SpecIssue {
  field: string;
  message: string;
  hint: string;
}

export type SpecCheck =
  | { ok: true; spec: EnvironmentSpec; resources: ResourceLimits; runtime: string }
  | { ok: false; issues: SpecIssue[] };

/** Validates a spec against the operator policy; every problem is reported, each with a hint. */
export function validateSpec(input: unknown, policy: SpecPolicy = defaultSpecPolicy): SpecCheck {
  const parsed = EnvironmentSpec.safeParse(input);
  if (!parsed.success) {
    return {
      ok: false,
      issues: parsed.error.issues.map((i) => ({
        field: i.path.join('.') || '(spec)',
        message: i.message,
        hint: i.code === 'unrecognized_keys' ? `remove ${i.keys.join(', ')}` : 'fix this field and retry',
      })),
    };
  }
  const spec = parsed.data;
  const issues: SpecIssue[] = [];
  const resources: ResourceLimits = { ...policy.defaults, ...spec.resources };
  for (const key of ['cpus', 'memoryMb', 'pids'] as const) {
    if (resources[key] > policy.max[key]) {
      issues.push({
        field: `resources.${key}`,
        message: `${key} ${resources[key]} is above the operator maximum ${policy.max[key]}`,
        hint: `ask for at most ${policy.max[key]}, or have the operator raise the maximum`,
      });
    }
  }
  const runtime = spec.runtime ?? policy.runtimes[0] ?? 'runc';
  if (!policy.runtimes.includes(runtime)) {
    issues.push({
      field: 'runtime',
      message: `runtime "${runtime}" is not allowed here`,
      hint: `use one of: ${policy.runtimes.join(', ')}`,
    });
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, spec, resources, runtime };
}
