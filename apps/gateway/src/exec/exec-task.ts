import { existsSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { EXEC_SIGNALS, ExecStartBody, type ExecControlMessage, type ExecTaskRecord } from '@berth/protocol';
import {
  EXEC_TASK_RECORD_FILE,
  processStartTime,
  readExecTaskRecord,
  taskStillRunning,
} from '@berth/protocol/node';
import type { ClientSecretsStore } from './client-secrets.js';
import { DiskLog } from './disk-log.js';
import { loadSecrets, maskStream, secretsFailure, StartSecrets, type LaunchSecrets } from './secrets.js';
import { signalGroup, spawnTask, type TaskExit, type TaskProcess } from './task-process.js';

/** What survives a gateway restart; the format is shared with the local provider (@berth/protocol). */
export type ExecTaskState = ExecTaskRecord;

export interface ExecLimits {
  /** Output kept on disk that the control plane has not stored yet; past it the process's output is paused. */
  maxUnstoredBytes: number;
  segmentBytes: number;
  /** After a stop: SIGTERM to the process group, SIGKILL this much later. */
  stopGraceMs: number;
}

export const RESTARTED =
  "the environment's gateway restarted while the task ran; the task's process was lost";
export const STOPPED =
  "the environment's gateway was stopped while the task ran (environment stopped or restarted); the task's process was stopped with it";

export interface ExecTaskDeps {
  dir: string;
  workdir: string;
  env: Record<string, string>;
  /** Secrets `berth run` sent straight to this gateway, waiting for their launch's start. */
  clientSecrets: ClientSecretsStore;
  limits: ExecLimits;
  warn(msg: string, fields: Record<string, unknown>): void;
}

/** One task on this gateway: its process, its output log on disk, its persisted state. */
export class ExecTask {
  readonly log: DiskLog;
  private proc: TaskProcess | undefined;
  private paused = false;
  private killTimer: NodeJS.Timeout | undefined;
  private readonly waiters = new Set<() => void>();
  /** Set while the task's secrets are read from Vault: the process is not spawned yet. */
  private loading = false;
  private stopWhileLoading = false;
  /** Settles once secrets being read have been used or, if the task ended meanwhile, revoked. */
  private loaded: Promise<void> = Promise.resolve();
  private secrets: LaunchSecrets | undefined;

  private constructor(
    readonly state: ExecTaskState,
    private readonly deps: ExecTaskDeps,
  ) {
    this.log = new DiskLog(join(deps.dir, 'output'), deps.limits.segmentBytes, state.acked);
  }

  /** A new task, created by its `start` message. */
  static create(id: string, deps: ExecTaskDeps): ExecTask {
    return new ExecTask({ id, appliedSeq: 0, tty: false, started: false, acked: 0 }, deps);
  }

  /**
   * A task an earlier gateway process ran. If its process had not finished it is lost (its
   * output pipe died with that gateway); whatever of its group is still running is killed.
   */
  static recover(deps: ExecTaskDeps): ExecTask | undefined {
    const state = readExecTaskRecord(deps.dir);
    if (!state) return undefined;
    const task = new ExecTask(state, deps);
    if (state.started && !state.exit && !state.lost) {
      if (taskStillRunning(state) && state.pid) signalGroup(state.pid, 'SIGKILL');
      state.lost = RESTARTED;
      task.persist();
    }
    return task;
  }

  get finished(): boolean {
    return Boolean(this.state.exit ?? this.state.lost);
  }

  /**
   * Applies messages in sequence order: each at most once, and only right after the previous
   * one (a gap waits for the missing message). Synchronous, so concurrent deliveries of the
   * same batch cannot interleave. Returns the highest sequence number applied.
   */
  apply(messages: ExecControlMessage[]): number {
    const before = this.state.appliedSeq;
    for (const m of [...messages].sort((a, b) => a.seq - b.seq)) {
      if (m.seq <= this.state.appliedSeq) continue;
      if (m.seq !== this.state.appliedSeq + 1) break;
      this.state.appliedSeq = m.seq;
      this.applyOne(m);
    }
    if (this.state.appliedSeq !== before) this.persist();
    return this.state.appliedSeq;
  }

  private applyOne(m: ExecControlMessage): void {
    switch (m.kind) {
      case 'start':
        return this.start(m.body);
      case 'stop':
        return this.stop();
      case 'signal': {
        const sig = String(m.body.signal ?? '');
        if (!(EXEC_SIGNALS as readonly string[]).includes(sig)) {
          this.deps.warn('signal not allowed; ignored', { taskId: this.state.id, signal: sig });
          return;
        }
        if (!this.finished) this.proc?.signal(sig as NodeJS.Signals);
        return;
      }
      case 'stdin_close':
        if (!this.finished) this.proc?.closeStdin();
        return;
    }
  }

  private start(raw: Record<string, unknown>): void {
    if (this.state.started) return;
    const parsed = ExecStartBody.safeParse(raw);
    this.state.started = true;
    this.state.tty = parsed.success ? (parsed.data.tty ?? false) : false;
    // Recorded before the spawn: if this gateway dies in between, a restart finds the start
    // applied and reports the task lost rather than running the command a second time.
    this.persist();
    if (!parsed.success)
      return this.failToStart(`berth: invalid start message: ${parsed.error.issues[0]?.message ?? ''}\n`);
    const body = parsed.data;
    const cwd = body.cwd
      ? isAbsolute(body.cwd)
        ? body.cwd
        : resolve(this.deps.workdir, body.cwd)
      : this.deps.workdir;
    if (!existsSync(cwd) || !statSync(cwd).isDirectory())
      return this.failToStart(`berth: working directory ${cwd} does not exist\n`);
    const env = { ...this.deps.env, ...(body.env ?? {}) };
    if (this.state.tty) env.TERM ??= 'xterm-256color';
    if (raw.secrets === undefined) return this.spawn(body, cwd, env);
    const secrets = StartSecrets.safeParse(raw.secrets);
    if (!secrets.success)
      return this.failLaunch(
        `invalid secrets in the start message: ${secrets.error.issues[0]?.path.join('.') ?? ''} ${secrets.error.issues[0]?.message ?? ''}`,
      );
    // Read before the spawn: a Vault that is down or says no fails the launch, not the program.
    this.loading = true;
    this.loaded = loadSecrets(secrets.data, this.deps.clientSecrets).then(
      async (got) => {
        this.loading = false;
        this.secrets = got;
        if (this.finished || this.stopWhileLoading) {
          const revoked = this.revokeSecrets();
          if (!this.finished) this.onExit({ code: 143, signal: 'SIGTERM' });
          await revoked;
          return;
        }
        this.spawn(body, cwd, { ...env, ...got.values }, got.values);
      },
      (err: unknown) => {
        this.loading = false;
        if (!this.finished) this.failLaunch(secretsFailure(err));
      },
    );
  }

  private spawn(
    body: ExecStartBody,
    cwd: string,
    env: Record<string, string>,
    secretValues?: Record<string, string>,
  ): void {
    // The output log only ever gets masked bytes; the masker holds back a value's possible start
    // until the next chunk shows whether it completes, and flushes the rest at the exit.
    const mask = secretValues ? maskStream(secretValues) : undefined;
    mask?.on('data', (d: Buffer) => this.onData(d));
    const proc = spawnTask({
      command: body.command,
      env,
      cwd,
      tty: this.state.tty,
      ...(body.cols ? { cols: body.cols } : {}),
      ...(body.rows ? { rows: body.rows } : {}),
      onData: mask ? (d) => void mask.write(d) : (d) => this.onData(d),
      onExit: mask
        ? (e) => {
            mask.once('end', () => this.onExit(e));
            mask.end();
          }
        : (e) => this.onExit(e),
    });
    this.proc = proc;
    if (proc.pid > 0) {
      this.state.pid = proc.pid;
      const t = processStartTime(proc.pid);
      if (t) this.state.procStart = t;
    }
  }

  private failToStart(message: string): void {
    this.onData(Buffer.from(message));
    this.onExit({ code: 126, signal: null });
  }

  /**
   * The task cannot be launched (its secrets could not be read): no process ran, so there is no
   * exit code; the reason goes to the log and, as a `lost` frame, to the control plane, which
   * fails the task with it.
   */
  private failLaunch(reason: string): void {
    this.onData(Buffer.from(`berth: ${reason}\n`));
    this.state.lost = reason;
    this.onExit({ code: null, signal: null });
  }

  /** Revokes the launch's Vault token; a failure is only worth a warning (its TTL ends it). */
  private async revokeSecrets(): Promise<void> {
    const s = this.secrets;
    this.secrets = undefined;
    if (!s) return;
    await s.revoke().catch((err: unknown) =>
      this.deps.warn('revoking the Vault token failed; it expires with its TTL', {
        taskId: this.state.id,
        err: (err as Error).message,
      }),
    );
  }

  /** SIGTERM to the group now, SIGKILL after the grace period if anything of it still runs. */
  stop(): void {
    if (this.loading) this.stopWhileLoading = true;
    if (this.finished || !this.proc) return;
    const proc = this.proc;
    // A paused reader would keep a process blocked on a full pipe from ever seeing the signal's
    // effect through to its exit; resume so its last output and hang-up are read.
    this.setPaused(false);
    proc.signal('SIGTERM');
    clearTimeout(this.killTimer);
    this.killTimer = setTimeout(() => proc.signal('SIGKILL'), this.deps.limits.stopGraceMs);
  }

  private onData(d: Buffer): void {
    this.log.append(d);
    if (this.log.end - this.state.acked >= this.deps.limits.maxUnstoredBytes) this.setPaused(true);
    this.wake();
  }

  private onExit(e: TaskExit): void {
    clearTimeout(this.killTimer);
    this.proc = undefined;
    if (!this.state.lost) this.state.exit = e;
    this.log.closeFd();
    if (this.state.acked >= this.log.end) this.log.dropBefore(this.state.acked, true);
    this.persist();
    void this.revokeSecrets();
    this.wake();
  }

  /** The control plane stored output up to `offset`: drop what is before it, maybe resume. */
  ack(offset: number): void {
    const at = Math.min(offset, this.log.end);
    if (at <= this.state.acked) return;
    this.state.acked = at;
    this.log.dropBefore(at, this.finished);
    if (this.log.end - at < this.deps.limits.maxUnstoredBytes / 2) this.setPaused(false);
    this.persist();
  }

  private setPaused(want: boolean): void {
    if (want === this.paused || !this.proc) return;
    this.paused = want;
    if (want) this.proc.pause();
    else this.proc.resume();
  }

  /** Resolves on new output, an exit, or after `ms` (a heartbeat is due). */
  changed(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /**
   * Gateway shutdown: the process goes with it, and the task says why. The Vault token is revoked
   * now rather than at the process's exit, which a gateway on its way out would not wait for;
   * resolves when Vault has answered (or gave up), so the gateway can wait for it.
   */
  shutdown(): Promise<void> {
    if (this.finished) return Promise.resolve();
    this.state.lost = STOPPED;
    this.persist();
    this.setPaused(false);
    this.proc?.signal('SIGTERM');
    const proc = this.proc;
    if (proc) setTimeout(() => proc.signal('SIGKILL'), 2000).unref();
    const revoked = this.revokeSecrets();
    this.wake();
    // Secrets still being read: their token is revoked when they arrive (above); wait for that too.
    return Promise.all([revoked, this.loaded]).then(() => undefined);
  }

  private persist(): void {
    const file = join(this.deps.dir, EXEC_TASK_RECORD_FILE);
    try {
      writeFileSync(`${file}.tmp`, JSON.stringify(this.state), { mode: 0o600 });
      renameSync(`${file}.tmp`, file);
    } catch (err) {
      // Called from process events too: a full or removed disk must not take the gateway down.
      this.deps.warn('could not save task state', { taskId: this.state.id, err: (err as Error).message });
    }
  }
}
