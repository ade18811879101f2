'use client';

import { ErrorNotice } from './status';
import type { PagedList } from '@/lib/use-paged';

export function LoadMore<T>({ paged }: { paged: PagedList<T> }) {
  return (
    <>
      {paged.more.error ? <ErrorNotice error={paged.more.error} /> : null}
      {paged.list.data?.nextCursor ? (
        <div>
          <button
            type="button"
            className="btn"
            disabled={paged.more.busy}
            onClick={() => void paged.loadMore()}
          >
            {paged.more.busy ? 'Loading…' : 'Load more'}
          </button>
        </div>
      ) : null}
    </>
  );
}
