import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import type { Socket } from 'socket.io';
import { z } from 'zod';
import type { AuthContext } from '../accounts/auth.types.js';
import { ApiError } from '../common/errors.js';
import { LiveService } from '../live/live.service.js';
import { TasksService } from './tasks.service.js';

const FollowRequest = z.strictObject({
  taskId: z.string().uuid(),
  offset: z.number().int().min(0).default(0),
  encoding: z.enum(['utf8', 'base64']).default('utf8'),
});

/** Each follow holds a database reader; one connection may not hold an unbounded number. */
const MAX_FOLLOWS_PER_SOCKET = 32;

type Ack = (
  answer: { ok: true } | { ok: false; error: { code: string; message: string; hint: string } },
) => void;

/**
 * Following a task's output over socket.io `/events`:
 *   emit `task:follow` {taskId, offset?, encoding?} with an ack → {ok} or {ok:false, error}
 *   then `task:output` {taskId, offset, nextOffset, encoding, data} in order, and one
 *   `task:end` {taskId, state, exitCode, totalBytes}; `task:unfollow` {taskId} stops early.
 * Someone else's task is `not_found`, as over HTTP.
 */
@Injectable()
export class TaskFollowSocket implements OnModuleInit {
  constructor(
    @Inject(LiveService) private readonly live: LiveService,
    @Inject(TasksService) private readonly tasks: TasksService,
  ) {}

  onModuleInit(): void {
    this.live.onConnection((socket, ctx) => this.attach(socket, ctx));
  }

  private attach(socket: Socket, ctx: AuthContext): void {
    const follows = new Map<string, AbortController>();
    socket.on('task:follow', (raw: unknown, ack?: unknown) => {
      const reply: Ack = typeof ack === 'function' ? (ack as Ack) : () => undefined;
      const req = FollowRequest.safeParse(raw);
      if (!req.success) {
        reply({
          ok: false,
          error: {
            code: 'invalid_request',
            message: req.error.issues[0]?.message ?? 'invalid request',
            hint: 'send {taskId, offset?, encoding?}',
          },
        });
        return;
      }
      const { taskId, offset, encoding } = req.data;
      if (!follows.has(taskId) && follows.size >= MAX_FOLLOWS_PER_SOCKET) {
        reply({
          ok: false,
          error: {
            code: 'too_many_follows',
            message: `this connection already follows ${follows.size} tasks`,
            hint: 'send task:unfollow for tasks you no longer watch',
          },
        });
        return;
      }
      follows.get(taskId)?.abort();
      const ac = new AbortController();
      follows.set(taskId, ac);
      void this.pump(socket, ctx, taskId, offset, encoding, ac, reply).finally(() => {
        if (follows.get(taskId) === ac) follows.delete(taskId);
      });
    });
    socket.on('task:unfollow', (raw: unknown) => {
      const id = (raw as { taskId?: unknown } | undefined)?.taskId;
      if (typeof id === 'string') follows.get(id)?.abort();
    });
    socket.on('disconnect', () => {
      for (const ac of follows.values()) ac.abort();
      follows.clear();
    });
  }

  private async pump(
    socket: Socket,
    ctx: AuthContext,
    taskId: string,
    offset: number,
    encoding: 'utf8' | 'base64',
    ac: AbortController,
    reply: Ack,
  ): Promise<void> {
    let stream;
    try {
      stream = await this.tasks.follow(ctx, taskId, offset, ac.signal, { utf8: encoding === 'utf8' });
    } catch (err) {
      const e =
        err instanceof ApiError
          ? { code: err.code, message: err.message, hint: err.hint }
          : { code: 'internal', message: 'could not follow the task', hint: 'see the server log' };
      reply({ ok: false, error: e });
      return;
    }
    reply({ ok: true });
    try {
      for await (const ev of stream) {
        if (ev.type === 'output')
          socket.emit('task:output', {
            taskId,
            offset: ev.offset,
            nextOffset: ev.nextOffset,
            encoding,
            data: ev.data.toString(encoding),
          });
        else
          socket.emit('task:end', {
            taskId,
            state: ev.task.state,
            exitCode: ev.task.exit_code,
            totalBytes: Number(ev.task.log_bytes),
          });
      }
    } catch (err) {
      if (!ac.signal.aborted)
        socket.emit('task:error', { taskId, error: { code: 'internal', message: (err as Error).message } });
    }
  }
}
