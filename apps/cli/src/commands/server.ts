import type { Command } from 'commander';
import type { Ctx } from '../context.js';
import { CliError, EXIT } from '../errors.js';

export function serverCommand(program: Command, ctx: Ctx): void {
  program
    .command('server')
    .description('run the control plane (API, workers; embedded Postgres unless DATABASE_URL is set)')
    .option('--port <n>', 'port to listen on (env BERTH_PORT, default 8080)')
    .option('--host <addr>', 'address to bind (env BERTH_HOST, default 127.0.0.1)')
    .option('--data-dir <dir>', 'where Berth keeps its data (env BERTH_DATA_DIR, default ~/.berth)')
    .action(async (opts: { port?: string; host?: string; dataDir?: string }) => {
      const { loadConfig, startServer, ConfigError } = await import('@berth/control-plane');
      let config;
      try {
        config = loadConfig(ctx.env.raw, { port: opts.port, host: opts.host, dataDir: opts.dataDir });
      } catch (err) {
        if (err instanceof ConfigError) throw new CliError(err.message, err.hint, EXIT.usage);
        throw err;
      }
      const server = await startServer(config, { announce: (line) => process.stderr.write(line + '\n') });
      // Embedded Postgres installs exit hooks that stop it and exit at once; we stop in order
      // instead (API, workers, pool, then Postgres), so we own these signals.
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.removeAllListeners(sig);
      let stopping = false;
      const stop = (sig: string) => {
        if (stopping) return;
        stopping = true;
        process.stderr.write(`${sig}: shutting down\n`);
        server.close().then(
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
