import { EventEmitter } from 'node:events';
import type { Session, SessionOptions } from './session.js';

// session.js pulls in the headless terminal (xterm, ~200 KB of JS evaluated at import): loaded by
// the first terminal instead of at gateway start, which is on every environment's ready path.
let sessionModule: Promise<typeof import('./session.js')> | undefined;

export interface SessionDefaults {
  shell: string[];
  cwd: string;
  env: Record<string, string>;
  ringBytes: number;
  idleTimeoutMs: number;
  highWaterBytes: number;
  lowWaterBytes: number;
}

/** The gateway's live sessions; emits `ended` (session) once a session's process is gone. */
export class SessionRegistry extends EventEmitter<{ ended: [Session] }> {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly defaults: SessionDefaults) {
    super();
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  list(): Session[] {
    return [...this.sessions.values()];
  }

  async create(opts: { cols: number; rows: number; command?: string[] }): Promise<Session> {
    const { Session } = await (sessionModule ??= import('./session.js'));
    const d = this.defaults;
    const options: SessionOptions = {
      command: opts.command && opts.command.length > 0 ? opts.command : d.shell,
      cwd: d.cwd,
      env: d.env,
      cols: opts.cols,
      rows: opts.rows,
      ringBytes: d.ringBytes,
      idleTimeoutMs: d.idleTimeoutMs,
      highWaterBytes: d.highWaterBytes,
      lowWaterBytes: d.lowWaterBytes,
      onEnd: (s) => {
        this.sessions.delete(s.id);
        this.emit('ended', s);
      },
    };
    const session = new Session(options);
    this.sessions.set(session.id, session);
    return session;
  }

  /** Closes every viewer who came through this read-only link, in any session; returns how many. */
  endShare(shareId: string, code: number, reason: string): number {
    let closed = 0;
    for (const s of this.sessions.values()) closed += s.endShare(shareId, code, reason);
    return closed;
  }

  async closeAll(reason: string): Promise<void> {
    await Promise.all(this.list().map((s) => s.close(reason)));
  }
}
