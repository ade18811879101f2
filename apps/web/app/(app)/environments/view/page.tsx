'use client';

import Link from 'next/link';
import { useSearchParams } from 'next/navigation';
import { Suspense, useEffect, useRef, useState } from 'react';
import { EnvActionButtons, useEnvActions } from '@/components/env-actions';
import { EnvStateBadge, describeSpec, isBusy } from '@/components/env-ui';
import { EnvPorts } from '@/components/env-ports';
import { ErrorNotice, Loadable, Loading } from '@/components/status';
import { ShareList, notCutOff } from '@/components/terminal-shares';
import { ApiError, api, toApiError, type Environment, type EnvironmentEvent } from '@/lib/api';
import { formatDateTime } from '@/lib/format';
import { useLive } from '@/lib/live';
import { useSession } from '@/lib/session';
import { useApi } from '@/lib/use-api';

const POLL_MS = 1000;

/**
 * The environment's events, read incrementally (`after` the last one seen). Change notices only
 * come with state changes, so while it is provisioning, starting or stopping, progress lines are
 * polled too.
 */
function useEnvEvents(id: string, busy: boolean, nudge: number) {
  const { expired } = useSession();
  const [items, setItems] = useState<EnvironmentEvent[]>([]);
  const [error, setError] = useState<ApiError | null>(null);
  const last = useRef<string | null>(null);

  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    async function pull() {
      try {
        for (;;) {
          const page = await api.environments.events(id, last.current);
          if (!live) return;
          if (page.items.length) {
            last.current = page.items[page.items.length - 1]!.id;
            setItems((xs) => [...xs, ...page.items]);
          }
          setError(null);
          if (!page.nextAfter) break;
        }
      } catch (err) {
        const e = toApiError(err);
        if (e.unauthorized) return expired();
        if (live) setError(e);
      }
      if (live && busy) timer = setTimeout(() => void pull(), POLL_MS);
    }
    void pull();
    return () => {
      live = false;
      if (timer) clearTimeout(timer);
    };
  }, [id, busy, nudge, expired]);

  return { items, error };
}

function Events({ env, nudge }: { env: Environment; nudge: number }) {
  const { items, error } = useEnvEvents(env.id, isBusy(env.state), nudge);
  const box = useRef<HTMLOListElement>(null);
  useEffect(() => {
    const el = box.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [items.length]);
  return (
    <section className="card stack" aria-labelledby="events-h">
      <h2 id="events-h">Events</h2>
      {error ? <ErrorNotice error={error} /> : null}
      {items.length === 0 ? (
        <p className="muted">No events yet.</p>
      ) : (
        <ol className="events" data-testid="events" ref={box}>
          {items.map((e) => (
            <li key={e.id} className={`event event-${e.kind}`} data-kind={e.kind}>
              <time dateTime={e.at} title={e.at}>
                {new Date(e.at).toLocaleTimeString()}
              </time>
              <span className="event-kind">{e.kind}</span>
              <span className="event-msg">{e.message}</span>
            </li>
          ))}
          {isBusy(env.state) ? (
            <li className="event event-waiting" aria-live="polite">
              <span className="spinner" aria-hidden="true" />
              <span className="muted">{env.state}…</span>
            </li>
          ) : null}
        </ol>
      )}
    </section>
  );
}

/** Shells open in the environment (from its gateway): join one from here, or watch it. */
function Sessions({ env, nudge }: { env: Environment; nudge: number }) {
  const { expired } = useSession();
  const [again, setAgain] = useState(0);
  const sessions = useApi(() => api.terminals.list(env.id), `terms:${env.id}:${nudge}:${again}`);
  // Read-only links still working, shown under their session so they can be revoked from here too.
  const shares = useApi(() => api.terminals.shares(env.id), `shares:${env.id}:${nudge}:${again}`);
  const [revoking, setRevoking] = useState<string | null>(null);
  const [shareError, setShareError] = useState<ApiError | null>(null);

  async function revoke(shareId: string) {
    setRevoking(shareId);
    setShareError(null);
    try {
      setShareError(notCutOff(await api.terminals.revokeShare(env.id, shareId)));
      shares.set((prev) => prev && { items: prev.items.filter((x) => x.id !== shareId) });
    } catch (err) {
      const e = toApiError(err);
      if (e.unauthorized) expired();
      else setShareError(e);
    } finally {
      setRevoking(null);
    }
  }
  return (
    <section className="card stack" aria-labelledby="sessions-h">
      <div className="log-head">
        <h2 id="sessions-h">Terminal sessions</h2>
        <button
          type="button"
          className="btn btn-small"
          onClick={() => setAgain((n) => n + 1)}
          disabled={sessions.loading}
        >
          Refresh
        </button>
      </div>
      {shares.error ? <ErrorNotice error={shares.error} title="Read-only links could not be loaded" /> : null}
      {shareError ? <ErrorNotice error={shareError} /> : null}
      <Loadable state={sessions} onRetry={sessions.reload}>
        {({ sessions: list }) =>
          list.length === 0 ? (
            <p className="muted">
              No shell is open. Open a terminal; it keeps running while you are away, and you can rejoin it
              from any device.
            </p>
          ) : (
            <ul className="sessions" data-testid="sessions">
              {list.map((t) => {
                const clients = t.clients ?? [];
                const drivers = clients.filter((c) => c.role === 'driver').length;
                const links = shares.data?.items.filter((x) => x.sessionId === t.id) ?? [];
                return (
                  <li key={t.id} className="session" data-session-id={t.id}>
                    <div className="session-what">
                      <code>{(t.command ?? []).join(' ') || 'shell'}</code>
                      <span className="muted small">
                        {t.cols && t.rows ? `${t.cols}×${t.rows} · ` : ''}
                        {clients.length === 0
                          ? 'nobody attached'
                          : `${clients.length} attached (${drivers} typing, ${clients.length - drivers} watching)`}
                        {t.createdAt ? ` · opened ${formatDateTime(t.createdAt)}` : ''}
                      </span>
                    </div>
                    <div className="row-wrap">
                      <Link
                        className="btn btn-small btn-primary"
                        href={`/terminal?env=${env.id}&session=${encodeURIComponent(t.id)}`}
                      >
                        Join
                      </Link>
                      <Link
                        className="btn btn-small"
                        href={`/terminal?env=${env.id}&session=${encodeURIComponent(t.id)}&observe=1`}
                      >
                        Watch
                      </Link>
                    </div>
                    {links.length > 0 ? (
                      <div className="session-shares" data-testid="session-shares">
                        <p className="small">
                          {links.length === 1 ? '1 read-only link' : `${links.length} read-only links`} for
                          other signed-in users
                        </p>
                        <ShareList items={links} busy={revoking} onRevoke={(x) => void revoke(x)} />
                      </div>
                    ) : null}
                  </li>
                );
              })}
            </ul>
          )
        }
      </Loadable>
    </section>
  );
}

function EnvDetail({ id }: { id: string }) {
  const [nudge, setNudge] = useState(0);
  const env = useApi(() => api.environments.get(id), `env:${id}:${nudge}`);
  const actions = useEnvActions((e) => env.set(() => ({ environment: e })));

  const { connected } = useLive(
    (c) => {
      if (c.kind === 'environment' && c.id === id) setNudge((n) => n + 1);
    },
    () => setNudge((n) => n + 1),
  );

  // useApi keeps the data on screen while it re-reads after a change notice (no flash of "Loading…").
  return (
    <Loadable state={env} onRetry={env.reload}>
      {({ environment: e }) => (
        <div className="stack-lg">
          <div className="page-head">
            <p className="small">
              <Link href="/environments">← Environments</Link>
            </p>
            <h1 className="env-title">{e.name}</h1>
            <div className="row-wrap task-meta">
              <EnvStateBadge state={e.state} />
              <span className={`live ${connected ? 'live-on' : ''}`} data-testid="live">
                {connected ? 'Live' : 'Connecting…'}
              </span>
            </div>
          </div>
          {e.state === 'failed' && e.stateReason ? (
            <ErrorNotice
              error={
                new ApiError(
                  0,
                  'environment_failed',
                  e.stateReason,
                  'read the events below, fix the setup, then Start it again or create a new one',
                )
              }
            />
          ) : null}
          <div className="row-wrap">
            {e.state === 'ready' ? (
              <Link href={`/terminal?env=${e.id}`} className="btn btn-primary">
                Open terminal
              </Link>
            ) : null}
            <EnvActionButtons env={e} ask={actions.ask} small={false} />
          </div>

          <section className="card stack" aria-labelledby="about-h">
            <h2 id="about-h">About</h2>
            <dl className="facts">
              <dt>State</dt>
              <dd data-testid="env-state-text">
                {e.state}
                {e.stateReason && e.state !== 'failed' ? (
                  <span className="muted"> — {e.stateReason}</span>
                ) : null}
              </dd>
              <dt>Provider</dt>
              <dd>{e.provider}</dd>
              <dt>From</dt>
              <dd className="mono-wrap">{describeSpec(e.spec)}</dd>
              {e.node ? (
                <>
                  <dt>Node</dt>
                  <dd className="mono-wrap">{e.node}</dd>
                </>
              ) : null}
              <dt>Created</dt>
              <dd>{formatDateTime(e.createdAt)}</dd>
              <dt>Ready</dt>
              <dd>{formatDateTime(e.readyAt, 'not yet')}</dd>
              <dt>Last activity</dt>
              <dd>{formatDateTime(e.lastActivityAt)}</dd>
              <dt>ID</dt>
              <dd>
                <code>{e.id}</code>
              </dd>
            </dl>
          </section>

          {e.state === 'ready' ? <Sessions env={e} nudge={nudge} /> : null}
          {e.state === 'ready' ? <EnvPorts env={e} nudge={nudge} /> : null}
          <Events env={e} nudge={nudge} />
          {actions.dialog}
        </div>
      )}
    </Loadable>
  );
}

function EnvPage() {
  const id = useSearchParams().get('id');
  if (!id)
    return (
      <ErrorNotice
        error={new ApiError(400, 'missing_id', 'no environment given', 'open an environment from the list')}
      />
    );
  return <EnvDetail id={id} />;
}

// A static export cannot know environment ids at build time, so the id rides in the query string.
export default function EnvironmentViewPage() {
  return (
    <Suspense fallback={<Loading />}>
      <EnvPage />
    </Suspense>
  );
}
