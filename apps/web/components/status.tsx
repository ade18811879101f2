'use client';

import type { ReactNode } from 'react';
import type { ApiError } from '@/lib/api';

/** An API error as the user should see it: what happened, and what to do next. */
export function ErrorNotice({
  error,
  onRetry,
  title,
}: {
  error: ApiError;
  onRetry?: () => void;
  title?: string;
}) {
  return (
    <div className="notice notice-error" role="alert" data-testid="error">
      <p className="notice-title">{title ?? error.message}</p>
      {title ? <p>{error.message}</p> : null}
      {error.fields.length > 0 ? (
        <ul className="notice-fields" data-testid="error-fields">
          {error.fields.map((f) => (
            <li key={`${f.path}:${f.message}`}>
              <code>{f.path}</code> {f.message}
            </li>
          ))}
        </ul>
      ) : null}
      {error.hint ? (
        <p className="notice-hint" data-testid="error-hint">
          {error.hint}
        </p>
      ) : null}
      {onRetry ? (
        <button type="button" className="btn btn-small" onClick={onRetry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="loading" role="status" aria-live="polite" data-testid="loading">
      <span className="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty" data-testid="empty">
      <p className="empty-title">{title}</p>
      {children}
    </div>
  );
}

/**
 * The three states of anything loaded from the API, in one place, so every page handles them:
 * loading, failed (with the hint and a retry), and loaded.
 */
export function Loadable<T>({
  state,
  onRetry,
  children,
}: {
  state: { data?: T; error?: ApiError; loading: boolean };
  onRetry?: () => void;
  children: (data: T) => ReactNode;
}) {
  if (state.error) return <ErrorNotice error={state.error} {...(onRetry ? { onRetry } : {})} />;
  if (state.data === undefined) return <Loading />;
  return <>{children(state.data)}</>;
}
