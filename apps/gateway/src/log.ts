import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';

export type LogFields = Record<string, unknown>;

export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  close(): Promise<void>;
}

/** JSON lines to `<dataDir>/gateway.log`, and to stdout unless a test turns that off. */
export function createLogger(dataDir: string, toStdout: boolean): Logger {
  mkdirSync(dataDir, { recursive: true });
  const file: WriteStream = createWriteStream(join(dataDir, 'gateway.log'), { flags: 'a' });
  const write = (level: string, msg: string, fields?: LogFields): void => {
    const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n';
    file.write(line);
    if (toStdout) process.stdout.write(line);
  };
  return {
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
    close: () => new Promise<void>((resolve) => file.end(resolve)),
  };
}
