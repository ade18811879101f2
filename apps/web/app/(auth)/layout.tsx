import type { ReactNode } from 'react';

/** Sign-in and first-run pages: one centred card, no navigation. */
export default function AuthLayout({ children }: { children: ReactNode }) {
  return (
    <div className="center-page">
      <div className="auth-wrap">
        <div className="auth-brand">
          <span className="brand-mark" aria-hidden="true" />
          Berth
        </div>
        {children}
      </div>
    </div>
  );
}
