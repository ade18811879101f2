'use client';

import { useState } from 'react';
import { ConfirmDialog } from './confirm';
import { ACTION_TEXT, canDestroy, canStart, canStop, type EnvAction } from './env-ui';
import { ErrorNotice } from './status';
import { api, toApiError, type ApiError, type Environment } from '@/lib/api';
import { useSession } from '@/lib/session';

/** Stop / start / destroy behind a confirmation; `onDone` gets the environment as the API returned it. */
export function useEnvActions(onDone: (env: Environment) => void) {
  const { expired } = useSession();
  const [asked, setAsked] = useState<{ env: Environment; action: EnvAction } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function confirm() {
    if (!asked) return;
    setBusy(true);
    setError(null);
    try {
      const r = await api.environments.act(asked.env.id, asked.action);
      onDone(r.environment);
      setAsked(null);
    } catch (err) {
      const e = toApiError(err);
      if (e.unauthorized) expired();
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  const dialog = (
    <ConfirmDialog
      open={asked !== null}
      title={asked ? ACTION_TEXT[asked.action].title : ''}
      confirmLabel={asked ? ACTION_TEXT[asked.action].confirm : ''}
      tone={asked ? ACTION_TEXT[asked.action].tone : 'primary'}
      busy={busy}
      onCancel={() => setAsked(null)}
      onConfirm={() => void confirm()}
    >
      {asked ? (
        <p>
          <strong>{asked.env.name}</strong>: {ACTION_TEXT[asked.action].body}
        </p>
      ) : null}
      {error ? <ErrorNotice error={error} /> : null}
    </ConfirmDialog>
  );

  return {
    dialog,
    ask: (env: Environment, action: EnvAction) => {
      setError(null);
      setAsked({ env, action });
    },
  };
}

/** The buttons that make sense in the environment's state. */
export function EnvActionButtons({
  env,
  ask,
  small = true,
}: {
  env: Environment;
  ask: (env: Environment, a: EnvAction) => void;
  small?: boolean;
}) {
  const cls = small ? 'btn btn-small' : 'btn';
  return (
    <>
      {canStop(env.state) ? (
        <button
          type="button"
          className={cls}
          onClick={() => ask(env, 'stop')}
          aria-label={`Stop ${env.name}`}
        >
          Stop
        </button>
      ) : null}
      {canStart(env.state) ? (
        <button
          type="button"
          className={cls}
          onClick={() => ask(env, 'start')}
          aria-label={`Start ${env.name}`}
        >
          Start
        </button>
      ) : null}
      {canDestroy(env.state) ? (
        <button
          type="button"
          className={`${cls} btn-danger-outline`}
          onClick={() => ask(env, 'destroy')}
          aria-label={`Destroy ${env.name}`}
        >
          Destroy
        </button>
      ) : null}
    </>
  );
}
