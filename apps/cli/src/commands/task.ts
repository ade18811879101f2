import type { Command } from 'commander';
import { api, type ApiTarget } from '../api.js';
import type { Ctx } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { printJson, printTable } from '../output.js';

export interface TaskDto {
  id: string;
  state: string;
  command: string[];
  environmentId: string | null;
  timeoutSeconds: number;
  exitCode: number | null;
  error: string | null;
  cancelRequested: boolean;
  logBytes: number;
  node: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}
export interface TaskEventDto {
  from: string | null;
  to: string;
  reason: string | null;
  workerId: string | null;
  node: string | null;
  at: string;
}
interface EnvEventDto {
  id: string;
  at: string;
  kind: string;
  message: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const TERMINAL = new Set(['succeeded', 'failed', 'canceled', 'timed_out']);

export function taskId(id: string): string {
  if (!UUID.test(id))
    throw new CliError(`${id} is not a task id`, 'list your tasks with: berth task ls', EXIT.notFound);
  return id.toLowerCase();
}

/**
 * The exit code `berth run` and `berth task logs -f` end with: the task's own on success or
 * failure, 124 for a timeout (like timeout(1)), 130 when it was canceled (like an interrupt).
 */
export function exitCodeFor(state: string, exitCode: number | null): number {
  if (state === 'succeeded') return 0;
  if (state === 'timed_out') return 124;
  if (state === 'canceled') return 130;
  return exitCode !== null && exitCode > 0 ? exitCode : 1;
}

export interface FollowEnd {
  state: string;
  exitCode: number | null;
  totalBytes: number;
}

/**
 * Streams a task's output to `out` as it is produced (the server-sent events of
 * `GET /tasks/:id/logs?follow=1`), byte for byte, until the task ends. A dropped connection is
 * resumed from the last byte received (Last-Event-ID), so nothing is lost or repeated.
 */
export async function followTask(
  target: ApiTarget,
  id: string,
  out: (chunk: Buffer) => void,
  signal: AbortSignal,
  from = 0,
): Promise<FollowEnd | undefined> {
  let offset = from;
  let failures = 0;
  for (;;) {
    if (signal.aborted) return undefined;
    let res: Response;
    try {
      res = await fetch(`${target.url}/api/v1/tasks/${id}/logs?follow=1&encoding=base64&offset=${offset}`, {
        headers: {
          accept: 'text/event-stream',
          ...(target.token ? { authorization: `Bearer ${target.token}` } : {}),
        },
        signal,
      });
    } catch (err) {
      if (signal.aborted) return undefined;
      if (++failures > 5)
        throw new CliError(
          `lost the connection to ${target.url}: ${(err as Error).message}`,
          `the task goes on; follow it again with: berth task logs -f ${id}`,
          EXIT.unavailable,
        );
      await new Promise((r) => setTimeout(r, 200 * 2 ** failures));
      continue;
    }
    if (!res.ok) {
      // Errors (404 for a task that is not yours) come back as JSON like any other call.
      await api(target, 'GET', `/api/v1/tasks/${id}`);
      throw new CliError(`cannot follow task ${id}: HTTP ${res.status}`, 'see the server log');
    }
    failures = 0;
    let buf = '';
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (event === 'output') {
            const m = JSON.parse(data) as { offset: number; data: string };
            const bytes = Buffer.from(m.data, 'base64');
            out(bytes);
            offset = m.offset + bytes.length;
          } else if (event === 'end') return JSON.parse(data) as FollowEnd;
        }
      }
    } catch (err) {
      if (signal.aborted) return undefined;
      void err; // a broken stream: resume below from the last byte received
    }
  }
}

async function getTask(target: ApiTarget, id: string): Promise<TaskDto> {
  return (await api<{ task: TaskDto }>(target, 'GET', `/api/v1/tasks/${taskId(id)}`)).data.task;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

interface Phase {
  name: string;
  start: number;
  end: number;
}

/**
 * The phases of a task on one time axis: its own states (queued, provisioning, running), and,
 * when it ran in an environment, that environment's steps in the same window (image build,
 * clone, setup…), from the environment's events.
 */
export function taskPhases(
  task: TaskDto,
  events: TaskEventDto[],
  envEvents: EnvEventDto[],
  now: number,
): Phase[] {
  const phases: Phase[] = [];
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (TERMINAL.has(e.to)) continue;
    const next = events[i + 1];
    phases.push({ name: e.to, start: Date.parse(e.at), end: next ? Date.parse(next.at) : now });
  }
  const t0 = phases[0]?.start ?? Date.parse(task.createdAt);
  const tEnd = task.finishedAt ? Date.parse(task.finishedAt) : now;
  // Consecutive events of one kind make one step; it lasts until the next step begins.
  const envPhases: Phase[] = [];
  const steps = envEvents.filter(
    (e) => !['created', 'destroy', 'destroyed', 'stop', 'stopped'].includes(e.kind),
  );
  for (let i = 0; i < steps.length;) {
    let j = i;
    while (j + 1 < steps.length && steps[j + 1]!.kind === steps[i]!.kind) j++;
    const start = Date.parse(steps[i]!.at);
    const next = steps[j + 1];
    const end = next ? Date.parse(next.at) : Math.max(start, Date.parse(steps[j]!.at));
    if (start <= tEnd && steps[i]!.kind !== 'ready')
      envPhases.push({
        name: `  env ${steps[i]!.kind}`,
        start: Math.max(start, t0),
        end: Math.min(end, tEnd),
      });
    i = j + 1;
  }
  // The environment's steps sit under the task's provisioning, which waited for them.
  const at = phases.findIndex((p) => p.name === 'provisioning');
  phases.splice(at < 0 ? phases.length : at + 1, 0, ...envPhases);
  return phases;
}

/** A text time-graph: one row per phase, bars placed on a shared axis from the first event. */
export function renderTimeline(task: TaskDto, phases: Phase[], width = 40): string {
  const t0 = Math.min(...phases.map((p) => p.start));
  const t1 = Math.max(...phases.map((p) => p.end), t0 + 1);
  const span = t1 - t0;
  const label = Math.max(12, ...phases.map((p) => p.name.length));
  const lines = [
    `task ${task.id}  ${task.state}${task.exitCode !== null ? ` (exit ${task.exitCode})` : ''}  ${seconds(span)} in all`,
  ];
  for (const p of phases) {
    const from = Math.min(width - 1, Math.floor(((p.start - t0) / span) * width));
    const len = Math.max(1, Math.min(width - from, Math.round(((p.end - p.start) / span) * width)));
    const bar = ' '.repeat(from) + '█'.repeat(len) + ' '.repeat(width - from - len);
    lines.push(`${p.name.padEnd(label)} |${bar}| ${seconds(p.end - p.start).padStart(7)}`);
  }
  return lines.join('\n') + '\n';
}

export async function fetchEnvEvents(target: ApiTarget, envId: string): Promise<EnvEventDto[]> {
  try {
    const { data } = await api<{ items: EnvEventDto[] }>(
      target,
      'GET',
      `/api/v1/environments/${envId}/events?limit=500`,
    );
    return data.items;
  } catch {
    return []; // the environment's steps are a bonus; the task's own phases still draw
  }
}

export function taskCommands(program: Command, ctx: Ctx): void {
  const task = program.command('task').description('list, follow and cancel tasks');

  task
    .command('ls')
    .description('list your tasks, oldest first')
    .option('--json', 'print as JSON')
    .action(async (o: { json?: boolean }) => {
      const target = await ctx.target();
      const items: TaskDto[] = [];
      let cursor: string | null = null;
      do {
        const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
        const { data } = await api<{ items: TaskDto[]; nextCursor: string | null }>(
          target,
          'GET',
          `/api/v1/tasks?limit=200${q}`,
        );
        items.push(...data.items);
        cursor = data.nextCursor;
      } while (cursor);
      if (o.json) return printJson(items);
      printTable(
        items.map((t) => ({
          ...t,
          exit: t.exitCode,
          created: t.createdAt.slice(0, 19),
          command: t.command.join(' ').slice(0, 60),
        })),
        ['id', 'state', 'exit', 'created', 'command'],
      );
    });

  task
    .command('show <id>')
    .description('show a task')
    .option('--json', 'print as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const t = await getTask(await ctx.target(), id);
      if (o.json) return printJson(t);
      for (const [k, v] of Object.entries({
        id: t.id,
        state: t.state + (t.cancelRequested && !TERMINAL.has(t.state) ? ' (cancel requested)' : ''),
        exit: t.exitCode,
        error: t.error,
        command: t.command.join(' '),
        env: t.environmentId,
        node: t.node,
        timeout: `${t.timeoutSeconds}s`,
        output: `${t.logBytes} bytes`,
        created: t.createdAt,
        started: t.startedAt,
        finished: t.finishedAt,
      }))
        if (v !== null && v !== undefined) process.stdout.write(`${k.padEnd(9)}${v}\n`);
    });

  task
    .command('logs <id>')
    .description("print a task's output")
    .option('-f, --follow', 'keep printing as it runs, until it ends (exits with its exit code)')
    .action(async (id: string, o: { follow?: boolean }) => {
      const target = await ctx.target();
      const tid = taskId(id);
      if (o.follow) {
        const end = await followTask(
          target,
          tid,
          (b) => process.stdout.write(b),
          new AbortController().signal,
        );
        if (end) process.exitCode = exitCodeFor(end.state, end.exitCode);
        return;
      }
      let offset = 0;
      for (;;) {
        const { data } = await api<{ data: string; nextOffset: number; totalBytes: number }>(
          target,
          'GET',
          `/api/v1/tasks/${tid}/logs?encoding=base64&offset=${offset}`,
        );
        process.stdout.write(Buffer.from(data.data, 'base64'));
        if (data.nextOffset >= data.totalBytes || data.nextOffset === offset) break;
        offset = data.nextOffset;
      }
    });

  task
    .command('cancel <id>')
    .description('cancel a task (at once if queued, else by stopping its process)')
    .option('--json', 'print as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const { data } = await api<{ task: TaskDto; changed: boolean }>(
        await ctx.target(),
        'POST',
        `/api/v1/tasks/${taskId(id)}/cancel`,
      );
      if (o.json) return printJson(data);
      const t = data.task;
      if (!data.changed)
        process.stdout.write(
          `task ${t.id} is already ${TERMINAL.has(t.state) ? t.state : 'being canceled'}\n`,
        );
      else
        process.stdout.write(`task ${t.id} ${t.state === 'canceled' ? 'canceled' : 'is being canceled'}\n`);
    });

  task
    .command('timeline <id>')
    .description("draw a task's phases (queued, provisioning, image build, clone, running…) on a time axis")
    .option('--json', 'print the phases as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const target = await ctx.target();
      const t = await getTask(target, id);
      const { data } = await api<{ events: TaskEventDto[] }>(target, 'GET', `/api/v1/tasks/${t.id}/timeline`);
      const env = t.environmentId ? await fetchEnvEvents(target, t.environmentId) : [];
      const phases = taskPhases(t, data.events, env, Date.now());
      if (o.json)
        return printJson(
          phases.map((p) => ({
            phase: p.name.trim(),
            start: new Date(p.start).toISOString(),
            ms: p.end - p.start,
          })),
        );
      process.stdout.write(renderTimeline(t, phases));
    });
}
