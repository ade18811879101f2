'use client';

import '@xterm/xterm/css/xterm.css';
import Link from 'next/link';
import { useSearchParams } from 'next/navigation';
import { Suspense, useCallback, useEffect, useRef, useState } from 'react';
import { CopyButton } from '@/components/copy-button';
import { ErrorNotice, Loading } from '@/components/status';
import { TerminalPane, type PaneState, type TerminalHandle } from '@/components/terminal-pane';
import { ApiError, api, toApiError, type ShareTicket, type TerminalTicket } from '@/lib/api';
import { useSession } from '@/lib/session';

// A read-only link someone made for one of their terminals (`/share/?token=berth_shr_…`). This page
// is in the signed-in group, so without a session the layout sends the viewer to
// /login?next=<this page> and back here after. The share token is exchanged for an observer ticket on every connection
// that needs one (the first, and a reconnect whose resume the gateway refused). The ticket names
// the link, so when the owner revokes it or it expires the gateway closes the connection for good
// (4430, 4440), and the page says which instead of reconnecting.

const STATUS_TEXT: Record<PaneState['status'], string> = {
  ticket: 'Connecting…',
  connecting: 'Connecting…',
  open: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Closed',
};

const NO_MODIFIERS = { ctrl: false, alt: false, consume: () => undefined };

/** The pane's errors when the gateway ended the viewing: the link was revoked or expired. */
const ENDED = new Set(['share_revoked', 'share_expired']);

function SharedTerminal({ token, first }: { token: string; first: ShareTicket }) {
  const handle = useRef<TerminalHandle | null>(null);
  const [state, setState] = useState<PaneState>({ status: 'ticket' });
  const ended = state.error !== undefined && ENDED.has(state.error.code);
  // The first ticket was fetched to show whose terminal this is; the pane uses it once (a ticket is
  // good for one connection within a minute), then asks for fresh ones.
  const unused = useRef<TerminalTicket | null>(first.ticket);
  const ticket = useCallback(async () => {
    const t = unused.current;
    unused.current = null;
    return t ?? (await api.terminals.shareTicket(token)).ticket;
  }, [token]);

  return (
    <div className="term-page">
      <div className="term-head">
        <div className="term-title">
          <span className="term-env" data-testid="share-env">
            {first.environment.name}
          </span>
          <span className="badge badge-accent" data-testid="read-only">
            read-only — shared by {first.sharedBy}
          </span>
          <span
            className={`live ${state.status === 'open' ? 'live-on' : ''}`}
            data-testid="term-status"
            data-status={state.status}
          >
            {STATUS_TEXT[state.status]}
          </span>
        </div>
        <div className="term-tools">
          <CopyButton label="Copy" getText={() => handle.current?.copyText() ?? ''} />
        </div>
      </div>
      {ended ? (
        <div className="notice" role="status" data-testid="share-ended">
          <p className="notice-title">{state.error?.message}</p>
          <p>
            What you see is the terminal as it was then. Ask {first.sharedBy} for a new link to keep watching.
          </p>
        </div>
      ) : state.error ? (
        <ErrorNotice error={state.error} />
      ) : null}
      {state.exited ? (
        <p className="notice small" data-testid="term-exited">
          The shell exited{state.exited.code ? ` with code ${state.exited.code}` : ''}: there is nothing more
          to watch.
        </p>
      ) : null}
      {state.status === 'reconnecting' ? (
        <p className="term-banner" role="status" data-testid="reconnecting">
          Connection lost, reconnecting…
        </p>
      ) : null}
      <div className="term-frame">
        <TerminalPane
          envId={first.environment.id}
          observe
          visible
          modifiers={NO_MODIFIERS}
          onState={setState}
          handle={handle}
          ticket={ticket}
        />
      </div>
      {ended ? null : (
        <p className="small muted share-foot">
          You are watching {first.sharedBy}&rsquo;s terminal as it happens; what you type is not sent.
        </p>
      )}
    </div>
  );
}

function ShareFor({ token }: { token: string }) {
  const { expired } = useSession();
  const [first, setFirst] = useState<ShareTicket | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let live = true;
    setError(null);
    api.terminals.shareTicket(token).then(
      (t) => live && setFirst(t),
      (err: unknown) => {
        if (!live) return;
        const e = toApiError(err);
        if (e.unauthorized) expired();
        else setError(e);
      },
    );
    return () => {
      live = false;
    };
  }, [token, attempt, expired]);

  if (error)
    return (
      <div className="stack">
        <ErrorNotice
          error={error}
          title="This read-only link does not open"
          // Not ready can pass (the owner starts it); a revoked or expired link stays that way.
          {...(error.code === 'environment_not_ready' || error.status === 0 || error.status >= 500
            ? { onRetry: () => setAttempt((n) => n + 1) }
            : {})}
        />
        <Link href="/" className="btn">
          Go home
        </Link>
      </div>
    );
  if (!first) return <Loading label="Opening the shared terminal…" />;
  return <SharedTerminal token={token} first={first} />;
}

function SharePageInner() {
  const token = useSearchParams().get('token');
  if (!token)
    return (
      <ErrorNotice
        error={
          new ApiError(
            400,
            'missing_token',
            'this link has no share token',
            'open the whole link you were given; it ends in ?token= and a long code',
          )
        }
      />
    );
  return <ShareFor token={token} />;
}

export default function SharePage() {
  return (
    <Suspense fallback={<Loading />}>
      <SharePageInner />
    </Suspense>
  );
}
