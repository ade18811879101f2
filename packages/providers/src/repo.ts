import { spawn } from 'node:child_process';
import type { RepoSpec } from '@berth/protocol';
import { ProviderError } from './errors.js';

export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; onLine?: (line: string) => void } = {},
): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      for (const line of d.toString().split(/\r?\n|\r/)) if (line.trim()) opts.onLine?.(line);
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolvePromise(out)
        : reject(
            new Error(
              `${cmd} ${args[0] ?? ''} exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`,
            ),
          ),
    );
  });
}

/**
 * Clones on the host into `dest` (an empty directory). The token goes in as a one-off
 * `http.extraHeader` on the command line, so it is in neither .git/config nor the remote URL.
 */
export async function cloneRepo(
  repo: RepoSpec,
  dest: string,
  onLine?: (line: string) => void,
): Promise<void> {
  const args: string[] = [];
  if (repo.token) {
    const basic = Buffer.from(`x-access-token:${repo.token}`).toString('base64');
    args.push('-c', `http.extraHeader=Authorization: Basic ${basic}`);
  }
  args.push('clone', '--progress');
  if (repo.ref) args.push('--branch', repo.ref);
  args.push('--', repo.url, dest);
  try {
    await run('git', args, { env: { ...process.env, GIT_TERMINAL_PROMPT: '0' }, onLine });
  } catch (err) {
    const msg = (err as Error).message.replaceAll(repo.token ?? '\u0000', '***');
    throw new ProviderError(
      'clone_failed',
      `could not clone ${repo.url}${repo.ref ? `@${repo.ref}` : ''}: ${msg}`,
      'check the URL, the ref and the token (it needs read access)',
    );
  }
}
