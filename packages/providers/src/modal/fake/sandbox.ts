import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** GenericResult as the SDK reads it (status 1 success, 2 failure, 3 terminated, 4 timeout). */
export interface Result {
  status: number;
  exitcode: number;
  exception: string;
}

export interface SandboxSpec {
  id: string;
  /** Sandbox directory: `upper` (a copy of the image's layer) holds every write it makes. */
  dir: string;
  /** Directory for the unix sockets behind tunnels and the console log (outside the root). */
  runDir: string;
  argv: string[];
  env: Record<string, string>;
  workdir: string;
  ports: number[];
  timeoutSecs: number;
  idleTimeoutSecs: number;
}

export const INIT = fileURLToPath(new URL('./sandbox-init.mjs', import.meta.url));

/** Namespaces for a fake container; root makes them directly, anyone else needs a user namespace first. */
export const unshareArgs = (net: boolean): string[] => [
  ...(process.getuid?.() === 0 ? [] : ['-r']),
  '-m',
  ...(net ? ['-n'] : []),
  '-p',
  '-f',
  '--kill-child=SIGKILL',
];

/**
 * FAKE Modal sandbox: the entrypoint runs for real as a local process group in its own network
 * and mount namespaces; each open port gets a tunnel on 127.0.0.1. Modal's `timeout` and
 * `idleTimeout` (no tunnel connection for that long) end it the way Modal does.
 */
export class FakeSandbox {
  result?: Result;
  readonly tunnels = new Map<number, { server: Server; port: number }>();
  readonly exited: Promise<Result>;
  private child?: ChildProcess;
  private readonly sockets = new Set<Socket>();
  private timers: NodeJS.Timeout[] = [];
  private idleTimer?: NodeJS.Timeout;
  private ending?: Result;
  private resolveExit!: (r: Result) => void;

  constructor(readonly spec: SandboxSpec) {
    this.exited = new Promise((r) => (this.resolveExit = r));
  }

  get running(): boolean {
    return this.result === undefined;
  }

  /** The host pid of the `unshare` that holds the sandbox's namespaces. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    const { spec } = this;
    await mkdir(spec.runDir, { recursive: true });
    const ports = spec.ports.map((port) => ({ port, socket: join(spec.runDir, `port-${port}.sock`) }));
    const log = openSync(join(spec.runDir, 'console.log'), 'a');
    // Own pid namespace too: when the sandbox ends, the kernel ends every process in it (PTY
    // shells in their own sessions included), as when a container stops.
    const unshare = unshareArgs(true);
    const child = spawn(
      'unshare',
      [
        ...unshare,
        '--',
        process.execPath,
        INIT,
        JSON.stringify({ net: true, ports, dir: spec.dir, workdir: spec.workdir, argv: spec.argv }),
      ],
      {
        detached: true,
        stdio: ['ignore', log, log],
        env: spec.env,
      },
    );
    closeSync(log);
    this.child = child;
    child.on('error', () =>
      this.finish({ status: 2, exitcode: 127, exception: 'could not start the sandbox' }),
    );
    child.on('exit', (code) => {
      const ended =
        this.ending ??
        (code === 0
          ? { status: 1, exitcode: 0, exception: '' }
          : { status: 2, exitcode: code ?? 137, exception: `sandbox exited with code ${code}` });
      this.finish(ended);
    });
    for (const { port, socket } of ports) {
      const server = createServer((conn) => {
        this.sockets.add(conn);
        this.touch();
        const inner = createConnection(socket);
        this.sockets.add(inner);
        conn.pipe(inner).pipe(conn);
        conn.on('data', () => this.touch());
        const drop = (): void => {
          conn.destroy();
          inner.destroy();
          this.sockets.delete(conn);
          this.sockets.delete(inner);
          this.touch();
        };
        conn.on('error', drop).on('close', drop);
        inner.on('error', drop).on('close', drop);
      });
      await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
      const addr = server.address();
      this.tunnels.set(port, { server, port: typeof addr === 'object' && addr ? addr.port : 0 });
    }
    if (spec.timeoutSecs > 0)
      this.timers.push(
        setTimeout(
          () => void this.end({ status: 4, exitcode: 124, exception: 'sandbox timed out' }),
          spec.timeoutSecs * 1000,
        ),
      );
    this.touch();
  }

  /** Idle = no tunnel connection open; the clock restarts on every connection and byte. */
  private touch(): void {
    if (!this.spec.idleTimeoutSecs || !this.running) return;
    clearTimeout(this.idleTimer);
    if (this.sockets.size > 0) return;
    this.idleTimer = setTimeout(
      () => void this.end({ status: 4, exitcode: 124, exception: 'sandbox idle timeout' }),
      this.spec.idleTimeoutSecs * 1000,
    );
  }

  /** Ends it like Modal's terminate: SIGTERM to the whole sandbox, SIGKILL if it lingers. */
  end(why: Result = { status: 3, exitcode: 137, exception: 'terminated' }): Promise<Result> {
    if (!this.running) return this.exited;
    this.ending ??= why;
    this.signal('SIGTERM');
    const kill = setTimeout(() => this.signal('SIGKILL'), 5000);
    void this.exited.then(() => clearTimeout(kill));
    return this.exited;
  }

  /** A crash from outside (the test's "killed behind Berth's back"). */
  kill(): Promise<Result> {
    this.signal('SIGKILL');
    return this.exited;
  }

  private signal(sig: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (!pid) return;
    try {
      process.kill(-pid, sig);
    } catch {
      // already gone
    }
  }

  private finish(result: Result): void {
    if (this.result) return;
    this.result = result;
    for (const t of this.timers) clearTimeout(t);
    clearTimeout(this.idleTimer);
    for (const s of this.sockets) s.destroy();
    for (const t of this.tunnels.values()) t.server.close();
    this.resolveExit(result);
  }
}
