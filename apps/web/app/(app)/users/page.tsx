'use client';

import Link from 'next/link';
import { useState, type FormEvent } from 'react';
import { ConfirmDialog } from '@/components/confirm';
import { LoadMore } from '@/components/load-more';
import { Empty, ErrorNotice, Loadable } from '@/components/status';
import { ApiError, api, toApiError, type Role, type User } from '@/lib/api';
import { formatDate, formatDateTime } from '@/lib/format';
import { useSession } from '@/lib/session';
import { usePagedList, type PagedList } from '@/lib/use-paged';

const PAGE_SIZE = 50;
const MIN_PASSWORD = 8;

function CreateUserForm({ onStart, onCreated }: { onStart: () => void; onCreated: (u: User) => void }) {
  const { expired } = useSession();
  const [email, setEmail] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<Role>('member');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    onStart();
    setBusy(true);
    try {
      const { user } = await api.users.create({
        email,
        password,
        role,
        ...(displayName.trim() ? { displayName: displayName.trim() } : {}),
      });
      setEmail('');
      setDisplayName('');
      setPassword('');
      setRole('member');
      onCreated(user);
    } catch (err) {
      const e2 = toApiError(err);
      if (e2.unauthorized) expired();
      else setError(e2);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="card stack" onSubmit={(e) => void submit(e)} aria-labelledby="new-user-h">
      <h2 id="new-user-h">New user</h2>
      {error ? <ErrorNotice error={error} /> : null}
      <div className="form-row">
        <label className="field grow">
          <span>Email</span>
          <input
            type="email"
            name="email"
            autoComplete="off"
            autoCapitalize="none"
            spellCheck={false}
            required
            value={email}
            onChange={(e) => setEmail(e.target.value)}
          />
        </label>
        <label className="field grow">
          <span>Name (optional)</span>
          <input
            name="displayName"
            autoComplete="off"
            maxLength={100}
            value={displayName}
            onChange={(e) => setDisplayName(e.target.value)}
          />
        </label>
      </div>
      <div className="form-row">
        <label className="field grow">
          <span>First password</span>
          <input
            type="password"
            name="password"
            autoComplete="new-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        <label className="field">
          <span>Role</span>
          <select name="role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
            <option value="member">member</option>
            <option value="admin">admin</option>
          </select>
        </label>
      </div>
      <p className="muted small">
        Give the person their password another way; they can sign in and use Berth at once.
      </p>
      <div>
        <button
          type="submit"
          className="btn btn-primary"
          disabled={busy || !email.trim() || password.length < MIN_PASSWORD}
        >
          {busy ? 'Creating…' : 'Create user'}
        </button>
      </div>
    </form>
  );
}

type Action = { kind: 'role' | 'password' | 'delete'; user: User };

function ActionDialog({
  action,
  paged,
  onClose,
}: {
  action: Action | null;
  paged: PagedList<User>;
  onClose: () => void;
}) {
  const { me, expired } = useSession();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [password, setPassword] = useState('');
  const [currentPassword, setCurrentPassword] = useState('');
  const u = action?.user;
  // Your own password needs the current one (the API insists); someone else's is a reset.
  const self = u?.id === me.user.id;
  const newRole: Role = u?.role === 'admin' ? 'member' : 'admin';

  function close() {
    setError(null);
    setPassword('');
    setCurrentPassword('');
    onClose();
  }

  async function run() {
    if (!action) return;
    setError(null);
    if (action.kind === 'password' && password.length < MIN_PASSWORD) {
      setError(
        new ApiError(
          400,
          'weak_password',
          `the password is shorter than ${MIN_PASSWORD} characters`,
          'choose a longer password',
        ),
      );
      return;
    }
    if (action.kind === 'password' && self && !currentPassword) {
      setError(
        new ApiError(
          400,
          'current_password_required',
          'changing your password needs your current password',
          'type it above; if you forgot it, ask another admin to reset it',
        ),
      );
      return;
    }
    setBusy(true);
    try {
      if (action.kind === 'delete') {
        await api.users.remove(action.user.id);
        paged.remove(action.user.id);
      } else {
        const body =
          action.kind === 'role' ? { role: newRole } : self ? { password, currentPassword } : { password };
        paged.replace((await api.users.update(action.user.id, body)).user);
      }
      close();
    } catch (err) {
      const e = toApiError(err);
      if (e.unauthorized) expired();
      else setError(e);
    } finally {
      setBusy(false);
    }
  }

  const who = u ? (u.displayName ?? u.email) : '';
  const title =
    action?.kind === 'delete'
      ? `Delete ${who}?`
      : action?.kind === 'role'
        ? `Make ${who} ${newRole === 'admin' ? 'an admin' : 'a member'}?`
        : self
          ? 'Change your password'
          : `New password for ${who}`;
  return (
    <ConfirmDialog
      open={action !== null}
      title={title}
      tone={action?.kind === 'delete' ? 'danger' : 'primary'}
      confirmLabel={
        action?.kind === 'delete'
          ? 'Delete user'
          : action?.kind === 'role'
            ? `Make ${newRole}`
            : 'Set password'
      }
      busy={busy}
      onCancel={close}
      onConfirm={() => void run()}
    >
      {action?.kind === 'delete' ? (
        <p>Their sessions and API tokens stop working at once. This cannot be undone.</p>
      ) : null}
      {action?.kind === 'role' ? (
        <p>
          {newRole === 'admin'
            ? 'Admins manage users and can create tokens with the admin permission.'
            : 'They keep their account but lose admin rights.'}
        </p>
      ) : null}
      {action?.kind === 'password' && self ? (
        <label className="field">
          <span>Current password</span>
          <input
            type="password"
            name="current-password"
            autoComplete="current-password"
            value={currentPassword}
            onChange={(e) => setCurrentPassword(e.target.value)}
          />
        </label>
      ) : null}
      {action?.kind === 'password' ? (
        <label className="field">
          <span>{self ? 'New password' : 'Password'}</span>
          <input
            type="password"
            name="new-password"
            autoComplete="new-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
          <small className="muted">
            At least {MIN_PASSWORD} characters.{' '}
            {self ? 'Your other sessions stay signed in.' : 'Their other sessions stay signed in.'}
          </small>
        </label>
      ) : null}
      {error ? <ErrorNotice error={error} /> : null}
    </ConfirmDialog>
  );
}

function UserRow({
  u,
  self,
  onAction,
}: {
  u: User;
  self: boolean;
  onAction: (kind: Action['kind']) => void;
}) {
  return (
    <tr data-testid="user-row" data-user-email={u.email}>
      <td data-label="Email">
        <span>
          <strong>{u.email}</strong> {self ? <span className="badge">you</span> : null}
        </span>
      </td>
      <td data-label="Name">{u.displayName ?? <span className="muted">—</span>}</td>
      <td data-label="Role">
        <span className={`badge ${u.role === 'admin' ? 'badge-accent' : ''}`} data-testid="user-role">
          {u.role}
        </span>
      </td>
      <td data-label="Created" title={formatDateTime(u.createdAt)}>
        {formatDate(u.createdAt)}
      </td>
      <td className="actions">
        <span className="row-wrap row-end">
          {self ? null : (
            <button type="button" className="btn btn-small" onClick={() => onAction('role')}>
              {u.role === 'admin' ? 'Make member' : 'Make admin'}
            </button>
          )}
          <button type="button" className="btn btn-small" onClick={() => onAction('password')}>
            {self ? 'Change password' : 'Reset password'}
          </button>
          {self ? null : (
            <button
              type="button"
              className="btn btn-small btn-danger-outline"
              onClick={() => onAction('delete')}
              aria-label={`Delete ${u.email}`}
            >
              Delete
            </button>
          )}
        </span>
      </td>
    </tr>
  );
}

function AdminUsers() {
  const { me } = useSession();
  const paged = usePagedList((cursor) => api.users.list({ limit: PAGE_SIZE, cursor }), 'users');
  const [action, setAction] = useState<Action | null>(null);
  const [created, setCreated] = useState<User | null>(null);

  return (
    <>
      <CreateUserForm
        onStart={() => setCreated(null)}
        onCreated={(u) => {
          setCreated(u);
          paged.append(u);
        }}
      />
      {created ? (
        <div className="notice notice-success" role="status" data-testid="user-created">
          <p className="notice-title">
            {created.email} can now sign in as {created.role === 'admin' ? 'an admin' : 'a member'}.
          </p>
        </div>
      ) : null}
      <section className="stack" aria-labelledby="users-h">
        <h2 id="users-h">People</h2>
        <Loadable state={paged.list} onRetry={paged.list.reload}>
          {(page) =>
            page.items.length === 0 ? (
              <Empty title="No users" />
            ) : (
              <div className="stack">
                <table className="table responsive" data-testid="user-table">
                  <thead>
                    <tr>
                      <th>Email</th>
                      <th>Name</th>
                      <th>Role</th>
                      <th>Created</th>
                      <th>
                        <span className="sr-only">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {page.items.map((u) => (
                      <UserRow
                        key={u.id}
                        u={u}
                        self={u.id === me.user.id}
                        onAction={(kind) => setAction({ kind, user: u })}
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
      <ActionDialog action={action} paged={paged} onClose={() => setAction(null)} />
    </>
  );
}

export default function UsersPage() {
  const { me } = useSession();
  return (
    <div className="stack-lg">
      <div className="page-head">
        <h1>Users</h1>
        <p className="muted">
          Everyone who can sign in to this Berth. Each person sees only their own environments, tasks and
          tokens.
        </p>
      </div>
      {me.user.role === 'admin' ? (
        <AdminUsers />
      ) : (
        <Empty title="Only admins manage users">
          <p className="muted">
            Ask an admin to add people. <Link href="/">Back to the home page</Link>
          </p>
        </Empty>
      )}
    </div>
  );
}
