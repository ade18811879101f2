import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';

export async function readAllStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Asks on the terminal; `secret` keeps the answer off the screen. */
export async function ask(question: string, secret = false): Promise<string> {
  let muted = false;
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!muted) process.stderr.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output: out, terminal: process.stdin.isTTY === true });
  try {
    return await new Promise<string>((resolve) => {
      rl.question(question, (a) => resolve(a));
      muted = secret;
    });
  } finally {
    if (secret) process.stderr.write('\n');
    rl.close();
  }
}
