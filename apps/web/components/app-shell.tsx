'use client';

import Link from 'next/link';
import { usePathname } from 'next/navigation';
import { useEffect, useState, type ReactNode } from 'react';
import { useSession } from '@/lib/session';

// Pages of the signed-in app. Environments, tasks and secrets join this list as their APIs land.
const LINKS: Array<{ href: string; label: string; adminOnly?: boolean }> = [
  { href: '/', label: 'Home' },
  { href: '/environments', label: 'Environments' },
  { href: '/tasks', label: 'Tasks' },
  { href: '/tokens', label: 'API tokens' },
  { href: '/secrets', label: 'Secrets' },
  { href: '/users', label: 'Users', adminOnly: true },
];

function isActive(pathname: string, href: string): boolean {
  const p = pathname.replace(/\.html$/, '').replace(/\/$/, '') || '/';
  return href === '/' ? p === '/' : p === href || p.startsWith(`${href}/`);
}

/** Header with navigation; below 960 px the links fold into a menu so nothing scrolls sideways or wraps mid-word. */
export function AppShell({ children }: { children: ReactNode }) {
  const { me, signOut } = useSession();
  const pathname = usePathname();
  const [menuOpen, setMenuOpen] = useState(false);
  const [signingOut, setSigningOut] = useState(false);
  useEffect(() => {
    setMenuOpen(false);
  }, [pathname]);

  return (
    <div className="shell">
      <header className="topbar">
        <div className="topbar-inner">
          <Link href="/" className="brand" aria-label="Berth home">
            <span className="brand-mark" aria-hidden="true" />
            Berth
          </Link>
          <button
            type="button"
            className="menu-toggle btn btn-small"
            aria-expanded={menuOpen}
            aria-controls="main-nav"
            onClick={() => setMenuOpen((o) => !o)}
          >
            {menuOpen ? 'Close' : 'Menu'}
          </button>
          <nav id="main-nav" className={`nav${menuOpen ? ' nav-open' : ''}`} aria-label="Main">
            <ul className="nav-links">
              {LINKS.filter((l) => !l.adminOnly || me.user.role === 'admin').map((l) => (
                <li key={l.href}>
                  <Link
                    href={l.href}
                    className={isActive(pathname, l.href) ? 'active' : undefined}
                    aria-current={isActive(pathname, l.href) ? 'page' : undefined}
                  >
                    {l.label}
                  </Link>
                </li>
              ))}
              <li>
                <a href="/api/docs">API docs</a>
              </li>
            </ul>
            <div className="nav-user">
              <span className="nav-email" data-testid="whoami" title={me.user.email}>
                {me.user.email}
              </span>
              <button
                type="button"
                className="btn btn-small"
                disabled={signingOut}
                onClick={() => {
                  setSigningOut(true);
                  void signOut();
                }}
              >
                {signingOut ? 'Signing out…' : 'Sign out'}
              </button>
            </div>
          </nav>
        </div>
      </header>
      <main className="main">{children}</main>
    </div>
  );
}
