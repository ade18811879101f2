import { Command, CommanderError } from 'commander';
import { makeCtx } from './context.js';
import { readEnv } from './env.js';
import { CliError, EXIT } from './errors.js';
import { attachCommand } from './commands/attach.js';
import { auditCommand } from './commands/audit.js';
import { authCommands } from './commands/auth.js';
import { envCommands } from './commands/env.js';
import { secretsCommands } from './commands/secrets.js';
import { serverCommand } from './commands/server.js';
import { tokenCommands } from './commands/token.js';
import { workerCommand } from './commands/worker.js';
import { portForwardCommand } from './commands/port-forward.js';
import { portsCommand } from './commands/ports.js';
import { runCommand } from './commands/run.js';
import { taskCommands } from './commands/task.js';
import { debugCommands } from './commands/debug.js';

export function buildProgram(env: Record<string, string | undefined>): Command {
  const ctx = makeCtx(readEnv(env));
  const program = new Command('berth')
    .description('Berth: remote dev environments with terminals')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  serverCommand(program, ctx);
  workerCommand(program, ctx);
  authCommands(program, ctx);
  tokenCommands(program, ctx);
  envCommands(program, ctx);
  secretsCommands(program, ctx);
  auditCommand(program, ctx);
  attachCommand(program, ctx);
  portsCommand(program, ctx);
  portForwardCommand(program, ctx);
  runCommand(program, ctx);
  taskCommands(program, ctx);
  debugCommands(program, ctx);
  return program;
}

/** Runs the CLI; errors print their hint and set a non-zero exit code. */
export async function main(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
): Promise<void> {
  try {
    await buildProgram(env).parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are not failures; commander already printed its message.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT.usage;
      return;
    }
    if (err instanceof CliError) {
      process.stderr.write(`error: ${err.message}\nhint: ${err.hint}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`error: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = EXIT.error;
  }
}
