'use client';

import type { Environment, EnvironmentState } from '@/lib/api';

/** States in which something is happening and the environment will move on by itself. */
export const BUSY_STATES: readonly EnvironmentState[] = [
  'pending',
  'provisioning',
  'stopping',
  'starting',
  'destroying',
];
export const isBusy = (s: EnvironmentState) => BUSY_STATES.includes(s);

export const canStop = (s: EnvironmentState) => s === 'ready' || s === 'provisioning' || s === 'starting';
export const canStart = (s: EnvironmentState) => s === 'stopped' || s === 'failed';
export const canDestroy = (s: EnvironmentState) => s !== 'destroying' && s !== 'destroyed';

export function EnvStateBadge({ state }: { state: EnvironmentState }) {
  return (
    <span className={`badge state env-state-${state}`} data-testid="env-state" data-state={state}>
      {isBusy(state) ? <span className="pulse" aria-hidden="true" /> : null}
      {state}
    </span>
  );
}

/** One line saying what it is built from: image, repo@ref, setup files. */
export function describeSpec(spec: Environment['spec']): string {
  const parts: string[] = [];
  const image = typeof spec.image === 'string' ? spec.image : null;
  // A devcontainer.json usually names its own image; "default image" would then be wrong.
  if (image) parts.push(image);
  else if (!spec.devcontainer) parts.push('default image');
  const repo = spec.repo as { url?: unknown; ref?: unknown } | undefined;
  if (repo && typeof repo.url === 'string')
    parts.push(typeof repo.ref === 'string' ? `${repo.url} @ ${repo.ref}` : repo.url);
  if (spec.berthYaml) parts.push('berth.yaml');
  if (spec.devcontainer) parts.push('devcontainer.json');
  const res = spec.resources as { cpu?: unknown; memoryMb?: unknown } | undefined;
  if (res && typeof res.cpu === 'number') parts.push(`${res.cpu} CPU${res.cpu === 1 ? '' : 's'}`);
  if (res && typeof res.memoryMb === 'number')
    parts.push(res.memoryMb % 1024 === 0 ? `${res.memoryMb / 1024} GB` : `${res.memoryMb} MB`);
  return parts.join(' · ');
}

export type EnvAction = 'stop' | 'start' | 'destroy';

export const ACTION_TEXT: Record<
  EnvAction,
  { title: string; confirm: string; body: string; tone: 'danger' | 'primary' }
> = {
  stop: {
    title: 'Stop this environment?',
    confirm: 'Stop',
    body: 'Its processes and open terminals end; the files in /workspace are kept, and Start brings it back.',
    tone: 'primary',
  },
  start: {
    title: 'Start this environment?',
    confirm: 'Start',
    body: 'It starts again with the files it had.',
    tone: 'primary',
  },
  destroy: {
    title: 'Destroy this environment?',
    confirm: 'Destroy',
    body: 'Its container or process and every file in it are removed. This cannot be undone.',
    tone: 'danger',
  },
};
