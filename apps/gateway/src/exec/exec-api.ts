import { mkdirSync, readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import {
  encodeExecExit,
  encodeExecHeartbeat,
  encodeExecLost,
  encodeExecOutput,
  ExecAckBody,
  ExecMessagesBody,
  type ExecMessagesReply,
  type GatewayConfig,
} from '@berth/protocol';
import { AuthError, JtiCache, type TokenVerifier } from '../auth.js';
import { sendJson } from '../http.js';
import type { Logger } from '../log.js';
import { ClientSecretsBody, ClientSecretsStore } from './client-secrets.js';
import { ExecTask, type ExecLimits, type ExecTaskDeps } from './exec-task.js';

export interface ExecOptions extends Partial<ExecLimits> {
  /** How long an output stream may be quiet before a heartbeat frame. */
  heartbeatMs?: number;
}

export const DEFAULT_EXEC_LIMITS: ExecLimits = {
  maxUnstoredBytes: 64 * 1024 * 1024,
  segmentBytes: 8 * 1024 * 1024,
  stopGraceMs: 5000,
};

const READ_BYTES = 256 * 1024;
const MAX_BODY_BYTES = 4 * 1024 * 1024;
// Task ids are the control plane's UUIDs; anything else is refused before it names a directory.
const TASK_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ROUTE = /^\/exec\/tasks\/([^/]+)\/(messages|output|ack|log)$/;
// Secrets `berth run` sends for a launch; the token's sid is the launch id, never a task id.
const LAUNCH_ROUTE = /^\/exec\/launches\/([^/]+)\/secrets$/;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'too_large', 'request body too large');
    parts.push(c);
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    throw new HttpError(400, 'bad_request', 'body is not JSON');
  }
}

/** Environment variables for tasks: the gateway's own, minus its config (it holds the JWKS and more). */
function taskEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith('BERTH_GATEWAY_CONFIG')) env[k] = v;
  return env;
}

export interface ExecApi {
  /** Handles `/exec/...`; returns false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): boolean;
  tasks: Map<string, ExecTask>;
  /** Stops every task; resolves when their Vault tokens are revoked. */
  close(): Promise<void>;
}

/**
 * The exec API the control plane's task workers call (see `packages/protocol/src/exec.ts`).
 * Tasks live in `<dataDir>/exec/<task id>/`; a gateway that starts finds the tasks an earlier
 * one ran and reports those whose process it lost.
 */
export function createExecApi(
  config: Pick<GatewayConfig, 'dataDir' | 'workdir'>,
  verifier: TokenVerifier,
  log: Logger,
  options: ExecOptions = {},
): ExecApi {
  const limits: ExecLimits = {
    maxUnstoredBytes: options.maxUnstoredBytes ?? DEFAULT_EXEC_LIMITS.maxUnstoredBytes,
    segmentBytes: options.segmentBytes ?? DEFAULT_EXEC_LIMITS.segmentBytes,
    stopGraceMs: options.stopGraceMs ?? DEFAULT_EXEC_LIMITS.stopGraceMs,
  };
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const root = join(config.dataDir, 'exec');
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const env = taskEnv();
  const jtis = new JtiCache();
  const closing = new AbortController();
  const clientSecrets = new ClientSecretsStore();
  const deps = (id: string): ExecTaskDeps => ({
    dir: join(root, id),
    workdir: config.workdir,
    env,
    clientSecrets,
    limits,
    warn: (msg, fields) => log.warn(msg, fields),
  });

  const tasks = new Map<string, ExecTask>();
  for (const id of readdirSync(root)) {
    if (!TASK_ID.test(id)) continue;
    const t = ExecTask.recover(deps(id));
    if (!t) continue;
    tasks.set(id, t);
    if (t.state.lost) log.warn('task lost by an earlier gateway process', { taskId: id });
  }

  async function authorize(req: IncomingMessage, taskId: string): Promise<void> {
    const h = req.headers.authorization;
    try {
      if (!h?.startsWith('Bearer ')) throw new AuthError('missing bearer token');
      const claims = await verifier.verify(h.slice(7), 'exec');
      if (claims.sid !== taskId) throw new AuthError('token is for another task');
      if (claims.jti && !jtis.use(claims.jti, claims.exp)) throw new AuthError('token already used');
    } catch (err) {
      throw new HttpError(401, 'unauthorized', (err as Error).message);
    }
  }

  async function messages(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const body = ExecMessagesBody.safeParse(await readJson(req));
    if (!body.success)
      throw new HttpError(400, 'bad_request', body.error.issues[0]?.message ?? 'invalid messages');
    let task = tasks.get(id);
    if (!task) {
      // Only a start creates a task; anything else for an unknown task waits for it.
      if (!body.data.messages.some((m) => m.seq === 1 && m.kind === 'start'))
        return sendJson(res, 200, { appliedSeq: 0 } satisfies ExecMessagesReply);
      task = ExecTask.create(id, deps(id));
      tasks.set(id, task);
    }
    const before = task.state.appliedSeq;
    const appliedSeq = task.apply(body.data.messages);
    if (appliedSeq !== before)
      log.info('task messages applied', {
        taskId: id,
        appliedSeq,
        kinds: body.data.messages.filter((m) => m.seq > before && m.seq <= appliedSeq).map((m) => m.kind),
        pid: task.state.pid,
      });
    sendJson(res, 200, { appliedSeq } satisfies ExecMessagesReply);
  }

  async function launchSecrets(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const body = ClientSecretsBody.safeParse(await readJson(req));
    if (!body.success)
      throw new HttpError(
        400,
        'bad_request',
        'send {"wrappedToken": "..."} or {"values": {"NAME": "value"}}',
      );
    if (!clientSecrets.put(id, body.data))
      throw new HttpError(409, 'already_sent', 'secrets for this launch were sent already');
    log.info('launch secrets received', { launchId: id, kind: 'values' in body.data ? 'values' : 'wrapped' });
    sendJson(res, 200, { accepted: true });
  }

  /**
   * The end of the gateway's own log, for `berth debug task`: what the gateway saw while the
   * task ran (secrets, restarts, lost processes). The environment has one owner, who may read it.
   */
  async function gatewayLog(res: ServerResponse): Promise<void> {
    const max = 256 * 1024;
    const f = await open(join(config.dataDir, 'gateway.log'), 'r').catch(() => undefined);
    let text = '';
    if (f) {
      try {
        const { size } = await f.stat();
        const buf = Buffer.alloc(Math.min(size, max));
        await f.read(buf, 0, buf.length, size - buf.length);
        text = buf.toString('utf8');
        // Start at a whole line when the tail was cut.
        if (size > max) text = text.slice(text.indexOf('\n') + 1);
      } finally {
        await f.close();
      }
    }
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(text);
  }

  async function ack(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const body = ExecAckBody.safeParse(await readJson(req));
    if (!body.success) throw new HttpError(400, 'bad_request', 'offset must be a non-negative integer');
    const task = tasks.get(id);
    if (!task) throw new HttpError(404, 'unknown_task', `no task ${id} on this gateway`);
    task.ack(body.data.offset);
    sendJson(res, 200, { acked: task.state.acked, end: task.log.end });
  }

  async function output(req: IncomingMessage, res: ServerResponse, id: string, url: URL): Promise<void> {
    const raw = url.searchParams.get('offset') ?? '0';
    const from = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(from))
      throw new HttpError(400, 'bad_request', 'offset must be a non-negative integer');
    const task = tasks.get(id);
    if (!task) throw new HttpError(404, 'unknown_task', `no task ${id} on this gateway`);
    if (from < task.log.start)
      throw new HttpError(
        410,
        'output_dropped',
        `output before offset ${task.log.start} was already stored and dropped`,
      );
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' });
    res.flushHeaders();
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    const stop = AbortSignal.any([gone.signal, closing.signal]);
    let at = from;
    // Bytes past the end cannot exist; a reader ahead of the log (it lost its state) reads none.
    while (!stop.aborted) {
      if (at < task.log.end) {
        const data = await task.log.read(at, READ_BYTES);
        if (data.length === 0) break;
        if (!res.write(encodeExecOutput(at, data)))
          await new Promise<void>((resolve) => {
            const done = () => {
              res.off('drain', done);
              stop.removeEventListener('abort', done);
              resolve();
            };
            res.once('drain', done);
            stop.addEventListener('abort', done, { once: true });
          });
        at += data.length;
        continue;
      }
      if (task.state.lost) {
        res.end(encodeExecLost(task.state.lost));
        return;
      }
      if (task.state.exit) {
        res.end(encodeExecExit(task.state.exit.code, task.state.exit.signal));
        return;
      }
      const before = task.log.end;
      await task.changed(heartbeatMs, stop);
      if (task.log.end === before && !task.finished && !stop.aborted) res.write(encodeExecHeartbeat());
    }
    res.end();
  }

  return {
    tasks,
    handle(req, res, url) {
      const m = ROUTE.exec(url.pathname);
      if (!url.pathname.startsWith('/exec/')) return false;
      const run = async () => {
        const launch = LAUNCH_ROUTE.exec(url.pathname);
        if (launch) {
          const id = launch[1] ?? '';
          if (req.method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'use POST');
          if (!TASK_ID.test(id)) throw new HttpError(404, 'unknown_launch', 'launch ids are UUIDs');
          await authorize(req, id);
          return launchSecrets(req, res, id);
        }
        if (!m) throw new HttpError(404, 'not_found', `no route ${req.method} ${url.pathname}`);
        const [, id, what] = m as unknown as [string, string, string];
        const method = what === 'output' || what === 'log' ? 'GET' : 'POST';
        if (req.method !== method) throw new HttpError(405, 'method_not_allowed', `use ${method}`);
        if (!TASK_ID.test(id)) throw new HttpError(404, 'unknown_task', 'task ids are UUIDs');
        await authorize(req, id);
        if (what === 'messages') return messages(req, res, id);
        if (what === 'ack') return ack(req, res, id);
        if (what === 'log') return gatewayLog(res);
        return output(req, res, id, url);
      };
      run().catch((err: unknown) => {
        const e =
          err instanceof HttpError
            ? err
            : new HttpError(500, 'internal', (err as Error).message ?? String(err));
        if (e.status >= 500) log.error('exec request failed', { path: url.pathname, err: e.message });
        if (res.headersSent) res.destroy();
        else sendJson(res, e.status, { error: { code: e.code, message: e.message } });
      });
      return true;
    },
    async close() {
      closing.abort();
      clientSecrets.close();
      // Bounded: a Vault that does not answer must not hold the gateway past its stop grace
      // period (the token then expires with its TTL, as the warning in the log says).
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...tasks.values()].map((t) => t.shutdown())),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, 5000))),
      ]);
      clearTimeout(timer);
    },
  };
}
