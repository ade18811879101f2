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

const ENTER = 0x0d;
const TILDE = 0x7e;
const DOT = 0x2e;

/**
 * ssh-style escapes: `~.` right after Enter (or at the start) detaches and leaves the session
 * running. Returns the bytes to forward, or 'detach'.
 */
export class EscapeScanner {
  private atLineStart = true;
  private pendingTilde = false;

  feed(chunk: Buffer): Buffer | 'detach' {
    const out: number[] = [];
    for (const b of chunk) {
      if (this.pendingTilde) {
        this.pendingTilde = false;
        if (b === DOT) return 'detach';
        if (b !== TILDE) out.push(TILDE); // `~~` sends one tilde
        out.push(b);
        this.atLineStart = b === ENTER;
        continue;
      }
      if (this.atLineStart && b === TILDE) {
        this.pendingTilde = true;
        continue;
      }
      out.push(b);
      this.atLineStart = b === ENTER || b === 0x0a;
    }
    return Buffer.from(out);
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
        const r = scanner.feed(chunk);
        if (r === 'detach') {
          detached = true;
          client.close();
          return;
        }
        if (r.length) client.write(r);
      });
      stdin.on('end', () => client.close());
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
      throw new CliError(
        `terminal closed: ${close.reason || `code ${close.code}`}`,
        'check the environment: berth env show ' + env,
        EXIT.unavailable,
      );
    });
}
