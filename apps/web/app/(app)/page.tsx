'use client';

import Link from 'next/link';
import { useEffect, useState } from 'react';
import { CopyButton } from '@/components/copy-button';
import { formatDate } from '@/lib/format';
import { useSession } from '@/lib/session';

export default function HomePage() {
  const { me } = useSession();
  const user = me.user;
  // The page knows its own address only in the browser (a static export has no server side).
  const [origin, setOrigin] = useState('');
  useEffect(() => {
    setOrigin(window.location.origin);
  }, []);
  const loginCmd = `npx berth login --url ${origin || 'http://127.0.0.1:8080'}`;

  return (
    <div className="stack-lg">
      <div className="page-head">
        <h1>Welcome{user.displayName ? `, ${user.displayName}` : ''}</h1>
        <p className="muted">Signed in as {user.email}</p>
      </div>

      <div className="grid">
        <section className="card stack" aria-labelledby="account-h">
          <h2 id="account-h">Your account</h2>
          <dl className="facts">
            <dt>Email</dt>
            <dd data-testid="me-email">{user.email}</dd>
            <dt>Role</dt>
            <dd>
              <span className={`badge ${user.role === 'admin' ? 'badge-accent' : ''}`} data-testid="me-role">
                {user.role}
              </span>
            </dd>
            <dt>Member since</dt>
            <dd>{formatDate(user.createdAt)}</dd>
            <dt>Permissions</dt>
            <dd>{me.scopes.join(', ')}</dd>
          </dl>
        </section>

        <section className="card stack" aria-labelledby="cli-h">
          <h2 id="cli-h">Command line</h2>
          <p className="muted">Sign in from a terminal; the CLI keeps its own token.</p>
          <div className="code-row">
            <code className="code-block">{loginCmd}</code>
            <CopyButton text={loginCmd} />
          </div>
          <p className="muted small">
            Then <code>npx berth whoami</code> to check.
          </p>
        </section>

        <section className="card stack" aria-labelledby="envs-card-h">
          <h2 id="envs-card-h">Environments</h2>
          <p className="muted">
            Machines built from an image and a repository, with terminals you can leave and rejoin from any
            device.
          </p>
          <div>
            <Link href="/environments" className="btn btn-primary">
              Open environments
            </Link>
          </div>
        </section>

        <section className="card stack" aria-labelledby="tasks-card-h">
          <h2 id="tasks-card-h">Tasks</h2>
          <p className="muted">Run a command, follow its output live, and keep its log and exit code.</p>
          <div>
            <Link href="/tasks" className="btn">
              Open tasks
            </Link>
          </div>
        </section>

        <section className="card stack" aria-labelledby="links-h">
          <h2 id="links-h">Automation</h2>
          <p className="muted">
            Scripts and CI use API tokens, sent as <code>Authorization: Bearer …</code>.
          </p>
          <div className="row-wrap">
            <Link href="/tokens" className="btn">
              Manage API tokens
            </Link>
            <a href="/api/docs" className="btn">
              API reference
            </a>
          </div>
        </section>

        {user.role === 'admin' ? (
          <section className="card stack" aria-labelledby="people-h">
            <h2 id="people-h">People</h2>
            <p className="muted">
              Add the people who use this Berth, change their role, or reset a password.
            </p>
            <div>
              <Link href="/users" className="btn">
                Manage users
              </Link>
            </div>
          </section>
        ) : null}
      </div>
    </div>
  );
}
