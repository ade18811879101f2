'use client';

import { TERMINAL_TASK_STATES, type Task, type TaskEvent, type TaskState } from '@/lib/api';

export const isTerminal = (s: TaskState) => TERMINAL_TASK_STATES.includes(s);

const LABEL: Record<TaskState, string> = {
  queued: 'queued',
  provisioning: 'provisioning',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  canceled: 'canceled',
  timed_out: 'timed out',
};

export function StateBadge({ state }: { state: TaskState }) {
  return (
    <span className={`badge state state-${state}`} data-testid="task-state" data-state={state}>
      {isTerminal(state) ? null : <span className="pulse" aria-hidden="true" />}
      {LABEL[state]}
    </span>
  );
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Wall time so far: created → finished, or → now while it runs. */
export function taskDuration(t: Task, now = Date.now()): number {
  const end = t.finishedAt ? new Date(t.finishedAt).getTime() : now;
  return end - new Date(t.startedAt ?? t.createdAt).getTime();
}

interface Segment {
  state: TaskState;
  ms: number;
  at: string;
}

/** Time spent in each state: from one transition to the next (the last one runs to now unless final). */
export function segments(events: TaskEvent[], now = Date.now()): Segment[] {
  const out: Segment[] = [];
  events.forEach((e, i) => {
    const next = events[i + 1];
    if (!next && isTerminal(e.to)) return;
    const end = next ? new Date(next.at).getTime() : now;
    out.push({ state: e.to, ms: Math.max(0, end - new Date(e.at).getTime()), at: e.at });
  });
  return out;
}

/** A horizontal bar per state, widths proportional to time; the list below gives exact numbers. */
export function TimelineChart({ events, now }: { events: TaskEvent[]; now: number }) {
  const segs = segments(events, now);
  const total = segs.reduce((a, s) => a + s.ms, 0);
  const last = events[events.length - 1];
  return (
    <div className="timeline" data-testid="timeline">
      {segs.length > 0 ? (
        <div
          className="timeline-bar"
          role="img"
          aria-label={segs.map((s) => `${LABEL[s.state]} ${formatDuration(s.ms)}`).join(', ')}
        >
          {segs.map((s, i) => (
            <span
              key={`${s.at}-${i}`}
              className={`timeline-seg state-${s.state}`}
              style={{ flexGrow: total > 0 ? s.ms / total : 1 }}
              title={`${LABEL[s.state]}: ${formatDuration(s.ms)}`}
            />
          ))}
        </div>
      ) : null}
      <ol className="timeline-list">
        {segs.map((s, i) => (
          <li key={`${s.at}-${i}`}>
            <span className={`dot state-${s.state}`} aria-hidden="true" />
            <span className="timeline-state">{LABEL[s.state]}</span>
            <span className="muted">{formatDuration(s.ms)}</span>
          </li>
        ))}
        {last && isTerminal(last.to) ? (
          <li>
            <span className={`dot state-${last.to}`} aria-hidden="true" />
            <span className="timeline-state">{LABEL[last.to]}</span>
            <span className="muted">{last.reason ?? ''}</span>
          </li>
        ) : null}
      </ol>
    </div>
  );
}
