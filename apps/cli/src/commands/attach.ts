import type { Command } from 'commander';
import { connectTerminal, type TerminalClient } from '@berth/terminal';
import { nodeSocketFactory } from '@berth/terminal/node';
import { api, type ApiTarget } from '../api.js';
import type { Ctx } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { resolveEnvironment } from './env.js';

interface Ticket {
  url: string;
  token: string;
  sessionId: string | null;
  role: 'driver' | 'observer';
}

const CR = 0x0d;
const LF = 0x0a;
const TILDE = 0x7e;
const DOT = 0x2e;
const EOT = 0x04;
/** After stdin ends and ^D is sent, how long the remote side gets to exit before we just leave. */
const EOF_GRACE_MS = 10_000;

/**
 * ssh-style escapes: `~.` at the start of a line (the very start, or right after `\r` or `\n`)
 * detaches and leaves the session running. Returns the bytes to forward, and whether to detach
 * after forwarding them (what was typed before the escape in the same chunk is still sent).
 */
export class EscapeScanner {
  private atLineStart = true;
  private pendingTilde = false;

  feed(chunk: Buffer): { data: Buffer; detach: boolean } {
    const out: number[] = [];
    for (const b of chunk) {
      if (this.pendingTilde) {
        this.pendingTilde = false;
        if (b === DOT) return { data: Buffer.from(out), detach: true };
        if (b !== TILDE) out.push(TILDE); // `~~` sends one tilde
        out.push(b);
        this.atLineStart = b === CR || b === LF;
        continue;
      }
      if (this.atLineStart && b === TILDE) {
        this.pendingTilde = true;
        continue;
      }
      out.push(b);
      this.atLineStart = b === CR || b === LF;
    }
    return { data: Buffer.from(out), detach: false };
  }
}

async function ticketFor(
  target: ApiTarget,
  env: string,
  sessionId: string | undefined,
  observe: boolean,
): Promise<Ticket> {
  const base = `/api/v1/environments/${encodeURIComponent(env)}/terminals`;
  if (sessionId) {
    const { data } = await api<Ticket>(target, 'POST', `${base}/${encodeURIComponent(sessionId)}/tickets`, {
      role: observe ? 'observer' : 'driver',
    });
    return data;
  }
  if (observe)
    throw new CliError('--observe needs --session', 'list sessions: berth attach ENV --list', EXIT.usage);
  const { data } = await api<Ticket>(target, 'POST', base, {});
  return data;
}

export function attachCommand(program: Command, ctx: Ctx): void {
  program
    .command('attach <env>')
    .summary('open a terminal in an environment (id or name)')
    .description('open a terminal in an environment (reconnects on network loss; ~. detaches)')
    .option('--session <id>', 'attach to an existing session')
    .option('--observe', 'watch without typing (with --session)')
    .option('--list', 'list the terminal sessions and who is attached')
    .action(async (envArg: string, o: { session?: string; observe?: boolean; list?: boolean }) => {
      const target = await ctx.target();
      const env = await resolveEnvironment(target, envArg);
      if (o.list) {
        const { data } = await api<{ sessions: unknown[] }>(
          target,
          'GET',
          `/api/v1/environments/${encodeURIComponent(env)}/terminals`,
        );
        process.stdout.write(JSON.stringify(data.sessions, null, 2) + '\n');
        return;
      }
      const ticket = await ticketFor(target, env, o.session, o.observe === true);
      const stdin = process.stdin;
      const stdout = process.stdout;
      const client: TerminalClient = connectTerminal({
        url: ticket.url,
        token: ticket.token,
        ...(o.session ? { sessionId: o.session } : {}),
        cols: stdout.columns || 80,
        rows: stdout.rows || 24,
        socketFactory: nodeSocketFactory,
        // When the gateway forgot our resume token (it restarted), ask for a fresh ticket.
        refreshToken: async () => (await ticketFor(target, env, client.sessionId, o.observe === true)).token,
      });
      client.onOutput((data) => stdout.write(data));
      client.onSnapshot((snap) => {
        // Redraw from the gateway's screen copy: reset, then the serialized screen.
        stdout.write('\x1bc' + snap.data);
      });
      client.onStatus((status) => {
        if (status === 'reconnecting')
          process.stderr.write('\r\n[berth: connection lost, reconnecting…]\r\n');
      });
      let exitCode: number | undefined;
      client.onExit((e) => {
        exitCode = e.signal ? 128 + e.signal : e.code;
      });
      const raw = stdin.isTTY === true;
      if (raw) stdin.setRawMode(true);
      const scanner = new EscapeScanner();
      let detached = false;
      stdin.on('data', (chunk: Buffer) => {
        if (detached) return;
        const r = scanner.feed(chunk);
        if (r.data.length) client.write(r.data);
        if (r.detach) {
          detached = true;
          client.close();
        }
      });
      // Input ended (a pipe or file, or ^D at a local non-terminal): like ssh, pass the end on
      // (^D, which the shell at a prompt reads as end of input) and take the remote exit code.
      // Something that ignores it does not keep us here for ever.
      let inputEnded = false;
      stdin.on('end', () => {
        if (detached) return;
        inputEnded = true;
        client.write(Buffer.from([EOT]));
        setTimeout(() => client.close(), EOF_GRACE_MS).unref();
      });
      const onResize = () => client.resize(stdout.columns || 80, stdout.rows || 24);
      process.on('SIGWINCH', onResize);
      const close = await client.closed;
      process.off('SIGWINCH', onResize);
      if (raw) stdin.setRawMode(false);
      stdin.pause();
      if (detached) {
        process.stderr.write(
          `\r\n[berth: detached; the session keeps running: berth attach ${env} --session ${client.sessionId ?? ''}]\r\n`,
        );
        return;
      }
      if (exitCode !== undefined) {
        process.exitCode = exitCode;
        return;
      }
      if (inputEnded) {
        process.stderr.write(
          `[berth: input ended; the session keeps running: berth attach ${env} --session ${client.sessionId ?? ''}]\n`,
        );
        return;
      }
      throw new CliError(
        `terminal closed: ${close.reason || `code ${close.code}`}`,
        'check the environment: berth env show ' + env,
        EXIT.unavailable,
      );
    });
}
