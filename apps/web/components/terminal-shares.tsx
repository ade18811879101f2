'use client';

import { useCallback, useEffect, useState } from 'react';
import { CopyButton } from '@/components/copy-button';
import { ErrorNotice } from '@/components/status';
import { ApiError, api, toApiError, type CreatedShare, type TerminalShare } from '@/lib/api';
import { formatDateTime, relative } from '@/lib/format';
import { useSession } from '@/lib/session';

/** How long a new link works; the API takes 1–1440 minutes and defaults to 60. */
const EXPIRIES: Array<{ minutes: number; label: string }> = [
  { minutes: 15, label: '15 minutes' },
  { minutes: 60, label: '1 hour' },
  { minutes: 480, label: '8 hours' },
  { minutes: 1440, label: '24 hours' },
];

/** The full address of a share: the API gives a path on this site. */
export function shareLink(created: CreatedShare): string {
  return new URL(created.path, window.location.origin).href;
}

/**
 * Read-only links to one terminal session: the link just made (its token is shown only now), a new
 * one with another lifetime, and the session's live links, each revocable. Anyone signed in to this
 * Berth who has a link can watch until it expires or is revoked; nobody can type through it.
 */
export function SharePanel({
  envId,
  sessionId,
  first,
  onClose,
}: {
  envId: string;
  sessionId: string;
  /** The link the "Share read-only" button just made. */
  first: CreatedShare;
  onClose: () => void;
}) {
  const { expired } = useSession();
  const [created, setCreated] = useState<CreatedShare | null>(first);
  const [items, setItems] = useState<TerminalShare[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [minutes, setMinutes] = useState(60);

  const fail = useCallback(
    (err: unknown) => {
      const e = toApiError(err);
      if (e.unauthorized) expired();
      else setError(e);
    },
    [expired],
  );

  const load = useCallback(async () => {
    try {
      const r = await api.terminals.shares(envId);
      // The API lists the whole environment's links; this panel is about one session.
      setItems(r.items.filter((s) => s.sessionId === sessionId));
    } catch (err) {
      fail(err);
    }
  }, [envId, sessionId, fail]);

  useEffect(() => {
    void load();
  }, [load, first]);

  async function createLink() {
    setBusy('create');
    setError(null);
    try {
      setCreated(await api.terminals.share(envId, sessionId, minutes));
      await load();
    } catch (err) {
      fail(err);
    } finally {
      setBusy(null);
    }
  }

  async function revoke(id: string) {
    setBusy(id);
    setError(null);
    try {
      setError(notCutOff(await api.terminals.revokeShare(envId, id)));
      if (created?.share.id === id) setCreated(null);
      setItems((xs) => xs?.filter((s) => s.id !== id) ?? null);
      await load();
    } catch (err) {
      fail(err);
    } finally {
      setBusy(null);
    }
  }

  return (
    <section className="notice share" data-testid="share" aria-label="Read-only links">
      {created ? (
        <div className="share-new">
          <p className="notice-title">Read-only link to this terminal</p>
          <div className="code-row">
            <code className="code-block" data-testid="share-link">
              {shareLink(created)}
            </code>
            <CopyButton text={shareLink(created)} />
          </div>
          <p className="small" data-testid="share-expiry">
            Expires {formatDateTime(created.share.expiresAt)} ({relative(created.share.expiresAt)}). Anyone
            signed in to this Berth who opens it watches this terminal live and cannot type. Copy it now: it
            is shown only once.
          </p>
        </div>
      ) : null}
      {error ? <ErrorNotice error={error} /> : null}

      <div className="share-make">
        <label className="field-inline">
          <span>New link, valid for</span>
          <select value={minutes} onChange={(e) => setMinutes(Number(e.target.value))}>
            {EXPIRIES.map((x) => (
              <option key={x.minutes} value={x.minutes}>
                {x.label}
              </option>
            ))}
          </select>
        </label>
        <button
          type="button"
          className="btn btn-small"
          disabled={busy !== null}
          onClick={() => void createLink()}
        >
          {busy === 'create' ? 'Creating…' : 'Create link'}
        </button>
      </div>

      <div>
        <p className="share-list-title">Live links to this terminal</p>
        {items === null ? (
          <p className="small muted">Loading…</p>
        ) : (
          <ShareList
            items={items}
            busy={busy}
            onRevoke={(id) => void revoke(id)}
            {...(created ? { current: created.share.id } : {})}
          />
        )}
      </div>

      <button type="button" className="btn btn-small" onClick={onClose}>
        Close
      </button>
    </section>
  );
}

/**
 * A revoke whose environment could not be told to close the link's viewers: the link is revoked,
 * but whoever watches may go on until it expires, which the owner should know.
 */
export function notCutOff(r: { viewersCutOff: boolean; warning?: string }): ApiError | null {
  if (r.viewersCutOff) return null;
  return new ApiError(
    0,
    'viewers_not_reached',
    r.warning ?? 'the link is revoked, but anyone watching now could not be disconnected',
    'to cut them off now, stop the environment',
  );
}

/** Live read-only links with Revoke; the panel above and the environment page both show them. */
export function ShareList({
  items,
  busy,
  onRevoke,
  current,
}: {
  items: TerminalShare[];
  /** The id being revoked (or any non-null: another action runs), to disable the buttons. */
  busy: string | null;
  onRevoke: (id: string) => void;
  /** The link shown in full just above, if any. */
  current?: string;
}) {
  if (items.length === 0)
    return (
      <p className="small muted" data-testid="share-none">
        None: nobody can watch through a link.
      </p>
    );
  return (
    <ul className="share-list" data-testid="share-list">
      {items.map((s) => (
        <li key={s.id} className="share-item" data-share-id={s.id}>
          <span className="small">
            Made {formatDateTime(s.createdAt)}, expires {relative(s.expiresAt)}
            {current === s.id ? ' (the link above)' : ''}
          </span>
          <button
            type="button"
            className="btn btn-small btn-danger-outline"
            disabled={busy !== null}
            onClick={() => onRevoke(s.id)}
          >
            {busy === s.id ? 'Revoking…' : 'Revoke'}
          </button>
        </li>
      ))}
    </ul>
  );
}
