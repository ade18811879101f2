import type { Request, Response } from 'express';
import type { FollowEvent } from './task-follow.js';

/** A comment line now and then keeps proxies from closing a quiet stream. */
const HEARTBEAT_MS = 15_000;

/**
 * Writes a task's output as server-sent events: `output` events whose id is the byte offset
 * after their data (what a client sends back as Last-Event-ID to resume), then one `end`.
 * Data is JSON on one line, so output with newlines or any bytes (base64) survives SSE framing.
 */
export async function streamSse(
  req: Request,
  res: Response,
  ac: AbortController,
  stream: AsyncGenerator<FollowEvent>,
  encoding: 'utf8' | 'base64',
): Promise<void> {
  res.status(200);
  res.setHeader('content-type', 'text/event-stream; charset=utf-8');
  res.setHeader('cache-control', 'no-cache, no-transform');
  res.setHeader('x-accel-buffering', 'no');
  res.flushHeaders();
  const stop = () => ac.abort();
  req.on('close', stop);
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
  // Honour backpressure: a slow reader pauses the reads from Postgres instead of filling memory.
  const write = async (chunk: string) => {
    if (!res.write(chunk) && !ac.signal.aborted)
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done);
          ac.signal.removeEventListener('abort', done);
          resolve();
        };
        res.on('drain', done);
        ac.signal.addEventListener('abort', done);
      });
  };
  try {
    for await (const ev of stream) {
      if (ev.type === 'output')
        await write(
          `id: ${ev.nextOffset}\nevent: output\ndata: ${JSON.stringify({
            offset: ev.offset,
            encoding,
            data: ev.data.toString(encoding),
          })}\n\n`,
        );
      else
        await write(
          `event: end\ndata: ${JSON.stringify({
            state: ev.task.state,
            exitCode: ev.task.exit_code,
            totalBytes: Number(ev.task.log_bytes),
          })}\n\n`,
        );
    }
  } catch (err) {
    if (!ac.signal.aborted)
      await write(`event: error\ndata: ${JSON.stringify({ message: (err as Error).message })}\n\n`).catch(
        () => undefined,
      );
  } finally {
    clearInterval(heartbeat);
    req.off('close', stop);
    res.end();
  }
}
