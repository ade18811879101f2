'use client';

import Link from 'next/link';
import { useCallback, useState } from 'react';
import { ErrorNotice, Loading } from '@/components/status';
import { api, type Environment, type NewTask } from '@/lib/api';
import { useApi, type Loaded } from '@/lib/use-api';

/** A task runs in one of the user's ready environments, or in a new one made for it. */
export type EnvChoice =
  { kind: 'existing'; env: Environment } | { kind: 'new'; image: string; keep: boolean };

// Enough pages for anyone's environments; the list has no state filter, so it is filtered here.
const MAX_PAGES = 5;

/** The user's ready environments, most recently used first (the first one is the default). */
export function useReadyEnvironments(): Loaded<Environment[]> {
  return useApi(async () => {
    const all: Environment[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < MAX_PAGES; i++) {
      const page = await api.environments.list({ limit: 200, cursor });
      all.push(...page.items);
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    return all
      .filter((e) => e.state === 'ready')
      .sort((a, b) => Date.parse(b.lastActivityAt) - Date.parse(a.lastActivityAt));
  }, 'ready-environments');
}

export interface EnvChoiceState {
  /** What the form shows and a launch sends; null while the environments load. */
  choice: EnvChoice | null;
  selected: string | null;
  image: string;
  keep: boolean;
  select: (value: string) => void;
  setImage: (v: string) => void;
  setKeep: (v: boolean) => void;
  /** Start over, preferring this environment if it is ready (Run again: the task's own). */
  reset: (preferredId?: string | null) => void;
}

/**
 * The picker's state. Nothing chosen yet means the default: the most recently used ready
 * environment, or a new one when there is none. A chosen environment that stops being ready
 * falls back to the default, so a launch never names one that cannot run it.
 */
export function useEnvChoice(ready: Loaded<Environment[]>): EnvChoiceState {
  const [selected, setSelected] = useState<string | null>(null);
  const [image, setImage] = useState('');
  const [keep, setKeep] = useState(false);
  const envs = ready.data;
  let choice: EnvChoice | null = null;
  if (selected === 'new') choice = { kind: 'new', image, keep };
  else if (envs) {
    const env = envs.find((e) => e.id === selected) ?? envs[0];
    choice = env ? { kind: 'existing', env } : { kind: 'new', image, keep };
  }
  const reset = useCallback((preferredId?: string | null) => {
    setSelected(preferredId ?? null);
    setImage('');
    setKeep(false);
  }, []);
  return { choice, selected, image, keep, select: setSelected, setImage, setKeep, reset };
}

/** The request fields that say where the task runs. */
export function choiceBody(c: EnvChoice): Pick<NewTask, 'environmentId' | 'environment'> {
  if (c.kind === 'existing') return { environmentId: c.env.id };
  return {
    environment: { ...(c.image.trim() ? { image: c.image.trim() } : {}), ...(c.keep ? { keep: true } : {}) },
  };
}

export function EnvPicker({
  ready,
  state,
  onChange,
  idPrefix,
}: {
  ready: Loaded<Environment[]>;
  state: EnvChoiceState;
  /** Anything changed: a different environment is a different launch (new idempotency key). */
  onChange: () => void;
  idPrefix: string;
}) {
  if (ready.error)
    return (
      <ErrorNotice error={ready.error} title="Your environments could not be loaded" onRetry={ready.reload} />
    );
  if (!ready.data || !state.choice) return <Loading label="Loading your environments…" />;
  const envs = ready.data;
  const c = state.choice;
  return (
    <div className="stack env-picker" data-testid="env-picker">
      {envs.length === 0 ? (
        <div className="notice" data-testid="env-empty">
          <p className="notice-title">You have no ready environment</p>
          <p>
            Tasks run in an environment. <Link href="/environments">Create one</Link> to keep its files
            between tasks, or run this one in a new environment made just for it.
          </p>
        </div>
      ) : null}
      <label className="field" htmlFor={`${idPrefix}-env`}>
        <span>Environment</span>
        <select
          id={`${idPrefix}-env`}
          name="environment"
          value={c.kind === 'new' ? 'new' : c.env.id}
          onChange={(e) => {
            state.select(e.target.value);
            onChange();
          }}
        >
          {envs.map((e) => (
            <option key={e.id} value={e.id}>
              {e.name} ({e.provider})
            </option>
          ))}
          <option value="new">New environment for this task</option>
        </select>
      </label>
      {c.kind === 'new' ? (
        <div className="stack">
          <label className="field" htmlFor={`${idPrefix}-image`}>
            <span>Image (optional)</span>
            <input
              id={`${idPrefix}-image`}
              name="image"
              autoCapitalize="none"
              autoCorrect="off"
              spellCheck={false}
              placeholder="the server's default image"
              value={state.image}
              onChange={(e) => {
                state.setImage(e.target.value);
                onChange();
              }}
            />
          </label>
          <label className="check">
            <input
              type="checkbox"
              name="keep"
              checked={state.keep}
              onChange={(e) => {
                state.setKeep(e.target.checked);
                onChange();
              }}
            />
            <span>Keep the environment after the task (otherwise it is destroyed when the task ends)</span>
          </label>
          <p className="muted small">
            Made with the server&apos;s default provider; the task waits until it is ready.
          </p>
        </div>
      ) : null}
    </div>
  );
}
