import Link from 'next/link';

export default function NotFound() {
  return (
    <div className="center-page">
      <div className="card auth-card">
        <h1>Page not found</h1>
        <p className="muted">
          There is no page at this address. It may have moved, or the link may be mistyped.
        </p>
        <p>
          <Link href="/" className="btn btn-primary">
            Go to the home page
          </Link>
        </p>
      </div>
    </div>
  );
}
