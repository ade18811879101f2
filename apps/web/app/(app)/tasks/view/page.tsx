'use client';

import Link from 'next/link';
import { useSearchParams } from 'next/navigation';
import { Suspense, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { ConfirmDialog } from '@/components/confirm';
import { ErrorNotice, Loadable, Loading } from '@/components/status';
import { StateBadge, TimelineChart, formatDuration, isTerminal, taskDuration } from '@/components/task-ui';
import { ApiError, api, toApiError, type Task } from '@/lib/api';
import { joinCommand } from '@/lib/argv';
import { formatDateTime } from '@/lib/format';
import { useLive } from '@/lib/live';
import { useSession } from '@/lib/session';
import { useApi } from '@/lib/use-api';

const POLL_MS = 1000;
const SOURCE_TEXT: Record<string, string> = {
  web: 'the web app',
  mobile: 'the web app on a phone',
  cli: 'the CLI',
  api: 'the API',
};
const MAX_LINES_SHOWN = 5000;

function fromBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * The task's output, read by byte offset (base64, decoded as a stream so a character split
 * across pages stays whole). Polls while the task runs, stops once the server says complete.
 */
function useTaskLog(id: string, running: boolean, nudge: number) {
  const { expired } = useSession();
  const [text, setText] = useState('');
  const [complete, setComplete] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const pos = useRef({ offset: 0, decoder: new TextDecoder() });

  useEffect(() => {
    if (complete) return;
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    async function pull() {
      try {
        for (;;) {
          const page = await api.tasks.logs(id, pos.current.offset);
          if (!live) return;
          const chunk = pos.current.decoder.decode(fromBase64(page.data), { stream: !page.complete });
          pos.current.offset = page.nextOffset;
          if (chunk) setText((t) => t + chunk);
          setError(null);
          if (page.complete) {
            setComplete(true);
            return;
          }
          if (page.nextOffset >= page.totalBytes) break;
        }
      } catch (err) {
        const e = toApiError(err);
        if (e.unauthorized) return expired();
        if (live) setError(e);
      }
      // Output does not announce itself; while the task runs, look again shortly.
      if (live && running) timer = setTimeout(() => void pull(), POLL_MS);
    }
    void pull();
    return () => {
      live = false;
      if (timer) clearTimeout(timer);
    };
  }, [id, running, nudge, complete, expired]);

  return { text, complete, error };
}

function LogView({ task, nudge }: { task: Task; nudge: number }) {
  const { text, complete, error } = useTaskLog(task.id, !isTerminal(task.state), nudge);
  const [follow, setFollow] = useState(true);
  const [query, setQuery] = useState('');
  const box = useRef<HTMLPreElement>(null);

  const lines = useMemo(() => {
    const all = text.split('\n');
    if (all[all.length - 1] === '') all.pop();
    return all;
  }, [text]);
  const q = query.trim().toLowerCase();
  const shown = useMemo(() => {
    const numbered = lines.map((l, i) => ({ n: i + 1, l }));
    if (q) return numbered.filter((x) => x.l.toLowerCase().includes(q));
    return numbered.slice(-MAX_LINES_SHOWN);
  }, [lines, q]);

  useEffect(() => {
    const el = box.current;
    if (follow && !q && el) el.scrollTop = el.scrollHeight;
  }, [shown, follow, q]);

  const download = useCallback(() => {
    const url = URL.createObjectURL(new Blob([text], { type: 'text/plain;charset=utf-8' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `task-${task.id}.log`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }, [text, task.id]);

  return (
    <section className="card stack" aria-labelledby="log-h">
      <div className="log-head">
        <h2 id="log-h">Output</h2>
        <div className="log-tools">
          <label className="field log-search">
            <span className="sr-only">Search the output</span>
            <input
              type="search"
              name="log-search"
              placeholder="Search"
              value={query}
              onChange={(e) => setQuery(e.target.value)}
            />
          </label>
          <label className="check">
            <input
              type="checkbox"
              name="follow"
              checked={follow}
              onChange={(e) => setFollow(e.target.checked)}
            />
            <span>Follow</span>
          </label>
          <button type="button" className="btn btn-small" onClick={download} disabled={!text}>
            Download
          </button>
        </div>
      </div>
      {error ? <ErrorNotice error={error} /> : null}
      {q ? (
        <p className="muted small" data-testid="log-matches">
          {shown.length === 1 ? '1 matching line' : `${shown.length} matching lines`}
        </p>
      ) : lines.length > MAX_LINES_SHOWN ? (
        <p className="muted small">Showing the last {MAX_LINES_SHOWN} lines; download for all of it.</p>
      ) : null}
      <pre
        ref={box}
        className="log"
        data-testid="log"
        tabIndex={0}
        onScroll={(e) => {
          // Scrolling up to read stops following; scrolling back to the end resumes it.
          const el = e.currentTarget;
          const atEnd = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
          if (!q && atEnd !== follow) setFollow(atEnd);
        }}
      >
        {shown.length === 0 ? (
          <span className="muted">
            {q ? 'No line matches.' : complete ? 'No output.' : 'Waiting for output…'}
          </span>
        ) : (
          shown.map((x) => (
            // The number is drawn by CSS from data-n, so copying the output copies only the output.
            <span key={x.n} className="log-line" data-n={x.n}>
              {x.l}
              {'\n'}
            </span>
          ))
        )}
      </pre>
    </section>
  );
}

function TaskDetail({ id }: { id: string }) {
  const { expired } = useSession();
  const [nudge, setNudge] = useState(0);
  const task = useApi(() => api.tasks.get(id), `task:${id}:${nudge}`);
  const timeline = useApi(() => api.tasks.timeline(id), `timeline:${id}:${nudge}`);
  const [confirmCancel, setConfirmCancel] = useState(false);
  const [cancel, setCancel] = useState<{ busy: boolean; error: ApiError | null }>({
    busy: false,
    error: null,
  });
  const t = task.data?.task;
  const [now, setNow] = useState(() => Date.now());
  const running = t ? !isTerminal(t.state) : false;
  useEffect(() => {
    if (!running) return;
    const h = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(h);
  }, [running]);

  useLive(
    (c) => {
      if (c.kind === 'task' && c.id === id) setNudge((n) => n + 1);
    },
    () => setNudge((n) => n + 1),
  );

  async function doCancel() {
    setCancel({ busy: true, error: null });
    try {
      const r = await api.tasks.cancel(id);
      task.set(() => ({ task: r.task }));
      setConfirmCancel(false);
      setCancel({ busy: false, error: null });
    } catch (err) {
      const e = toApiError(err);
      if (e.unauthorized) expired();
      setCancel({ busy: false, error: e });
    }
  }

  return (
    <Loadable state={task} onRetry={task.reload}>
      {({ task: t }) => (
        <div className="stack-lg">
          <div className="page-head">
            <p className="small">
              <Link href="/tasks">← Tasks</Link>
            </p>
            <h1 className="task-title">
              <code>{joinCommand(t.command)}</code>
            </h1>
            <div className="row-wrap task-meta">
              <StateBadge state={t.state} />
              {t.exitCode !== null ? (
                <span className={`badge ${t.exitCode === 0 ? '' : 'badge-danger'}`} data-testid="exit-code">
                  exit {t.exitCode}
                </span>
              ) : null}
              {t.cancelRequested && !isTerminal(t.state) ? <span className="badge">canceling…</span> : null}
              {!isTerminal(t.state) ? (
                <button
                  type="button"
                  className="btn btn-small btn-danger-outline"
                  onClick={() => setConfirmCancel(true)}
                >
                  Cancel task
                </button>
              ) : null}
            </div>
          </div>
          {t.error ? (
            <ErrorNotice
              error={new ApiError(0, 'task_error', t.error, 'see the output and the timeline below')}
            />
          ) : null}

          <section className="card stack" aria-labelledby="about-h">
            <h2 id="about-h">Timeline</h2>
            <dl className="facts">
              <dt>Created</dt>
              <dd>{formatDateTime(t.createdAt)}</dd>
              <dt>Started</dt>
              <dd>{formatDateTime(t.startedAt, 'not yet')}</dd>
              <dt>Finished</dt>
              <dd>{formatDateTime(t.finishedAt, 'not yet')}</dd>
              <dt>Duration</dt>
              <dd>{t.startedAt ? formatDuration(taskDuration(t, now)) : '—'}</dd>
              <dt>Timeout</dt>
              <dd data-testid="task-timeout">{formatDuration(t.timeoutSeconds * 1000)}</dd>
              <dt>Secrets</dt>
              <dd data-testid="task-secrets">
                {t.secrets === null ? (
                  'all of your references'
                ) : t.secrets.length === 0 ? (
                  'none'
                ) : (
                  <code>{t.secrets.join(', ')}</code>
                )}
              </dd>
              <dt>Launched from</dt>
              <dd data-testid="task-source">{SOURCE_TEXT[t.launchSource] ?? t.launchSource}</dd>
              {t.environmentId ? (
                <>
                  <dt>Environment</dt>
                  <dd>
                    <Link href={`/environments/view?id=${t.environmentId}`} data-testid="task-env">
                      <code>{t.environmentId.slice(0, 8)}</code>
                    </Link>
                  </dd>
                </>
              ) : null}
              {t.node ? (
                <>
                  <dt>Node</dt>
                  <dd>{t.node}</dd>
                </>
              ) : null}
            </dl>
            <Loadable state={timeline} onRetry={timeline.reload}>
              {({ events }) => <TimelineChart events={events} now={now} />}
            </Loadable>
          </section>

          <LogView task={t} nudge={nudge} />

          <ConfirmDialog
            open={confirmCancel}
            title="Cancel this task?"
            confirmLabel="Cancel task"
            busy={cancel.busy}
            onCancel={() => setConfirmCancel(false)}
            onConfirm={() => void doCancel()}
          >
            <p>Its process is stopped; the output so far is kept.</p>
            {cancel.error ? <ErrorNotice error={cancel.error} /> : null}
          </ConfirmDialog>
        </div>
      )}
    </Loadable>
  );
}

function TaskPage() {
  const id = useSearchParams().get('id');
  if (!id)
    return (
      <ErrorNotice
        error={new ApiError(400, 'missing_id', 'no task given', 'open a task from the task list')}
      />
    );
  return <TaskDetail id={id} />;
}

// A static export cannot know task ids at build time, so the id rides in the query string.
export default function TaskViewPage() {
  return (
    <Suspense fallback={<Loading />}>
      <TaskPage />
    </Suspense>
  );
}
