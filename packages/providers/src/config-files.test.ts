import { describe, expect, it } from 'vitest';
import { parseBerthYaml, parseDevcontainer, stripJsonc } from './config-files.js';
import { ProviderError } from './errors.js';
import { validateSpec } from './spec.js';

function thrown(fn: () => unknown): ProviderError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    return err as ProviderError;
  }
  throw new Error('expected a ProviderError');
}

describe('berth.yaml', () => {
  it('parses setup commands', () => {
    expect(parseBerthYaml('setup:\n  - apt-get install -y jq\n  - make\n').setup).toEqual([
      'apt-get install -y jq',
      'make',
    ]);
  });

  it('names the field and what is expected when setup is not a list', () => {
    const err = thrown(() => parseBerthYaml('setup: make\n'));
    expect(err.code).toBe('invalid_config');
    expect(err.message).toContain('"setup"');
    expect(err.hint).toContain('expected array');
  });

  it('names unknown keys and lists the allowed ones', () => {
    const err = thrown(() => parseBerthYaml('setpu:\n  - make\n'));
    expect(err.hint).toContain('setpu');
    expect(err.hint).toContain('image, setup, env');
  });

  it('reports a YAML syntax error with its line', () => {
    expect(thrown(() => parseBerthYaml('setup:\n  - "unclosed\n')).message).toMatch(/line \d/);
  });
});

describe('devcontainer.json', () => {
  it('accepts comments and trailing commas, keeps // inside strings', () => {
    const dc = parseDevcontainer(`{
      // a comment
      "image": "example/img:1", /* another */
      "containerEnv": { "URL": "http://x//y", },
      "forwardPorts": [3000, "5432",],
    }`);
    expect(dc.image).toBe('example/img:1');
    expect(dc.containerEnv).toEqual({ URL: 'http://x//y' });
    expect(dc.forwardPorts).toEqual([3000, '5432']);
  });

  it('gives a clear error for a wrongly typed field', () => {
    const err = thrown(() => parseDevcontainer('{"build": {"dockerfile": 3}}'));
    expect(err.message).toContain('build.dockerfile');
  });

  it('strips nothing from plain JSON', () => {
    expect(stripJsonc('{"a":"/*not*/"}')).toBe('{"a":"/*not*/"}');
  });
});

describe('validateSpec', () => {
  it('applies operator defaults and reports every problem with a hint', () => {
    const ok = validateSpec({ id: 'e1', ownerId: 'u' });
    expect(ok.ok && ok.resources).toEqual({ cpus: 1, memoryMb: 1024, pids: 512 });
    const bad = validateSpec({
      id: 'Bad Id',
      ownerId: 'u',
      resources: { cpus: 64 },
      runtime: 'kata-runtime',
    });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.issues.map((i) => i.field)).toEqual(['id']);
    const over = validateSpec({ id: 'e2', ownerId: 'u', resources: { cpus: 64 }, runtime: 'kata-runtime' });
    expect(over.ok ? [] : over.issues.map((i) => i.field)).toEqual(['resources.cpus', 'runtime']);
  });
});
