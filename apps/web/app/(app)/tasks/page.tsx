'use client';

import Link from 'next/link';
import { useEffect, useState } from 'react';
import { ConfirmDialog } from '@/components/confirm';
import { EnvPicker, useEnvChoice, useReadyEnvironments } from '@/components/env-picker';
import { LoadMore } from '@/components/load-more';
import { Empty, ErrorNotice, Loadable } from '@/components/status';
import { LaunchForm, useLaunch } from '@/components/task-launch';
import { StateBadge, formatDuration, taskDuration } from '@/components/task-ui';
import { api, newIdempotencyKey, type Task } from '@/lib/api';
import { joinCommand } from '@/lib/argv';
import { relative } from '@/lib/format';
import { useLive } from '@/lib/live';
import { usePagedList } from '@/lib/use-paged';

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
          again &&
          againWhere.choice &&
          // The same timeout and secrets as the first run (null secrets: all of them).
          void launch.launch(again.task.command, againWhere.choice, again.key, {
            timeoutSeconds: again.task.timeoutSeconds,
            ...(again.task.secrets ? { secrets: again.task.secrets } : {}),
          })
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
