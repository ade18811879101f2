import { z } from 'zod';

/**
 * The gateway's exec API, used by the control plane's task workers (they connect to the gateway,
 * never the other way round). Every request carries `Authorization: Bearer <token>`: an EdDSA JWT
 * with `scope: "exec"`, `aud` = the environment id and `sid` = the task id, at most 60 s old.
 *
 * - `POST /exec/tasks/:id/messages` with `ExecMessagesBody` → `ExecMessagesReply`: control
 *   messages are applied at most once each and only right after the previous sequence number.
 * - `POST /exec/tasks/:id/ack` with `ExecAckBody`: the control plane has stored the output up to
 *   `offset`; the gateway may drop what lies before it.
 * - `GET /exec/tasks/:id/output?offset=N` → `application/octet-stream` of exec frames (below):
 *   output from byte N on, then one Exit or Lost frame, then the end of the response.
 */

export const ExecStartBody = z.object({
  command: z.array(z.string()).min(1),
  env: z.record(z.string(), z.string()).optional(),
  /** Relative paths are taken from the environment's workdir. */
  cwd: z.string().optional(),
  /** A PTY (merged output, terminal line discipline) instead of pipes. */
  tty: z.boolean().optional(),
  cols: z.number().int().min(1).max(1000).optional(),
  rows: z.number().int().min(1).max(1000).optional(),
});
export type ExecStartBody = z.infer<typeof ExecStartBody>;

export const ExecControlMessage = z.object({
  seq: z.number().int().positive(),
  kind: z.enum(['start', 'stop', 'signal', 'stdin_close']),
  body: z.record(z.string(), z.unknown()).default({}),
});
export type ExecControlMessage = z.infer<typeof ExecControlMessage>;

export const ExecMessagesBody = z.strictObject({
  messages: z.array(ExecControlMessage).max(1000),
});
export type ExecMessagesBody = z.infer<typeof ExecMessagesBody>;

export interface ExecMessagesReply {
  appliedSeq: number;
}

export const ExecAckBody = z.strictObject({ offset: z.number().int().min(0) });

/** Signals a `signal` message may send to the task's process group. */
export const EXEC_SIGNALS = [
  'SIGINT',
  'SIGTERM',
  'SIGKILL',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
] as const;

export const ExecFrame = {
  /** u64 offset (two u32 big-endian), then raw output bytes. */
  Output: 1,
  /** JSON `{code, signal}`: the process exited (code = 128 + n when killed by signal n). */
  Exit: 2,
  /** JSON `{reason}`: the process was lost (the gateway restarted while it ran). */
  Lost: 3,
  /** Empty; sent while nothing happens so a reader can tell a live stream from a dead one. */
  Heartbeat: 4,
} as const;

/** Every frame: u8 type, u32 big-endian payload length, payload. */
export const EXEC_FRAME_HEADER = 5;

export type ExecEvent =
  | { type: 'output'; offset: number; data: Buffer }
  | { type: 'exit'; code: number | null; signal: string | null }
  | { type: 'lost'; reason: string }
  | { type: 'heartbeat' };

function frame(type: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(EXEC_FRAME_HEADER);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

export function encodeExecOutput(offset: number, data: Buffer): Buffer {
  const off = Buffer.alloc(8);
  off.writeUInt32BE(Math.floor(offset / 2 ** 32), 0);
  off.writeUInt32BE(offset % 2 ** 32, 4);
  return frame(ExecFrame.Output, Buffer.concat([off, data]));
}

export function encodeExecExit(code: number | null, signal: string | null): Buffer {
  return frame(ExecFrame.Exit, Buffer.from(JSON.stringify({ code, signal })));
}

export function encodeExecLost(reason: string): Buffer {
  return frame(ExecFrame.Lost, Buffer.from(JSON.stringify({ reason })));
}

export function encodeExecHeartbeat(): Buffer {
  return frame(ExecFrame.Heartbeat, Buffer.alloc(0));
}

/** Incremental decoder: feed it what the stream delivers, take whole frames out. */
export class ExecFrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Uint8Array): ExecEvent[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : Buffer.from(chunk);
    const out: ExecEvent[] = [];
    while (this.buf.length >= EXEC_FRAME_HEADER) {
      const type = this.buf.readUInt8(0);
      const len = this.buf.readUInt32BE(1);
      if (this.buf.length < EXEC_FRAME_HEADER + len) break;
      const payload = this.buf.subarray(EXEC_FRAME_HEADER, EXEC_FRAME_HEADER + len);
      this.buf = this.buf.subarray(EXEC_FRAME_HEADER + len);
      out.push(decodePayload(type, payload));
    }
    return out;
  }

  /** Bytes of a frame not yet complete (a stream that ends with some left was cut). */
  get pending(): number {
    return this.buf.length;
  }
}

function decodePayload(type: number, payload: Buffer): ExecEvent {
  switch (type) {
    case ExecFrame.Output:
      return {
        type: 'output',
        offset: payload.readUInt32BE(0) * 2 ** 32 + payload.readUInt32BE(4),
        // A copy: the decoder's buffer is reused for later frames.
        data: Buffer.from(payload.subarray(8)),
      };
    case ExecFrame.Exit: {
      const e = JSON.parse(payload.toString('utf8')) as { code: number | null; signal: string | null };
      return { type: 'exit', code: e.code ?? null, signal: e.signal ?? null };
    }
    case ExecFrame.Lost:
      return {
        type: 'lost',
        reason: String((JSON.parse(payload.toString('utf8')) as { reason: unknown }).reason),
      };
    case ExecFrame.Heartbeat:
      return { type: 'heartbeat' };
    default:
      throw new Error(`unknown exec frame type ${type}`);
  }
}

/**
 * A task as the gateway keeps it on disk (`<dataDir>/exec/<task>/state.json`), across its own
 * restarts. The local provider reads it too: tasks it ran outside a sandbox can outlive a gateway
 * killed from outside, and stopping the environment must kill them. Unknown fields are kept, so
 * an older reader never drops what a newer gateway wrote.
 */
export const ExecTaskRecord = z.looseObject({
  id: z.string(),
  appliedSeq: z.number().int(),
  tty: z.boolean(),
  /** Written before the process is spawned: a start is applied at most once, even across a crash. */
  started: z.boolean(),
  pid: z.number().int().positive().optional(),
  /** With the pid, names the process exactly (a reused pid is never signalled): see processStartTime. */
  procStart: z.string().optional(),
  /** The exit code, or 128 + n when killed by signal n (as a shell reports it). */
  exit: z.object({ code: z.number().int().nullable(), signal: z.string().nullable() }).optional(),
  /** Why the process is gone without an exit (the gateway stopped or restarted while it ran). */
  lost: z.string().optional(),
  /** The control plane has stored the output up to here. */
  acked: z.number().int(),
});
export type ExecTaskRecord = z.infer<typeof ExecTaskRecord>;
