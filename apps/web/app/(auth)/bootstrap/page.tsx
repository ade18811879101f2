'use client';

import Link from 'next/link';
import { useRouter, useSearchParams } from 'next/navigation';
import { Suspense, useState, type FormEvent } from 'react';
import { ErrorNotice } from '@/components/status';
import { ApiError, api, toApiError } from '@/lib/api';

const MIN_PASSWORD = 8;

/** First run: the one-time token printed by `berth server` becomes the admin account. */
function BootstrapForm() {
  const router = useRouter();
  const token = useSearchParams().get('token') ?? '';
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  if (!token) {
    return (
      <div className="card auth-card stack">
        <h1>Set up Berth</h1>
        <ErrorNotice
          error={
            new ApiError(
              400,
              'missing_token',
              'this page needs the one-time setup link',
              'open the full link that `berth server` printed on its first start; it ends with ?token=…',
            )
          }
        />
        <p>
          <Link href="/login">Sign in instead</Link>
        </p>
      </div>
    );
  }

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    // Checked here too so a typo is caught before the single-use token is spent.
    if (password.length < MIN_PASSWORD) {
      setError(
        new ApiError(
          400,
          'weak_password',
          `the password is shorter than ${MIN_PASSWORD} characters`,
          'choose a longer password; a phrase of a few words works well',
        ),
      );
      return;
    }
    if (password !== confirm) {
      setError(
        new ApiError(
          400,
          'password_mismatch',
          'the two passwords differ',
          'type the same password in both fields',
        ),
      );
      return;
    }
    setBusy(true);
    try {
      await api.bootstrap(token, email, password);
      router.replace('/');
    } catch (err) {
      setError(toApiError(err));
      setBusy(false);
    }
  }

  return (
    <form className="card auth-card stack" onSubmit={(e) => void submit(e)}>
      <h1>Set up Berth</h1>
      <p className="muted">Create the administrator account. This link works once.</p>
      {error ? <ErrorNotice error={error} /> : null}
      <label className="field">
        <span>Admin email</span>
        <input
          type="email"
          name="email"
          autoComplete="username"
          autoCapitalize="none"
          spellCheck={false}
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
        />
      </label>
      <label className="field">
        <span>Password</span>
        <input
          type="password"
          name="password"
          autoComplete="new-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
        <small className="muted">At least {MIN_PASSWORD} characters.</small>
      </label>
      <label className="field">
        <span>Confirm password</span>
        <input
          type="password"
          name="confirm"
          autoComplete="new-password"
          required
          value={confirm}
          onChange={(e) => setConfirm(e.target.value)}
        />
      </label>
      <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
        {busy ? 'Creating…' : 'Create admin account'}
      </button>
    </form>
  );
}

export default function BootstrapPage() {
  return (
    <Suspense fallback={null}>
      <BootstrapForm />
    </Suspense>
  );
}
