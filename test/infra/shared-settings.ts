import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Rows of docs/configuration.md's tables: variable name → its cells (flag, default, required, meaning). */
export async function configRows(): Promise<Map<string, string[]>> {
  const doc = await readFile(join(root, 'docs/configuration.md'), 'utf8');
  const rows = new Map<string, string[]>();
  for (const line of doc.split('\n')) {
    const m = /^\| `([A-Z][A-Z0-9_]*)` \|(.*)\|$/.exec(line);
    if (m)
      rows.set(
        m[1]!,
        m[2]!.split(' | ').map((c) => c.trim()),
      );
  }
  return rows;
}

/**
 * Files the control plane generates under `<data dir>/keys/` when their setting is not given
 * (found in its source: `join(…, 'keys', '<file>')`), each with the setting whose documented
 * default names that file.
 */
export async function generatedKeyFiles(): Promise<Array<{ file: string; variable: string | undefined }>> {
  const src = join(root, 'apps/control-plane/src');
  const files = (await readdir(src, { recursive: true })).filter(
    (f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.startsWith('testing'),
  );
  const found = new Set<string>();
  for (const f of files) {
    const text = await readFile(join(src, f), 'utf8');
    for (const m of text.matchAll(/join\([^)]*'keys',\s*'([^']+)'\)/g)) found.add(m[1]!);
  }
  const rows = await configRows();
  return [...found].sort().map((file) => ({
    file,
    variable: [...rows].find(([, cells]) => cells[1]?.includes(`keys/${file}`))?.[0],
  }));
}

/** Settings every replica must share: "yes for more than one replica" in the required column. */
export async function replicaSharedSettings(): Promise<string[]> {
  return [...(await configRows())]
    .filter(([, cells]) => cells[2]?.includes('more than one replica'))
    .map(([name]) => name)
    .sort();
}
