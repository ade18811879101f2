'use client';

import { useRouter, useSearchParams } from 'next/navigation';
import { Suspense, useEffect, useState, type FormEvent } from 'react';
import { ErrorNotice } from '@/components/status';
import { api, toApiError, type ApiError } from '@/lib/api';
import { safeNext } from '@/lib/session';

function LoginForm() {
  const router = useRouter();
  const params = useSearchParams();
  const next = safeNext(params.get('next'));
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  // Already signed in (another tab, or the back button): go straight on.
  useEffect(() => {
    let live = true;
    api.me().then(
      (m) => live && m.user && router.replace(next),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [router, next]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.login(email, password);
      router.replace(next);
    } catch (err) {
      setError(toApiError(err));
      setBusy(false);
    }
  }

  return (
    <form className="card auth-card stack" onSubmit={(e) => void submit(e)}>
      <h1>Sign in</h1>
      {error ? <ErrorNotice error={error} /> : null}
      <label className="field">
        <span>Email</span>
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
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
      </label>
      <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
        {busy ? 'Signing in…' : 'Sign in'}
      </button>
      <p className="muted small">
        No account? Ask your Berth admin to create one. Setting up a new server? Open the one-time link that
        <code> berth server</code> printed on its first start.
      </p>
    </form>
  );
}

export default function LoginPage() {
  // useSearchParams needs a Suspense boundary in a static export: the query is known only in the browser.
  return (
    <Suspense fallback={null}>
      <LoginForm />
    </Suspense>
  );
}
