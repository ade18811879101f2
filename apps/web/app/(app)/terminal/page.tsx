'use client';

import '@xterm/xterm/css/xterm.css';
import Link from 'next/link';
import { useSearchParams } from 'next/navigation';
import { Suspense, createRef, useCallback, useEffect, useRef, useState, type RefObject } from 'react';
import { CopyButton } from '@/components/copy-button';
import { EnvStateBadge } from '@/components/env-ui';
import { ErrorNotice, Loadable, Loading } from '@/components/status';
import { TerminalPane, ctrlKey, type PaneState, type TerminalHandle } from '@/components/terminal-pane';
import { SharePanel } from '@/components/terminal-shares';
import { ApiError, api, toApiError, type CreatedShare, type Environment } from '@/lib/api';
import { useSession } from '@/lib/session';
import { useApi } from '@/lib/use-api';

interface Tab {
  key: number;
  /** Set when joining a session; a new tab starts a new shell and learns its id on attach. */
  sessionId?: string;
  ref: RefObject<TerminalHandle | null>;
}

const STATUS_TEXT: Record<PaneState['status'], string> = {
  ticket: 'Connecting…',
  connecting: 'Connecting…',
  open: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Closed',
};

// Keys a phone keyboard lacks. Ctrl and Alt are sticky: tap, then the next key gets them.
const KEYS: Array<{ label: string; aria: string; send: string }> = [
  { label: 'Esc', aria: 'Escape', send: '\x1b' },
  { label: 'Tab', aria: 'Tab', send: '\t' },
  { label: '←', aria: 'Left', send: '\x1b[D' },
  { label: '↑', aria: 'Up', send: '\x1b[A' },
  { label: '↓', aria: 'Down', send: '\x1b[B' },
  { label: '→', aria: 'Right', send: '\x1b[C' },
  { label: '|', aria: 'Pipe', send: '|' },
  { label: '~', aria: 'Tilde', send: '~' },
  { label: '/', aria: 'Slash', send: '/' },
];

function TerminalWorkspace({
  env,
  initialSession,
  observe,
}: {
  env: Environment;
  initialSession: string | null;
  observe: boolean;
}) {
  const { expired } = useSession();
  const next = useRef(1);
  const [tabs, setTabs] = useState<Tab[]>(() => [
    { key: 0, ...(initialSession ? { sessionId: initialSession } : {}), ref: createRef() },
  ]);
  const [active, setActive] = useState(0);
  const [states, setStates] = useState<Record<number, PaneState>>({});
  const [ctrl, setCtrl] = useState(false);
  const [alt, setAlt] = useState(false);
  const [share, setShare] = useState<
    { created: CreatedShare; sessionId: string } | { error: ApiError } | null
  >(null);
  const [sharing, setSharing] = useState(false);
  const [pasteNote, setPasteNote] = useState<string | null>(null);
  const current = states[active];
  const activeTab = tabs.find((t) => t.key === active);

  // The address names the visible session, so a reload (or this link on another device) rejoins it.
  useEffect(() => {
    const sid = current?.sessionId;
    const u = new URL(window.location.href);
    if (sid) u.searchParams.set('session', sid);
    else u.searchParams.delete('session');
    if (u.href !== window.location.href) window.history.replaceState(window.history.state, '', u.href);
  }, [current?.sessionId]);

  const onState = useCallback((key: number, s: PaneState) => setStates((m) => ({ ...m, [key]: s })), []);
  const consume = useCallback(() => {
    setCtrl(false);
    setAlt(false);
  }, []);

  function addTab() {
    const key = next.current++;
    setTabs((ts) => [...ts, { key, ref: createRef() }]);
    setActive(key);
    setShare(null);
  }

  function closeTab(key: number) {
    setTabs((ts) => {
      const rest = ts.filter((t) => t.key !== key);
      if (key === active && rest.length) setActive(rest[rest.length - 1]!.key);
      return rest;
    });
    setStates((m) => {
      const { [key]: _gone, ...rest } = m;
      return rest;
    });
    setShare(null);
  }

  function sendKey(data: string) {
    let out = data;
    if (out.length === 1 && ctrl) out = ctrlKey(out);
    if (alt) out = `\x1b${out}`;
    consume();
    activeTab?.ref.current?.send(out);
  }

  async function shareReadOnly() {
    const sid = current?.sessionId;
    if (!sid) return;
    setSharing(true);
    try {
      // A link with its own token: whoever opens it (signed in as anyone) gets observer tickets from it.
      setShare({ created: await api.terminals.share(env.id, sid), sessionId: sid });
    } catch (err) {
      const e = toApiError(err);
      if (e.unauthorized) return expired();
      setShare({ error: e });
    } finally {
      setSharing(false);
    }
  }

  async function paste() {
    setPasteNote(null);
    try {
      if (!navigator.clipboard?.readText || !window.isSecureContext) throw new Error('no clipboard');
      const text = await navigator.clipboard.readText();
      if (text) activeTab?.ref.current?.paste(text);
      activeTab?.ref.current?.focus();
    } catch {
      setPasteNote(
        'This browser does not let the page read the clipboard here: paste with Ctrl+Shift+V (⌘V on a Mac), or long-press the terminal on a phone.',
      );
    }
  }

  return (
    <div className="term-page">
      <div className="term-head">
        <div className="term-title">
          <Link href={`/environments/view?id=${env.id}`} className="term-env" title="Environment details">
            {env.name}
          </Link>
          <EnvStateBadge state={env.state} />
          {observe ? (
            <span className="badge badge-accent" data-testid="read-only">
              read-only
            </span>
          ) : null}
          <span
            className={`live ${current?.status === 'open' ? 'live-on' : ''}`}
            data-testid="term-status"
            data-status={current?.status ?? 'ticket'}
          >
            {STATUS_TEXT[current?.status ?? 'ticket']}
          </span>
        </div>
        <div className="term-tools">
          <CopyButton label="Copy" getText={() => activeTab?.ref.current?.copyText() ?? ''} />
          {!observe ? (
            <>
              <button type="button" className="btn btn-small" onClick={() => void paste()}>
                Paste
              </button>
              <button
                type="button"
                className="btn btn-small"
                disabled={!current?.sessionId || sharing}
                onClick={() => void shareReadOnly()}
              >
                {sharing ? 'Sharing…' : 'Share read-only'}
              </button>
            </>
          ) : null}
        </div>
      </div>

      <div className="term-tabs" role="tablist" aria-label="Terminals">
        {tabs.map((t, i) => {
          const st = states[t.key];
          const label = `Terminal ${i + 1}`;
          return (
            <div key={t.key} className={`term-tab${t.key === active ? ' term-tab-on' : ''}`}>
              <button
                type="button"
                role="tab"
                aria-selected={t.key === active}
                className="term-tab-btn"
                onClick={() => {
                  setActive(t.key);
                  setShare(null);
                }}
              >
                <span className={`dot-status status-${st?.status ?? 'ticket'}`} aria-hidden="true" />
                {label}
              </button>
              {tabs.length > 1 ? (
                <button
                  type="button"
                  className="term-tab-close"
                  aria-label={`Close ${label}`}
                  onClick={() => closeTab(t.key)}
                >
                  ×
                </button>
              ) : null}
            </div>
          );
        })}
        {!observe ? (
          <button type="button" className="term-tab-add" onClick={addTab} aria-label="New terminal">
            +
          </button>
        ) : null}
      </div>

      {share ? (
        'created' in share ? (
          <SharePanel
            envId={env.id}
            sessionId={share.sessionId}
            first={share.created}
            onClose={() => setShare(null)}
          />
        ) : (
          <ErrorNotice error={share.error} />
        )
      ) : null}
      {pasteNote ? <p className="notice small">{pasteNote}</p> : null}
      {current?.error ? <ErrorNotice error={current.error} /> : null}
      {current?.exited ? (
        <p className="notice small" data-testid="term-exited">
          The shell exited{current.exited.code ? ` with code ${current.exited.code}` : ''}. Open a new
          terminal with +.
        </p>
      ) : null}
      {current?.status === 'reconnecting' ? (
        <p className="term-banner" role="status" data-testid="reconnecting">
          Connection lost, reconnecting… what you type is sent once it is back.
        </p>
      ) : null}

      <div className="term-frame">
        {tabs.map((t) => (
          <TerminalPane
            key={t.key}
            envId={env.id}
            {...(t.sessionId ? { sessionId: t.sessionId } : {})}
            observe={observe}
            visible={t.key === active}
            modifiers={{ ctrl, alt, consume }}
            onState={(s) => onState(t.key, s)}
            handle={t.ref}
          />
        ))}
      </div>

      {!observe ? (
        <div className="keybar" role="toolbar" aria-label="Extra keys">
          <button
            type="button"
            className={`key${ctrl ? ' key-on' : ''}`}
            aria-pressed={ctrl}
            onPointerDown={(e) => e.preventDefault()}
            onClick={() => setCtrl((c) => !c)}
          >
            Ctrl
          </button>
          <button
            type="button"
            className={`key${alt ? ' key-on' : ''}`}
            aria-pressed={alt}
            onPointerDown={(e) => e.preventDefault()}
            onClick={() => setAlt((a) => !a)}
          >
            Alt
          </button>
          {KEYS.map((k) => (
            <button
              key={k.aria}
              type="button"
              className="key"
              aria-label={k.aria}
              // Keep the focus (and the phone keyboard) on the terminal.
              onPointerDown={(e) => e.preventDefault()}
              onClick={() => sendKey(k.send)}
            >
              {k.label}
            </button>
          ))}
        </div>
      ) : null}
    </div>
  );
}

function TerminalForEnv({
  envId,
  session,
  observe,
}: {
  envId: string;
  session: string | null;
  observe: boolean;
}) {
  const env = useApi(() => api.environments.get(envId), `env:${envId}`);
  return (
    <Loadable state={env} onRetry={env.reload}>
      {({ environment: e }) =>
        e.state === 'ready' ? (
          <TerminalWorkspace env={e} initialSession={session} observe={observe} />
        ) : (
          <div className="stack">
            <ErrorNotice
              error={
                new ApiError(
                  409,
                  'environment_not_ready',
                  `environment ${e.name} is ${e.state}`,
                  e.state === 'stopped'
                    ? 'start it on its page, then open the terminal again'
                    : 'wait until it is ready on its page',
                )
              }
            />
            <Link href={`/environments/view?id=${e.id}`} className="btn">
              Go to {e.name}
            </Link>
          </div>
        )
      }
    </Loadable>
  );
}

function TerminalPageInner() {
  const q = useSearchParams();
  const envId = q.get('env');
  if (!envId)
    return (
      <ErrorNotice
        error={
          new ApiError(400, 'missing_env', 'no environment given', 'open a terminal from an environment')
        }
      />
    );
  // Read once: later changes of `session` are this page keeping the address in step.
  const session = q.get('session');
  // Watching needs a session to watch; without one this opens a shell of your own.
  return <TerminalForEnv envId={envId} session={session} observe={q.get('observe') === '1' && !!session} />;
}

export default function TerminalPage() {
  return (
    <Suspense fallback={<Loading />}>
      <TerminalPageInner />
    </Suspense>
  );
}
