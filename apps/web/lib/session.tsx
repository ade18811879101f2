'use client';

import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { useRouter } from 'next/navigation';
import { api, toApiError, type ApiError, type Me, type User } from './api';

interface Session {
  me: Me & { user: User };
  /** Call when any request answers 401: the session ended, so go to the sign-in page. */
  expired: () => void;
  signOut: () => Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside <SessionProvider>');
  return s;
}

/** Where /login sends the user back to after signing in; only paths on this site. */
export function safeNext(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

/**
 * Loads who is signed in before rendering the signed-in pages; without a session it goes to
 * /login and remembers the page to come back to.
 */
export function SessionProvider({
  children,
  fallback,
  failed,
}: {
  children: ReactNode;
  fallback: ReactNode;
  failed: (error: ApiError, retry: () => void) => ReactNode;
}) {
  const router = useRouter();
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [attempt, setAttempt] = useState(0);

  // Stable across navigations (reads the address when called), so /me is not refetched on each page change.
  const expired = useCallback(() => {
    const here = window.location.pathname + window.location.search;
    router.replace(here && here !== '/' ? `/login?next=${encodeURIComponent(here)}` : '/login');
  }, [router]);

  useEffect(() => {
    let live = true;
    setError(null);
    api.me().then(
      (m) => {
        if (!live) return;
        if (m.user) setMe(m);
        else expired(); // the account was deleted while the session lived
      },
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
  }, [attempt, expired]);

  const signOut = useCallback(async () => {
    // Leave even if the server is gone: the cookie is httpOnly, so the server clears it.
    await api.logout().catch(() => undefined);
    router.replace('/login');
  }, [router]);

  const value = useMemo(
    () => (me?.user ? { me: me as Session['me'], expired, signOut } : null),
    [me, expired, signOut],
  );
  if (error) return <>{failed(error, () => setAttempt((n) => n + 1))}</>;
  if (!value) return <>{fallback}</>;
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}
