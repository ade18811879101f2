import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import * as pty from 'node-pty';

export interface TaskExit {
  /** The exit code, or 128 + n when killed by signal n (as a shell reports it). */
  code: number | null;
  signal: string | null;
}

export interface SpawnTaskOptions {
  command: string[];
  env: Record<string, string>;
  cwd: string;
  tty: boolean;
  cols?: number;
  rows?: number;
  onData(data: Buffer): void;
  /** After the process exited and every byte it wrote was handed to onData. */
  onExit(exit: TaskExit): void;
}

export interface TaskProcess {
  readonly pid: number;
  pause(): void;
  resume(): void;
  /** Signals the whole process group (the task and everything it started). */
  signal(sig: NodeJS.Signals): void;
  closeStdin(): void;
}

/**
 * `sh -c 'exec 2>&1; exec "$@"'`: stderr joins stdout on one pipe, so the log keeps the order
 * the process wrote in, and a program that does not exist fails with the shell's own message
 * ("not found", exit 127) in the log rather than a spawn error only the gateway sees.
 */
const WRAPPER = ['/bin/sh', '-c', 'exec 2>&1; exec "$@"', 'berth-task'];

const signalName = (n: number): string | null =>
  (Object.entries(constants.signals).find(([, v]) => v === n)?.[0] as string | undefined) ?? null;

/** Signals a process group; a group that is already gone is not an error. */
export function signalGroup(pgid: number, sig: NodeJS.Signals | number): boolean {
  try {
    process.kill(-pgid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts a task in its own process group: pipes (`detached`, so setsid) or a PTY (node-pty
 * makes the child a session leader). When the main process exits, whatever it left behind in
 * its group is killed, so a task never leaves orphans running.
 */
export function spawnTask(o: SpawnTaskOptions): TaskProcess {
  return o.tty ? spawnPty(o) : spawnPipes(o);
}

function spawnPipes(o: SpawnTaskOptions): TaskProcess {
  const [file, ...args] = [...WRAPPER, ...o.command];
  const child = spawn(file!, args, {
    cwd: o.cwd,
    env: o.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let done = false;
  const finish = (exit: TaskExit) => {
    if (done) return;
    done = true;
    o.onExit(exit);
  };
  child.on('error', (err) => {
    // Only when /bin/sh itself cannot run (a missing cwd is caught earlier).
    o.onData(Buffer.from(`berth: could not start the task: ${err.message}\n`));
    finish({ code: 127, signal: null });
  });
  child.stdout.on('data', (d: Buffer) => o.onData(d));
  child.stderr.on('data', (d: Buffer) => o.onData(d));
  let exit: TaskExit | undefined;
  child.on('exit', (code, sig) => {
    const n = sig ? constants.signals[sig] : undefined;
    exit = { code: code ?? (n !== undefined ? 128 + n : null), signal: sig ?? null };
    if (child.pid) signalGroup(child.pid, 'SIGKILL');
  });
  // 'close' comes once the pipes are drained too: every byte is read before the exit is told.
  child.on('close', () => finish(exit ?? { code: null, signal: null }));
  const pid = child.pid ?? -1;
  return {
    pid,
    pause: () => {
      child.stdout.pause();
      child.stderr.pause();
    },
    resume: () => {
      child.stdout.resume();
      child.stderr.resume();
    },
    signal: (sig) => void (pid > 0 && signalGroup(pid, sig)),
    closeStdin: () => undefined, // stdin is /dev/null already
  };
}

function spawnPty(o: SpawnTaskOptions): TaskProcess {
  const [file, ...args] = [...WRAPPER, ...o.command];
  const proc = pty.spawn(file!, args, {
    name: 'xterm-256color',
    cols: o.cols ?? 120,
    rows: o.rows ?? 40,
    cwd: o.cwd,
    env: o.env,
    encoding: null,
  } as pty.IPtyForkOptions);
  proc.onData((d) => o.onData(Buffer.from(d as unknown as Buffer)));
  proc.onExit(({ exitCode, signal }) => {
    signalGroup(proc.pid, 'SIGKILL');
    o.onExit(signal ? { code: 128 + signal, signal: signalName(signal) } : { code: exitCode, signal: null });
  });
  return {
    pid: proc.pid,
    pause: () => proc.pause(),
    resume: () => proc.resume(),
    signal: (sig) => void signalGroup(proc.pid, sig),
    // ^D at the start of a line: end of input for the program reading the terminal.
    closeStdin: () => proc.write('\x04'),
  };
}
