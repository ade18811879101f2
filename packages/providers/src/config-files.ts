import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BerthYaml, DevcontainerJson } from '@berth/protocol';
import type { z } from 'zod';
import { parse as parseYamlText, YAMLParseError } from 'yaml';
import { ProviderError } from './errors.js';

function schemaError(file: string, error: z.ZodError): ProviderError {
  const first = error.issues[0];
  const field = first?.path.join('.') || '(top level)';
  const expected =
    first?.code === 'unrecognized_keys'
      ? `unknown key(s) ${first.keys.join(', ')}; allowed: ${file === 'berth.yaml' ? 'image, setup, env' : 'see devcontainer.json reference'}`
      : first?.code === 'invalid_type'
        ? `expected ${first.expected}`
        : (first?.message ?? 'invalid');
  return new ProviderError(
    'invalid_config',
    `${file}: field "${field}" is invalid: ${first?.message ?? 'invalid'}`,
    `${file}: ${field}: ${expected}. Example berth.yaml:\n  setup:\n    - apt-get install -y jq`,
    error.issues.map((i) => ({ field: i.path.join('.'), message: i.message })),
  );
}

export function parseBerthYaml(text: string): BerthYaml {
  let raw: unknown;
  try {
    raw = parseYamlText(text);
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}` : '';
    throw new ProviderError(
      'invalid_config',
      `berth.yaml is not valid YAML${where}: ${(err as Error).message.split('\n')[0]}`,
      'fix the YAML syntax (indentation, quotes) and retry',
    );
  }
  const result = BerthYaml.safeParse(raw ?? {});
  if (!result.success) throw schemaError('berth.yaml', result.error);
  return result.data;
}

/** JSONC as VS Code writes it: // and /* *\/ comments, trailing commas. Strings are left alone. */
export function stripJsonc(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
    } else {
      out += c;
      i++;
    }
  }
  return out.replace(/,(\s*[}\]])/g, '$1');
}

export function parseDevcontainer(text: string): DevcontainerJson {
  let raw: unknown;
  try {
    raw = JSON.parse(stripJsonc(text));
  } catch (err) {
    throw new ProviderError(
      'invalid_config',
      `devcontainer.json is not valid JSON: ${(err as Error).message}`,
      'fix the JSON syntax (comments and trailing commas are allowed)',
    );
  }
  const result = DevcontainerJson.safeParse(raw);
  if (!result.success) throw schemaError('devcontainer.json', result.error);
  return result.data;
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export interface ContextConfig {
  berth?: BerthYaml;
  devcontainer?: DevcontainerJson;
  /** Directory holding devcontainer.json (paths in it are relative to it). */
  devcontainerDir?: string;
}

/** Reads berth.yaml (or the inline text) and .devcontainer/devcontainer.json from a build context. */
export async function readContextConfig(
  context: string | undefined,
  inlineBerthYaml?: string,
): Promise<ContextConfig> {
  const config: ContextConfig = {};
  const berthText =
    inlineBerthYaml ?? (context ? await readIfExists(join(context, 'berth.yaml')) : undefined);
  if (berthText !== undefined) config.berth = parseBerthYaml(berthText);
  if (context) {
    for (const rel of ['.devcontainer/devcontainer.json', '.devcontainer.json']) {
      const text = await readIfExists(join(context, rel));
      if (text !== undefined) {
        config.devcontainer = parseDevcontainer(text);
        config.devcontainerDir = rel.startsWith('.devcontainer/') ? join(context, '.devcontainer') : context;
        break;
      }
    }
  }
  return config;
}
