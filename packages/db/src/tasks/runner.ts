import type { ControlMessageKind, LaunchSource } from './repository.js';

/** What the engine hands a runner: ids and the command, nothing about providers. */
export interface RunnableTask {
  id: string;
  command: string[];
  env: Record<string, string>;
  environmentId: string | null;
  launchSource: LaunchSource;
  /** Env names of the owner's secret references to give the process; null: all of them. */
  secretNames: string[] | null;
}

export interface ControlMessage {
  seq: number;
  kind: ControlMessageKind;
  body: Record<string, unknown>;
}

export type OutputEvent =
  | { type: 'output'; offset: number; data: Buffer }
  | { type: 'exit'; code: number | null; signal: string | null };

/**
 * Thrown by a runner when the task cannot go on and retrying will not help (its environment
 * failed or was destroyed, the gateway lost its process): the engine records the task as
 * failed with `reason` (output read so far is kept) instead of retrying the job.
 */
export class TaskRunFailure extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/**
 * The little the task engine needs from wherever tasks run. The engine does not know which
 * provider is behind it: today the in-process fake, later the gateway inside an environment.
 * Every method is keyed by the task id and safe to repeat, because a job that drove it may be
 * re-run on another worker after a crash.
 */
export interface TaskRunner {
  /** Ensures the task has somewhere to run (environment up, gateway reachable). Returns its node. */
  prepare(task: RunnableTask, signal: AbortSignal): Promise<{ node: string }>;
  /**
   * Delivers control messages, in seq order. The receiver applies each sequence number at most
   * once and only right after the previous one, and answers the highest it has applied: a
   * redelivery after a crash is acknowledged again without being applied twice.
   */
  deliver(
    task: RunnableTask,
    messages: ControlMessage[],
    signal: AbortSignal,
  ): Promise<{ appliedSeq: number }>;
  /**
   * Output from byte `offset` on (the receiver keeps a cursor-addressable log), then one `exit`
   * event, then the end. Before `start` is applied it simply waits.
   */
  output(task: RunnableTask, offset: number, signal: AbortSignal): AsyncIterable<OutputEvent>;
}

export interface FakeScript {
  /** Printed in order; `afterMs` waits before the step (on a timer, not a busy loop). */
  steps: Array<{ out: string; afterMs?: number }>;
  exitCode?: number;
  /** Keep running after the steps until stopped (a server, a hung build). */
  hang?: boolean;
}

const SIGNALS: Record<string, number> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

class FakeProcess {
  chunks: Buffer[] = [];
  size = 0;
  exit: { code: number | null; signal: string | null } | undefined;
  appliedSeq = 0;
  applied: ControlMessage[] = [];
  started = false;
  private timer: NodeJS.Timeout | undefined;
  private waiters = new Set<() => void>();

  constructor(private readonly script: FakeScript) {}

  apply(m: ControlMessage): void {
    this.applied.push(m);
    this.appliedSeq = m.seq;
    if (m.kind === 'start' && !this.started) {
      this.started = true;
      this.step(0);
    } else if (m.kind === 'stop') {
      this.finish(128 + 15, 'SIGTERM');
    } else if (m.kind === 'signal') {
      const name = String(m.body.signal ?? 'SIGTERM');
      const n = SIGNALS[name];
      if (n !== undefined) this.finish(128 + n, name);
    }
    this.wake();
  }

  private step(i: number): void {
    if (this.exit) return;
    const s = this.script.steps[i];
    if (!s) {
      if (!this.script.hang) this.finish(this.script.exitCode ?? 0, null);
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const b = Buffer.from(s.out);
      this.chunks.push(b);
      this.size += b.length;
      this.wake();
      this.step(i + 1);
    }, s.afterMs ?? 0);
  }

  onExit: (() => void) | undefined;

  private finish(code: number | null, signal: string | null): void {
    if (this.exit) return;
    clearTimeout(this.timer);
    this.exit = { code, signal };
    this.wake();
    this.onExit?.();
  }

  bytes(from: number): Buffer {
    return Buffer.concat(this.chunks).subarray(from);
  }

  changed(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason as Error);
      const done = () => {
        this.waiters.delete(done);
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        this.waiters.delete(done);
        reject(signal.reason as Error);
      };
      this.waiters.add(done);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  dispose(): void {
    clearTimeout(this.timer);
  }
}

/**
 * A FAKE runner for tests and for running Berth before environments and the gateway exist: each
 * task "runs" in this process by printing a scripted output and exiting with a scripted code. It
 * keeps the receiver's side of the protocol faithfully (sequence-checked control messages, a
 * byte-addressed log), so the engine is exercised as it will be against the gateway.
 */
export class FakeTaskRunner implements TaskRunner {
  private readonly procs = new Map<string, FakeProcess>();

  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly scriptFor: (task: RunnableTask) => FakeScript = (t) => ({
      steps: [{ out: `${t.command.join(' ')}\n` }],
      exitCode: 0,
    }),
    private readonly node = 'fake-node',
    private readonly keepFinishedMs = 60_000,
  ) {}

  private proc(task: RunnableTask): FakeProcess {
    let p = this.procs.get(task.id);
    if (!p) {
      const proc = new FakeProcess(this.scriptFor(task));
      // A long-running server must not keep every finished task's output in memory; a minute
      // is ample for the driver to read the exit (or for a retry to read it again).
      proc.onExit = () => {
        const t = setTimeout(
          () => this.procs.get(task.id) === proc && this.procs.delete(task.id),
          this.keepFinishedMs,
        );
        t.unref();
        this.timers.add(t);
      };
      this.procs.set(task.id, proc);
      p = proc;
    }
    return p;
  }

  /** Messages the fake applied for a task, in the order it applied them (for tests). */
  applied(taskId: string): ControlMessage[] {
    return [...(this.procs.get(taskId)?.applied ?? [])];
  }

  async prepare(task: RunnableTask): Promise<{ node: string }> {
    this.proc(task);
    return { node: this.node };
  }

  async deliver(task: RunnableTask, messages: ControlMessage[]): Promise<{ appliedSeq: number }> {
    const p = this.proc(task);
    for (const m of [...messages].sort((a, b) => a.seq - b.seq)) {
      if (m.seq <= p.appliedSeq) continue; // a redelivery: already applied
      if (m.seq !== p.appliedSeq + 1) break; // a gap: wait for the missing one
      p.apply(m);
    }
    return { appliedSeq: p.appliedSeq };
  }

  async *output(task: RunnableTask, offset: number, signal: AbortSignal): AsyncIterable<OutputEvent> {
    const p = this.proc(task);
    let at = offset;
    for (;;) {
      if (at < p.size) {
        const data = p.bytes(at);
        yield { type: 'output', offset: at, data };
        at += data.length;
        continue;
      }
      if (p.exit) {
        yield { type: 'exit', ...p.exit };
        return;
      }
      await p.changed(signal);
    }
  }

  /** Cancels the fake's timers (tests call it in their cleanup). */
  dispose(): void {
    for (const p of this.procs.values()) p.dispose();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
