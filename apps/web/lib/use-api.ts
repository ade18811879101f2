'use client';

import { useCallback, useEffect, useState } from 'react';
import { toApiError, type ApiError } from './api';
import { useSession } from './session';

export interface Loaded<T> {
  data?: T;
  error?: ApiError;
  loading: boolean;
  reload: () => void;
  set: (update: (prev: T | undefined) => T | undefined) => void;
}

/** Loads once per change of `key`; a 401 ends the session (back to /login) instead of showing an error. */
export function useApi<T>(load: () => Promise<T>, key: string): Loaded<T> {
  const { expired } = useSession();
  const [state, setState] = useState<{ data?: T; error?: ApiError; loading: boolean }>({ loading: true });
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true, error: undefined }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (err: unknown) => {
        if (!live) return;
        const e = toApiError(err);
        if (e.unauthorized) expired();
        else setState({ error: e, loading: false });
      },
    );
    return () => {
      live = false;
    };
    // `load` is recreated every render; `key` says when it means something new.
  }, [key, attempt, expired]);

  const reload = useCallback(() => setAttempt((n) => n + 1), []);
  const set = useCallback(
    (update: (prev: T | undefined) => T | undefined) => setState((s) => ({ ...s, data: update(s.data) })),
    [],
  );
  return { ...state, reload, set };
}
