import { getTask, isTerminal, readLog, type Pool, type TaskRow } from '@berth/db';

export type FollowEvent =
  { type: 'output'; offset: number; nextOffset: number; data: Buffer } | { type: 'end'; task: TaskRow };

export interface FollowOptions {
  pool: Pool;
  taskId: string;
  offset: number;
  signal: AbortSignal;
  /** Nudged on every notice about the task (LiveService.watchTask); returns the unsubscribe. */
  watch: (onNotice: () => void) => () => void;
  /** Only cut output at a complete UTF-8 character, so each piece decodes on its own. */
  utf8?: boolean;
  /** Re-read this often even without a notice: covers a LISTEN connection that was down. */
  fallbackMs?: number;
  pageBytes?: number;
}

/** How many leading bytes of `b` end on a complete UTF-8 character. */
export function completeUtf8Length(b: Buffer): number {
  // Look back at most 3 bytes for the lead byte of a sequence that may be cut short.
  for (let back = 1; back <= Math.min(3, b.length); back++) {
    const byte = b[b.length - back]!;
    if ((byte & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return need > back ? b.length - back : b.length;
  }
  return b.length;
}

/**
 * A task's output from `offset` to its end, as it is stored, then one `end` event. Driven by
 * live notices (a stored chunk, a state change), so a follower sees output within a flush of
 * the worker writing it, from whichever replica it is connected to. The caller has already
 * checked the task is the user's.
 */
export async function* followTaskOutput(o: FollowOptions): AsyncGenerator<FollowEvent> {
  let dirty = true;
  let wake: (() => void) | undefined;
  const nudge = () => {
    dirty = true;
    wake?.();
  };
  const unwatch = o.watch(nudge);
  const onAbort = () => wake?.();
  o.signal.addEventListener('abort', onAbort);
  const fallback = setInterval(nudge, o.fallbackMs ?? 5000);
  let offset = o.offset;
  try {
    while (!o.signal.aborted) {
      if (!dirty) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        continue;
      }
      dirty = false;
      // State first: a terminal task's last output was stored in the transaction that ended it,
      // so everything up to totalBytes read after this is all there will be.
      const task = await getTask(o.pool, o.taskId);
      if (!task) return;
      const terminal = isTerminal(task.state);
      for (;;) {
        const slice = await readLog(o.pool, o.taskId, offset, o.pageBytes ?? 256 * 1024);
        if (slice.data.length === 0) break;
        const last = slice.nextOffset >= slice.totalBytes;
        const keep = o.utf8 && !(terminal && last) ? completeUtf8Length(slice.data) : slice.data.length;
        if (keep === 0) break;
        const data = slice.data.subarray(0, keep);
        yield { type: 'output', offset, nextOffset: offset + keep, data };
        offset += keep;
        if (o.signal.aborted || last) break;
      }
      if (terminal) {
        const end = await getTask(o.pool, o.taskId);
        if (end && Number(end.log_bytes) <= offset) {
          yield { type: 'end', task: end };
          return;
        }
        dirty = true;
      }
    }
  } finally {
    clearInterval(fallback);
    unwatch();
    o.signal.removeEventListener('abort', onAbort);
  }
}
