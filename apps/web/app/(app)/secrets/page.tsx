'use client';

import { useEffect, useState, type FormEvent } from 'react';
import { ConfirmDialog } from '@/components/confirm';
import { LoadMore } from '@/components/load-more';
import { Empty, ErrorNotice, Loadable } from '@/components/status';
import {
  api,
  toApiError,
  type ApiError,
  type SecretRef,
  type SecretSettings,
  type SecretSettingsInput,
} from '@/lib/api';
import { formatDate, formatDateTime } from '@/lib/format';
import { useSession } from '@/lib/session';
import { useApi } from '@/lib/use-api';
import { usePagedList } from '@/lib/use-paged';

const EMPTY: SecretSettingsInput = {
  vaultAddress: '',
  authMount: 'jwt',
  role: '',
  audience: '',
  namespace: null,
  caCert: null,
  kvMount: 'secret',
};

function toInput(s: SecretSettings | null): SecretSettingsInput {
  if (!s) return EMPTY;
  const { updatedAt: _u, ...rest } = s;
  return rest;
}

/** Runs one API write; a 401 ends the session, anything else is shown with its hint. */
function useWrite() {
  const { expired } = useSession();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  async function run<T>(fn: () => Promise<T>): Promise<T | undefined> {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (err) {
      const e = toApiError(err);
      if (e.unauthorized) expired();
      else setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  }
  return { busy, error, setError, run };
}

function VaultSettings() {
  const loaded = useApi(() => api.secrets.settings(), 'secret-settings');
  const [form, setForm] = useState<SecretSettingsInput>(EMPTY);
  const [saved, setSaved] = useState<string | null>(null);
  const [confirmRemove, setConfirmRemove] = useState(false);
  const write = useWrite();
  const current = loaded.data?.settings ?? null;
  useEffect(() => {
    if (loaded.data) setForm(toInput(loaded.data.settings));
  }, [loaded.data]);

  const field = (k: keyof SecretSettingsInput) => ({
    name: k,
    value: form[k] ?? '',
    onChange: (e: { target: { value: string } }) => {
      setSaved(null);
      setForm((f) => ({ ...f, [k]: e.target.value }));
    },
  });

  async function save(e: FormEvent) {
    e.preventDefault();
    setSaved(null);
    const body: SecretSettingsInput = {
      ...form,
      namespace: form.namespace?.trim() ? form.namespace.trim() : null,
      caCert: form.caCert?.trim() ? form.caCert.trim() : null,
    };
    const r = await write.run(() => api.secrets.putSettings(body));
    if (!r) return;
    loaded.set(() => ({ settings: r.settings }));
    setSaved(r.changed ? 'Saved.' : 'Nothing changed: these are the settings already saved.');
  }

  async function remove() {
    const r = await write.run(() => api.secrets.deleteSettings());
    setConfirmRemove(false);
    if (!r) return;
    loaded.set(() => ({ settings: null }));
    setSaved('Vault settings removed.');
  }

  return (
    <section className="card stack" aria-labelledby="vault-h">
      <h2 id="vault-h">Your Vault</h2>
      <Loadable state={loaded} onRetry={loaded.reload}>
        {() => (
          <form className="stack" onSubmit={(e) => void save(e)}>
            <p className="muted small">
              {current ? `Last saved ${formatDateTime(current.updatedAt)}.` : 'Not set up yet.'} Vault&apos;s
              JWT auth method should trust this Berth as an OIDC provider (discovery at{' '}
              <code>/.well-known/openid-configuration</code>).
            </p>
            {write.error ? <ErrorNotice error={write.error} /> : null}
            {saved ? (
              <div className="notice notice-success" role="status" data-testid="saved">
                <p>{saved}</p>
              </div>
            ) : null}
            <label className="field">
              <span>Vault address</span>
              <input
                type="url"
                inputMode="url"
                autoCapitalize="none"
                spellCheck={false}
                placeholder="https://vault.example.com:8200"
                required
                {...field('vaultAddress')}
              />
            </label>
            <div className="form-row">
              <label className="field grow">
                <span>JWT role</span>
                <input
                  autoCapitalize="none"
                  spellCheck={false}
                  required
                  placeholder="berth"
                  {...field('role')}
                />
              </label>
              <label className="field grow">
                <span>Audience</span>
                <input
                  autoCapitalize="none"
                  spellCheck={false}
                  required
                  placeholder="vault.example.com"
                  {...field('audience')}
                />
              </label>
            </div>
            <div className="form-row">
              <label className="field grow">
                <span>Auth mount</span>
                <input autoCapitalize="none" spellCheck={false} {...field('authMount')} />
              </label>
              <label className="field grow">
                <span>KV v2 mount</span>
                <input autoCapitalize="none" spellCheck={false} {...field('kvMount')} />
              </label>
              <label className="field grow">
                <span>Namespace (optional)</span>
                <input autoCapitalize="none" spellCheck={false} {...field('namespace')} />
              </label>
            </div>
            <label className="field">
              <span>CA certificate (optional, PEM)</span>
              <textarea
                rows={3}
                spellCheck={false}
                placeholder="-----BEGIN CERTIFICATE-----"
                {...field('caCert')}
              />
            </label>
            <div className="row-wrap">
              <button type="submit" className="btn btn-primary" disabled={write.busy}>
                {write.busy ? 'Saving…' : 'Save'}
              </button>
              {current ? (
                <button
                  type="button"
                  className="btn btn-danger-outline"
                  onClick={() => setConfirmRemove(true)}
                  disabled={write.busy}
                >
                  Remove settings
                </button>
              ) : null}
            </div>
          </form>
        )}
      </Loadable>
      <ConfirmDialog
        open={confirmRemove}
        title="Remove your Vault settings?"
        confirmLabel="Remove"
        busy={write.busy}
        onCancel={() => setConfirmRemove(false)}
        onConfirm={() => void remove()}
      >
        <p>Launches will stop receiving secrets until you set Vault up again. Your references stay.</p>
      </ConfirmDialog>
    </section>
  );
}

function AddRefForm({ onAdded }: { onAdded: (r: SecretRef) => void }) {
  const [env, setEnv] = useState('');
  const [path, setPath] = useState('');
  const [key, setKey] = useState('');
  const write = useWrite();

  async function submit(e: FormEvent) {
    e.preventDefault();
    const r = await write.run(() =>
      api.secrets.addRef({ env: env.trim(), path: path.trim(), key: key.trim() }),
    );
    if (!r) return;
    setEnv('');
    setPath('');
    setKey('');
    onAdded(r.ref);
  }

  return (
    <form className="card stack" onSubmit={(e) => void submit(e)} aria-labelledby="add-ref-h">
      <h2 id="add-ref-h">Add a reference</h2>
      {write.error ? <ErrorNotice error={write.error} /> : null}
      <div className="form-row">
        <label className="field grow">
          <span>Env var</span>
          <input
            name="env"
            autoCapitalize="characters"
            spellCheck={false}
            required
            placeholder="GITHUB_TOKEN"
            value={env}
            onChange={(e) => setEnv(e.target.value)}
          />
        </label>
        <label className="field grow">
          <span>KV path</span>
          <input
            name="path"
            autoCapitalize="none"
            spellCheck={false}
            required
            placeholder="users/me/github"
            value={path}
            onChange={(e) => setPath(e.target.value)}
          />
        </label>
        <label className="field grow">
          <span>Key</span>
          <input
            name="key"
            autoCapitalize="none"
            spellCheck={false}
            required
            placeholder="token"
            value={key}
            onChange={(e) => setKey(e.target.value)}
          />
        </label>
      </div>
      <div>
        <button
          type="submit"
          className="btn btn-primary"
          disabled={write.busy || !env.trim() || !path.trim() || !key.trim()}
        >
          {write.busy ? 'Adding…' : 'Add reference'}
        </button>
      </div>
    </form>
  );
}

function References() {
  const paged = usePagedList((cursor) => api.secrets.refs({ limit: 50, cursor }), 'secret-refs');
  const [removing, setRemoving] = useState<SecretRef | null>(null);
  const write = useWrite();

  async function remove(r: SecretRef) {
    const ok = await write.run(() => api.secrets.removeRef(r.id));
    if (!ok) return;
    paged.remove(r.id);
    setRemoving(null);
  }

  return (
    <>
      <AddRefForm onAdded={paged.append} />
      <section className="stack" aria-labelledby="refs-h">
        <h2 id="refs-h">References</h2>
        <Loadable state={paged.list} onRetry={paged.list.reload}>
          {(page) =>
            page.items.length === 0 ? (
              <Empty title="No secret references yet">
                <p className="muted">
                  Add one above: an env var name and where its value lives in your Vault.
                </p>
              </Empty>
            ) : (
              <div className="stack">
                <table className="table responsive" data-testid="ref-table">
                  <thead>
                    <tr>
                      <th>Env var</th>
                      <th>Vault location</th>
                      <th>Added</th>
                      <th>
                        <span className="sr-only">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {page.items.map((r) => (
                      <tr key={r.id} data-testid="ref-row" data-env={r.env}>
                        <td data-label="Env var">
                          <code>{r.env}</code>
                        </td>
                        <td data-label="Vault location">
                          <code>
                            {r.mount ? `${r.mount}/` : ''}
                            {r.path}#{r.key}
                          </code>
                        </td>
                        <td data-label="Added">{formatDate(r.createdAt)}</td>
                        <td className="actions">
                          <button
                            type="button"
                            className="btn btn-small btn-danger-outline"
                            aria-label={`Remove ${r.env}`}
                            onClick={() => {
                              write.setError(null);
                              setRemoving(r);
                            }}
                          >
                            Remove
                          </button>
                        </td>
                      </tr>
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
        open={removing !== null}
        title={`Remove ${removing?.env ?? ''}?`}
        confirmLabel="Remove reference"
        busy={write.busy}
        onCancel={() => setRemoving(null)}
        onConfirm={() => removing && void remove(removing)}
      >
        <p>New launches will no longer get this variable. The value in your Vault is not touched.</p>
        {write.error ? <ErrorNotice error={write.error} /> : null}
      </ConfirmDialog>
    </>
  );
}

export default function SecretsPage() {
  return (
    <div className="stack-lg">
      <div className="page-head">
        <h1>Secrets</h1>
        <p className="muted">
          Berth never stores secret values. It keeps only where they are in your own Vault; at each launch the
          environment signs in to your Vault with a short-lived identity from Berth and reads them for that
          task alone.
        </p>
      </div>
      <VaultSettings />
      <References />
    </div>
  );
}
