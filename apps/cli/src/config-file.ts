import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { CliError } from './errors.js';

const ConfigFile = z.object({
  url: z.string().url().optional(),
  token: z.string().optional(),
  email: z.string().optional(),
  tokenId: z.string().optional(),
});
export type ConfigFile = z.infer<typeof ConfigFile>;

export async function readConfigFile(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return {};
  }
  const parsed = ConfigFile.safeParse(JSON.parse(text || '{}'));
  if (!parsed.success)
    throw new CliError(`${path} is not a valid Berth config`, `fix or delete it, then run: berth login`);
  return parsed.data;
}

/** Written atomically with mode 0600: it holds an API token. */
export async function writeConfigFile(path: string, data: ConfigFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(data, null, 2) + '\n', { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}
