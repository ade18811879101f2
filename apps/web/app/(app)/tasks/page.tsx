'use client';

import Link from 'next/link';
import { useRouter } from 'next/navigation';
import { useEffect, useState, type FormEvent } from 'react';
import { ConfirmDialog } from '@/components/confirm';
import {
  EnvPicker,
  choiceBody,
  useEnvChoice,
  useReadyEnvironments,
  type EnvChoice,
} from '@/components/env-picker';
import { LoadMore } from '@/components/load-more';
import { Empty, ErrorNotice, Loadable } from '@/components/status';
import { StateBadge, formatDuration, taskDuration } from '@/components/task-ui';
import { ApiError, api, newIdempotencyKey, toApiError, type Environment, type Task } from '@/lib/api';
import { joinCommand, splitCommand } from '@/lib/argv';
import { relative } from '@/lib/format';
import { useLive } from '@/lib/live';
import { useSession } from '@/lib/session';
import type { Loaded } from '@/lib/use-api';
import { usePagedList } from '@/lib/use-paged';

/** Launches a task and opens its page. One idempotency key per intent, so a double tap runs it once. */
function useLaunch() {
  const router = useRouter();
  const { expired } = useSession();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  async function launch(argv: string[], where: EnvChoice, key: string) {
    setBusy(true);
    setError(null);
    try {
      const { task } = await api.tasks.create({ command: argv, ...choiceBody(where) }, key);
      router.push(`/tasks/view?id=${task.id}`);
    } catch (err) {
      const e = toApiError(err);
      if (e.unauthorized) expired();
      else setError(e);
      setBusy(false);
    }
  }
  return { busy, error, setError, launch };
}

function LaunchForm({ ready }: { ready: Loaded<Environment[]> }) {
  const [line, setLine] = useState('');
  const [key, setKey] = useState(newIdempotencyKey);
  const where = useEnvChoice(ready);
  const { busy, error, setError, launch } = useLaunch();

  function submit(e: FormEvent) {
    e.preventDefault();
    const r = splitCommand(line);
    if ('error' in r) {
      setError(new ApiError(400, 'bad_command', r.error, 'close the quote, or escape it with a backslash'));
      return;
    }
    if (where.choice) void launch(r.argv, where.choice, key);
  }

  return (
    <form className="card stack" onSubmit={submit} aria-labelledby="launch-h">
      <h2 id="launch-h">Run a task</h2>
      {error ? <ErrorNotice error={error} /> : null}
      <div className="launch-row">
        <label className="field grow">
          <span className="sr-only">Command</span>
          <input
            name="command"
            className="mono"
            autoCapitalize="none"
            autoCorrect="off"
            spellCheck={false}
            placeholder="npm test"
            value={line}
            onChange={(e) => {
              setLine(e.target.value);
              setKey(newIdempotencyKey()); // a different command is a different launch
            }}
          />
        </label>
        <button type="submit" className="btn btn-primary" disabled={busy || !line.trim() || !where.choice}>
          {busy ? 'Starting…' : 'Run'}
        </button>
      </div>
      <p className="muted small">
        Runs the program directly with its arguments (quotes work as in a shell). For pipes or{' '}
        <code>&amp;&amp;</code>, run a shell: <code>sh -c &apos;make &amp;&amp; make test&apos;</code>.
      </p>
      <EnvPicker ready={ready} state={where} onChange={() => setKey(newIdempotencyKey())} idPrefix="launch" />
    </form>
  );
}

function TaskRow({ t, now, onRunAgain }: { t: Task; now: number; onRunAgain: () => void }) {
  const cmd = joinCommand(t.command);
  return (
    <tr data-testid="task-row" data-task-id={t.id}>
      <td data-label="State">
        <StateBadge state={t.state} />
      </td>
      <td data-label="Command" className="cell-command">
        <Link href={`/tasks/view?id=${t.id}`} className="task-link" title={cmd}>
          <code>{cmd}</code>
        </Link>
      </td>
      <td data-label="Exit">{t.exitCode ?? <span className="muted">—</span>}</td>
      <td data-label="Started">{relative(t.startedAt ?? t.createdAt, now)}</td>
      <td data-label="Duration">
        {t.startedAt ? formatDuration(taskDuration(t, now)) : <span className="muted">—</span>}
      </td>
      <td className="actions">
        <button type="button" className="btn btn-small" onClick={onRunAgain} aria-label={`Run again: ${cmd}`}>
          Run again
        </button>
      </td>
    </tr>
  );
}

/** Re-render once a second while something runs, so durations tick. */
function useNow(active: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [active]);
  return now;
}

export default function TasksPage() {
  const paged = usePagedList((cursor) => api.tasks.list({ limit: 50, cursor }), 'tasks');
  const [again, setAgain] = useState<{ task: Task; key: string } | null>(null);
  const launch = useLaunch();
  const ready = useReadyEnvironments();
  const againWhere = useEnvChoice(ready);
  const items = paged.list.data?.items ?? [];
  const now = useNow(items.some((t) => !t.finishedAt));

  // A change for a task on screen: fetch it again (state, exit code, times). A task started
  // elsewhere (CLI, another tab) joins the end of the list once every page is loaded. An
  // environment that changes may join or leave the ready ones the picker offers.
  const { connected } = useLive(
    (c) => {
      if (c.kind === 'environment') ready.reload();
      if (c.kind !== 'task') return;
      api.tasks.get(c.id).then(
        ({ task }) => paged.append(task),
        () => undefined,
      );
    },
    () => {
      paged.list.reload();
      ready.reload();
    },
  );

  return (
    <div className="stack-lg">
      <div className="page-head">
        <h1>Tasks</h1>
        <p className="muted">
          Commands run to completion with their output kept.{' '}
          <span className={`live ${connected ? 'live-on' : ''}`} data-testid="live">
            {connected ? 'Live' : 'Connecting…'}
          </span>
        </p>
      </div>
      <LaunchForm ready={ready} />
      <section className="stack" aria-labelledby="tasks-h">
        <h2 id="tasks-h">Your tasks</h2>
        <Loadable state={paged.list} onRetry={paged.list.reload}>
          {(page) =>
            page.items.length === 0 ? (
              <Empty title="No tasks yet">
                <p className="muted">
                  Type a command above and press Run; its output appears here as it runs.
                </p>
              </Empty>
            ) : (
              <div className="stack">
                <table className="table responsive" data-testid="task-table">
                  <thead>
                    <tr>
                      <th>State</th>
                      <th>Command</th>
                      <th>Exit</th>
                      <th>Started</th>
                      <th>Duration</th>
                      <th>
                        <span className="sr-only">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {page.items.map((t) => (
                      <TaskRow
                        key={t.id}
                        t={t}
                        now={now}
                        onRunAgain={() => {
                          launch.setError(null);
                          againWhere.reset(t.environmentId);
                          setAgain({ task: t, key: newIdempotencyKey() });
                        }}
                      />
                    ))}
                  </tbody>
                </table>
                <LoadMore paged={paged} />
              </div>
            )
          }
        </Loadable>
      </section>
      <ConfirmDialog
        open={again !== null}
        title="Run this again?"
        tone="primary"
        confirmLabel="Run"
        busy={launch.busy}
        onCancel={() => setAgain(null)}
        onConfirm={() =>
          again && againWhere.choice && void launch.launch(again.task.command, againWhere.choice, again.key)
        }
      >
        <p>
          <code className="code-block">{again ? joinCommand(again.task.command) : ''}</code>
        </p>
        {again ? (
          <EnvPicker
            ready={ready}
            state={againWhere}
            onChange={() => setAgain({ ...again, key: newIdempotencyKey() })}
            idPrefix="again"
          />
        ) : null}
        {launch.error ? <ErrorNotice error={launch.error} /> : null}
      </ConfirmDialog>
    </div>
  );
}
