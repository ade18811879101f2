import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EnvironmentSpec } from '@berth/protocol';
import {
  parseBerthYaml,
  parseDevcontainer,
  ProviderError,
  validateSpec,
  type SpecPolicy,
} from '@berth/providers';
import { ApiError } from '../common/errors.js';
import type { CreateEnvironmentBody } from './dto.js';

/** What is stored in `environments.spec`: the request, minus anything secret (there is none yet). */
export type StoredSpec = Omit<CreateEnvironmentBody, 'name' | 'provider'>;

/**
 * Checks a request before anything is created: berth.yaml and devcontainer.json parse, limits
 * are within the operator's maximums. Every problem is a 400 naming the field, with a hint.
 */
export function checkSpec(spec: StoredSpec, policy: SpecPolicy): StoredSpec {
  if (spec.repo) checkRepoUrl(spec.repo.url);
  try {
    if (spec.berthYaml !== undefined) parseBerthYaml(spec.berthYaml);
    if (spec.devcontainer !== undefined) parseDevcontainer(spec.devcontainer);
  } catch (err) {
    if (err instanceof ProviderError) throw new ApiError(400, err.code, err.message, err.hint, err.details);
    throw err;
  }
  const check = validateSpec(
    toProviderSpec('00000000-0000-4000-8000-000000000000', 'check', spec, undefined),
    policy,
  );
  if (!check.ok) {
    const first = check.issues[0]!;
    throw new ApiError(400, 'invalid_spec', `${first.field}: ${first.message}`, first.hint, check.issues);
  }
  return spec;
}

export function toProviderSpec(
  id: string,
  ownerId: string,
  spec: StoredSpec,
  gateway: EnvironmentSpec['gateway'],
  buildContext?: string,
  installation?: string,
): EnvironmentSpec {
  const resources: NonNullable<EnvironmentSpec['resources']> = {};
  if (spec.resources?.cpu !== undefined) resources.cpus = spec.resources.cpu;
  if (spec.resources?.memoryMb !== undefined) resources.memoryMb = spec.resources.memoryMb;
  if (spec.resources?.pids !== undefined) resources.pids = spec.resources.pids;
  return {
    id,
    ownerId,
    ...(spec.image ? { image: spec.image } : {}),
    ...(spec.berthYaml !== undefined ? { berthYaml: spec.berthYaml } : {}),
    ...(spec.repo ? { repo: { url: spec.repo.url, ...(spec.repo.ref ? { ref: spec.repo.ref } : {}) } } : {}),
    ...(Object.keys(resources).length ? { resources } : {}),
    ...(buildContext ? { buildContext } : {}),
    ...(gateway ? { gateway } : {}),
    ...(installation ? { installation } : {}),
  };
}

const SCP_LIKE = /^([A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+:(?!\/\/)[^\s]+$/;

/**
 * Repositories come over https:// or ssh (`ssh://…` or `git@host:path`) only: no file:// or
 * local paths (they would read the host's disk), and no credentials in the URL, where they
 * would be stored with the environment and shown in its events.
 */
export function checkRepoUrl(url: string): void {
  const bad = (message: string) =>
    new ApiError(
      400,
      'invalid_repo_url',
      `repo.url: ${message}`,
      'use https://host/owner/repo.git or git@host:owner/repo.git; for a private repository keep the credentials out of the URL: store the token as a secret (docs/secrets.md) and clone with it from a task',
    );
  if (url.startsWith('-')) throw bad('must not start with "-"');
  if (SCP_LIKE.test(url) && !/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    if (/^[^@]*:[^@]*@/.test(url)) throw bad('must not contain a password');
    return;
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw bad('is not a URL');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'ssh:')
    throw bad(`${u.protocol.replace(/:$/, '')} URLs are not allowed, only https:// or ssh`);
  if (!u.hostname) throw bad('has no host');
  if (u.password || (u.protocol === 'https:' && u.username))
    throw bad('must not contain a user name, token or password');
}

/** An inline devcontainer.json becomes a build context directory the providers read. */
export async function writeBuildContext(
  root: string,
  id: string,
  spec: StoredSpec,
): Promise<string | undefined> {
  if (spec.devcontainer === undefined) return undefined;
  const dir = join(root, 'build-contexts', id);
  await mkdir(join(dir, '.devcontainer'), { recursive: true });
  await writeFile(join(dir, '.devcontainer', 'devcontainer.json'), spec.devcontainer);
  return dir;
}

export async function removeBuildContext(root: string, id: string): Promise<void> {
  await rm(join(root, 'build-contexts', id), { recursive: true, force: true });
}
