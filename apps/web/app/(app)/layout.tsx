'use client';

import type { ReactNode } from 'react';
import { AppShell } from '@/components/app-shell';
import { ErrorNotice, Loading } from '@/components/status';
import { SessionProvider } from '@/lib/session';

/** Every page in this group needs a signed-in user. */
export default function SignedInLayout({ children }: { children: ReactNode }) {
  return (
    <SessionProvider
      fallback={
        <div className="center-page">
          <Loading />
        </div>
      }
      failed={(error, retry) => (
        <div className="center-page">
          <div className="card auth-card">
            <ErrorNotice error={error} onRetry={retry} title="Berth could not load your account" />
          </div>
        </div>
      )}
    >
      <AppShell>{children}</AppShell>
    </SessionProvider>
  );
}
