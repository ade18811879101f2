'use client';

import { useState, type FormEvent } from 'react';
import { ConfirmDialog } from '@/components/confirm';
import { CopyButton } from '@/components/copy-button';
import { ErrorNotice, Loadable } from '@/components/status';
import { request, toApiError, type ApiError, type Environment } from '@/lib/api';
import { useApi } from '@/lib/use-api';

// Mirrors PortList in packages/protocol/src/ports.ts (the web app keeps its own API types).
type Sharing = 'owner' | 'authenticated' | 'public';
interface PortInfo {
  port: number;
  listening: boolean | null;
  declared: boolean;
  sharing: Sharing;
  addresses: string[];
  previewUrl: string;
}
interface PortList {
  ports: PortInfo[];
  gateway: 'ok' | 'unreachable' | 'not_ready';
}

const SHARING: Record<Sharing, string> = {
  owner: 'Only me',
  authenticated: 'Signed-in users',
  public: 'Public',
};

/** Same-origin path of the preview link: it redirects to the gateway with a fresh ticket. */
const linkPath = (envId: string, port: number) => `/p/${envId}/${port}`;

/**
 * Ports of the environment: what listens (read by its gateway) and what devcontainer.json
 * declares. Open goes through the preview link, so every open is checked and audited by the
 * control plane; making a port public asks first.
 */
export function EnvPorts({ env, nudge }: { env: Environment; nudge: number }) {
  const [again, setAgain] = useState(0);
  const ports = useApi(
    () => request<PortList>('GET', `/environments/${encodeURIComponent(env.id)}/ports`),
    `ports:${env.id}:${nudge}:${again}`,
  );
  const [pending, setPending] = useState<{ port: number; sharing: Sharing } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [other, setOther] = useState('');

  async function share(port: number, sharing: Sharing) {
    setBusy(true);
    setError(null);
    try {
      await request('PUT', `/environments/${encodeURIComponent(env.id)}/ports/${port}/sharing`, { sharing });
      setAgain((n) => n + 1);
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
      setPending(null);
    }
  }

  function choose(port: number, sharing: Sharing) {
    if (sharing === 'public') setPending({ port, sharing });
    else void share(port, sharing);
  }

  function openOther(e: FormEvent) {
    e.preventDefault();
    const n = Number(other);
    if (Number.isInteger(n) && n >= 1 && n <= 65535) window.open(linkPath(env.id, n), '_blank', 'noopener');
  }

  return (
    <section className="card stack" aria-labelledby="ports-h">
      <div className="log-head">
        <h2 id="ports-h">Ports</h2>
        <button
          type="button"
          className="btn btn-small"
          onClick={() => setAgain((n) => n + 1)}
          disabled={ports.loading}
        >
          Refresh
        </button>
      </div>
      {error ? <ErrorNotice error={error} /> : null}
      <Loadable state={ports} onRetry={ports.reload}>
        {({ ports: list, gateway }) => (
          <>
            {gateway === 'unreachable' ? (
              <p className="muted small">The environment did not answer; listening ports are unknown.</p>
            ) : null}
            {list.length === 0 ? (
              <p className="muted">
                Nothing listens on a port yet. Start a server in a terminal (on 127.0.0.1 or 0.0.0.0) and
                refresh.
              </p>
            ) : (
              <ul className="sessions" data-testid="ports">
                {list.map((p) => (
                  <li key={p.port} className="session" data-port={p.port}>
                    <div className="session-what">
                      <span>
                        <code>{p.port}</code>{' '}
                        {p.sharing === 'public' ? (
                          <span className="badge badge-danger" data-testid="port-public">
                            Public
                          </span>
                        ) : p.sharing === 'authenticated' ? (
                          <span className="badge badge-accent">Signed-in users</span>
                        ) : null}
                      </span>
                      <span className="muted small">
                        {p.listening === null ? 'unknown' : p.listening ? 'listening' : 'not listening'}
                        {p.declared ? ' · in forwardPorts' : ''}
                      </span>
                    </div>
                    <div className="row-wrap">
                      <a
                        className="btn btn-small btn-primary"
                        href={linkPath(env.id, p.port)}
                        target="_blank"
                        rel="noopener noreferrer"
                      >
                        Open
                      </a>
                      <CopyButton text={p.previewUrl} label="Copy link" />
                      <label className="sr-only" htmlFor={`share-${p.port}`}>
                        Who can open port {p.port}
                      </label>
                      <select
                        id={`share-${p.port}`}
                        value={p.sharing}
                        disabled={busy}
                        onChange={(e) => choose(p.port, e.target.value as Sharing)}
                      >
                        {(Object.keys(SHARING) as Sharing[]).map((s) => (
                          <option key={s} value={s}>
                            {SHARING[s]}
                          </option>
                        ))}
                      </select>
                    </div>
                  </li>
                ))}
              </ul>
            )}
            <form className="row-wrap" onSubmit={openOther}>
              <label className="sr-only" htmlFor="port-other">
                Port number
              </label>
              <input
                id="port-other"
                inputMode="numeric"
                pattern="[0-9]*"
                placeholder="Port"
                value={other}
                onChange={(e) => setOther(e.target.value)}
                style={{ width: '7rem' }}
              />
              <button type="submit" className="btn btn-small">
                Open port
              </button>
            </form>
          </>
        )}
      </Loadable>
      <ConfirmDialog
        open={pending !== null}
        title={`Make port ${pending?.port ?? ''} public?`}
        confirmLabel="Make public"
        busy={busy}
        onConfirm={() => pending && void share(pending.port, pending.sharing)}
        onCancel={() => setPending(null)}
      >
        <p>
          Anyone with the link can open it, without signing in. Only do this for something you would put on
          the internet.
        </p>
      </ConfirmDialog>
    </section>
  );
}
