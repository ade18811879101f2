'use client';

import { useCallback, useState } from 'react';
import { toApiError, type ApiError, type Page } from './api';
import { useSession } from './session';
import { useApi, type Loaded } from './use-api';

export interface PagedList<T> {
  /** The loaded rows (all pages so far) with the first page's loading/error state. */
  list: Loaded<Page<T>>;
  more: { busy: boolean; error: ApiError | null };
  loadMore: () => Promise<void>;
  /**
   * A row just created (or changed, if already shown): the API lists oldest first, so a new row
   * belongs at the end, shown only once every page is loaded.
   */
  append: (item: T) => void;
  replace: (item: T) => void;
  remove: (id: string) => void;
}

/** A keyset-paginated API list with "Load more", kept in step with local creates, edits and deletes. */
export function usePagedList<T extends { id: string }>(
  load: (cursor?: string) => Promise<Page<T>>,
  key: string,
): PagedList<T> {
  const { expired } = useSession();
  const list = useApi(() => load(), key);
  const [more, setMore] = useState<{ busy: boolean; error: ApiError | null }>({ busy: false, error: null });
  const { set } = list;
  const update = useCallback((f: (p: Page<T>) => Page<T>) => set((p) => (p ? f(p) : p)), [set]);
  const cursor = list.data?.nextCursor ?? null;

  const loadMore = useCallback(async () => {
    if (!cursor) return;
    setMore({ busy: true, error: null });
    try {
      const next = await load(cursor);
      // A row created meanwhile may already be on screen; keep one per id.
      update((p) => {
        const seen = new Set(p.items.map((t) => t.id));
        return {
          items: [...p.items, ...next.items.filter((t) => !seen.has(t.id))],
          nextCursor: next.nextCursor,
        };
      });
      setMore({ busy: false, error: null });
    } catch (err) {
      const e = toApiError(err);
      if (e.unauthorized) expired();
      setMore({ busy: false, error: e });
    }
    // `load` is recreated every render; the cursor is what matters.
  }, [cursor, update, expired]);

  return {
    list,
    more,
    loadMore,
    // Keyed by id inside the state update: two live events for one new row must not add it twice.
    append: (item) =>
      update((p) =>
        p.items.some((x) => x.id === item.id)
          ? { ...p, items: p.items.map((x) => (x.id === item.id ? item : x)) }
          : p.nextCursor
            ? p
            : { ...p, items: [...p.items, item] },
      ),
    replace: (item) => update((p) => ({ ...p, items: p.items.map((x) => (x.id === item.id ? item : x)) })),
    remove: (id) => update((p) => ({ ...p, items: p.items.filter((x) => x.id !== id) })),
  };
}
