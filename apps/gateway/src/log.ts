import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';

export type LogFields = Record<string, unknown>;

export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  close(): Promise<void>;
}

let stdoutBroken = false;
let stdoutWatched = false;

/**
 * Whoever started the gateway may stop reading its stdout once it saw `gateway listening` (or
 * exit); an EPIPE there must not take the terminals down: the log file still gets every line.
 */
function watchStdout(): void {
  if (stdoutWatched) return;
  stdoutWatched = true;
  process.stdout.on('error', () => (stdoutBroken = true));
}

/** JSON lines to `<dataDir>/gateway.log`, and to stdout unless a test turns that off. */
export function createLogger(dataDir: string, toStdout: boolean): Logger {
  mkdirSync(dataDir, { recursive: true });
  const file: WriteStream = createWriteStream(join(dataDir, 'gateway.log'), { flags: 'a' });
  if (toStdout) watchStdout();
  const write = (level: string, msg: string, fields?: LogFields): void => {
    const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n';
    file.write(line);
    if (toStdout && !stdoutBroken) process.stdout.write(line);
  };
  return {
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
    close: () => new Promise<void>((resolve) => file.end(resolve)),
  };
}
