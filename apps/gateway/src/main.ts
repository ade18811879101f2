import { loadGatewayConfig } from './config.js';
import { startGateway } from './server.js';

// The provider waits for the `gateway listening` line (logged by startGateway) on stdout.
const gateway = await startGateway(loadGatewayConfig()).catch((err: unknown) => {
  process.stderr.write(`gateway failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

let stopping = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    gateway.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
