'use client';

import { useEffect, useRef, useState, type FormEvent } from 'react';
import { ConfirmDialog } from '@/components/confirm';
import { CopyButton } from '@/components/copy-button';
import { Empty, ErrorNotice, Loadable } from '@/components/status';
import { LoadMore } from '@/components/load-more';
import { ApiError, api, toApiError, type CreatedToken, type Scope, type Token } from '@/lib/api';
import { formatDate, formatDateTime, relative } from '@/lib/format';
import { useSession } from '@/lib/session';
import { usePagedList } from '@/lib/use-paged';

const PAGE_SIZE = 20;
const EXPIRY_CHOICES = [7, 30, 90, 365];
const SCOPE_HELP: Record<Scope, string> = {
  read: 'read environments, tasks and logs',
  write: 'create, change and delete',
  admin: 'manage users',
};

function CreateTokenForm({ onCreated }: { onCreated: (t: CreatedToken) => void }) {
  const { me, expired } = useSession();
  const grantable = (['read', 'write', 'admin'] as const).filter((s) => me.scopes.includes(s));
  const [name, setName] = useState('');
  const [days, setDays] = useState(90);
  const [scopes, setScopes] = useState<Scope[]>(['read', 'write']);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    if (scopes.length === 0) {
      setError(
        new ApiError(
          400,
          'no_scope',
          'a token needs at least one permission',
          'tick read for a token that only looks',
        ),
      );
      return;
    }
    setBusy(true);
    try {
      const created = await api.tokens.create({ name: name.trim(), expiresInDays: days, scopes });
      setName('');
      onCreated(created);
    } catch (err) {
      const e2 = toApiError(err);
      if (e2.unauthorized) expired();
      else setError(e2);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="card stack" onSubmit={(e) => void submit(e)} aria-labelledby="create-h">
      <h2 id="create-h">New token</h2>
      {error ? <ErrorNotice error={error} /> : null}
      <div className="form-row">
        <label className="field grow">
          <span>Name</span>
          <input
            name="name"
            required
            maxLength={100}
            placeholder="e.g. ci-deploy"
            value={name}
            onChange={(e) => setName(e.target.value)}
          />
        </label>
        <label className="field">
          <span>Expires after</span>
          <select name="expires" value={days} onChange={(e) => setDays(Number(e.target.value))}>
            {EXPIRY_CHOICES.map((d) => (
              <option key={d} value={d}>
                {d} days
              </option>
            ))}
          </select>
        </label>
      </div>
      <fieldset className="field">
        <legend>Permissions</legend>
        <div className="checks">
          {grantable.map((s) => (
            <label key={s} className="check">
              <input
                type="checkbox"
                name={`scope-${s}`}
                checked={scopes.includes(s)}
                onChange={(e) =>
                  setScopes((cur) => (e.target.checked ? [...cur, s] : cur.filter((x) => x !== s)))
                }
              />
              <span>
                <strong>{s}</strong> <span className="muted small">{SCOPE_HELP[s]}</span>
              </span>
            </label>
          ))}
        </div>
      </fieldset>
      <div>
        <button type="submit" className="btn btn-primary" disabled={busy || !name.trim()}>
          {busy ? 'Creating…' : 'Create token'}
        </button>
      </div>
    </form>
  );
}

function NewTokenNotice({ token, onDone }: { token: CreatedToken; onDone: () => void }) {
  // On a phone the form fills the screen; bring the one-time secret into view.
  const ref = useRef<HTMLElement>(null);
  // A block body: newer browsers return a promise from scrollIntoView, and an effect must not return one.
  useEffect(() => {
    ref.current?.scrollIntoView({ block: 'nearest' });
  }, [token.id]);
  return (
    <section
      ref={ref}
      className="notice notice-success stack"
      aria-labelledby="new-token-h"
      data-testid="new-token"
    >
      <h2 id="new-token-h" className="notice-title">
        Token “{token.name}” created
      </h2>
      <p>Copy it now: this is the only time Berth shows it.</p>
      <div className="code-row">
        <code className="code-block secret" data-testid="new-token-value">
          {token.token}
        </code>
        <CopyButton text={token.token} />
      </div>
      <div>
        <button type="button" className="btn btn-small" onClick={onDone}>
          I have copied it
        </button>
      </div>
    </section>
  );
}

function isExpired(t: Token): boolean {
  return t.expiresAt !== null && new Date(t.expiresAt).getTime() <= Date.now();
}

function TokenRow({ t, onRevoke }: { t: Token; onRevoke: () => void }) {
  return (
    <tr data-testid="token-row" data-token-id={t.id}>
      <td data-label="Name">
        <strong className="token-name">{t.name}</strong>
      </td>
      <td data-label="Token">
        <code>{t.prefix}…</code>
      </td>
      <td data-label="Permissions">
        <span className="badges">
          {t.scopes.map((s) => (
            <span key={s} className={`badge ${s === 'admin' ? 'badge-accent' : ''}`}>
              {s}
            </span>
          ))}
        </span>
      </td>
      <td data-label="Created" title={formatDateTime(t.createdAt)}>
        {formatDate(t.createdAt)}
      </td>
      <td data-label="Last used" title={formatDateTime(t.lastUsedAt, 'never')}>
        {relative(t.lastUsedAt)}
      </td>
      <td data-label="Expires" title={formatDateTime(t.expiresAt, 'never')}>
        {isExpired(t) ? (
          <span className="badge badge-danger">expired</span>
        ) : (
          relative(t.expiresAt, Date.now(), 'never')
        )}
      </td>
      <td className="actions">
        <button
          type="button"
          className="btn btn-small btn-danger-outline"
          onClick={onRevoke}
          aria-label={`Revoke ${t.name}`}
        >
          Revoke
        </button>
      </td>
    </tr>
  );
}

export default function TokensPage() {
  const { expired } = useSession();
  const paged = usePagedList((cursor) => api.tokens.list({ limit: PAGE_SIZE, cursor }), 'tokens');
  const [created, setCreated] = useState<CreatedToken | null>(null);
  const [revoking, setRevoking] = useState<Token | null>(null);
  const [revokeState, setRevokeState] = useState<{ busy: boolean; error: ApiError | null }>({
    busy: false,
    error: null,
  });

  async function revoke(t: Token) {
    setRevokeState({ busy: true, error: null });
    try {
      await api.tokens.revoke(t.id);
      paged.remove(t.id);
      if (created?.id === t.id) setCreated(null);
      setRevoking(null);
      setRevokeState({ busy: false, error: null });
    } catch (err) {
      const e = toApiError(err);
      if (e.unauthorized) expired();
      setRevokeState({ busy: false, error: e });
    }
  }

  return (
    <div className="stack-lg">
      <div className="page-head">
        <h1>API tokens</h1>
        <p className="muted">
          Tokens let scripts, CI and the CLI act as you. Send one as <code>Authorization: Bearer …</code>.
          Only you can see your tokens.
        </p>
      </div>

      <CreateTokenForm
        onCreated={(t) => {
          setCreated(t);
          const { token: _secret, ...row } = t;
          paged.append(row);
        }}
      />
      {created ? <NewTokenNotice token={created} onDone={() => setCreated(null)} /> : null}

      <section className="stack" aria-labelledby="list-h">
        <h2 id="list-h">Your tokens</h2>
        <Loadable state={paged.list} onRetry={paged.list.reload}>
          {(page) =>
            page.items.length === 0 ? (
              <Empty title="No API tokens yet">
                <p className="muted">Create one above to use Berth from scripts or CI.</p>
              </Empty>
            ) : (
              <div className="stack">
                <table className="table responsive" data-testid="token-table">
                  <thead>
                    <tr>
                      <th>Name</th>
                      <th>Token</th>
                      <th>Permissions</th>
                      <th>Created</th>
                      <th>Last used</th>
                      <th>Expires</th>
                      <th>
                        <span className="sr-only">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {page.items.map((t) => (
                      <TokenRow
                        key={t.id}
                        t={t}
                        onRevoke={() => {
                          setRevokeState({ busy: false, error: null });
                          setRevoking(t);
                        }}
                      />
                    ))}
                  </tbody>
                </table>
                <LoadMore paged={paged} />
              </div>
            )
          }
        </Loadable>
      </section>

      <ConfirmDialog
        open={revoking !== null}
        title={`Revoke “${revoking?.name ?? ''}”?`}
        confirmLabel="Revoke token"
        busy={revokeState.busy}
        onCancel={() => setRevoking(null)}
        onConfirm={() => revoking && void revoke(revoking)}
      >
        <p>Anything using this token stops working at once. This cannot be undone.</p>
        {revokeState.error ? <ErrorNotice error={revokeState.error} /> : null}
      </ConfirmDialog>
    </div>
  );
}
