import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { EnvironmentSpec } from '@berth/protocol';
import { readContextConfig } from '../config-files.js';
import { ModalProviderError } from './errors.js';
import type { ImageRecipe } from './sdk.js';

export interface RecipeInputs {
  spec: EnvironmentSpec;
  /** Registry reference of the operator's base image. */
  baseImage: string;
  /** Dockerfile commands that put the gateway into the image (see README-modal.md). */
  gatewayInstall: string[];
  workdir: string;
}

export interface Recipe {
  image: ImageRecipe;
  env: Record<string, string>;
  /** The environment user: devcontainer `remoteUser`, else `berth` (created when missing). */
  user: string;
}

/**
 * Modal has no per-sandbox user (0.11.1) and starts the entrypoint as root, so the command drops
 * to the environment user itself: setpriv (util-linux) with the user's groups and no_new_privs,
 * so no setuid binary in the image takes a terminal back to root. HOME etc. from the user's entry.
 */
const RUN_AS_SCRIPT =
  'u="$1"; shift; g=$(id -g "$u") || exit 126; HOME=$(getent passwd "$u" | cut -d: -f6); HOME=${HOME:-/tmp}; export HOME USER="$u" LOGNAME="$u"; exec setpriv --reuid="$u" --regid="$g" --init-groups --no-new-privs -- "$@"';

/** `argv` run as `user` (see RUN_AS_SCRIPT). */
export function runAs(user: string, argv: string[]): string[] {
  return ['sh', '-c', RUN_AS_SCRIPT, 'berth-run-as', user, ...argv];
}

const USER_NAME = /^[a-z_][a-z0-9_.-]{0,31}$/i;

/** Joins backslash continuations and drops comments: one Dockerfile instruction per entry. */
export function dockerfileInstructions(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!cur && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      cur += `${line.slice(0, -1)} `;
      continue;
    }
    out.push(`${cur}${line}`.trim());
    cur = '';
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** Marks the clone step, so a build failure there is reported as a clone failure. */
export const CLONE_MARK = 'berth-clone';

const shq = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * The same inputs as the docker provider (base image, devcontainer Dockerfile, berth.yaml setup),
 * expressed as Modal image layers: a registry image plus Dockerfile commands. Modal's JS SDK sends
 * no build context, so a Dockerfile that COPYs or ADDs files is refused with a hint.
 */
export async function imageRecipe(input: RecipeInputs): Promise<Recipe> {
  const { spec } = input;
  const config = await readContextConfig(spec.buildContext, spec.berthYaml);
  const dc = config.devcontainer;
  let from = spec.image ?? dc?.image ?? config.berth?.image ?? input.baseImage;
  const commands: string[] = [];
  if (dc?.build && config.devcontainerDir) {
    const file = resolve(config.devcontainerDir, dc.build.dockerfile);
    const lines = dockerfileInstructions(await readFile(file, 'utf8'));
    const args = dc.build.args ?? {};
    let seenFrom = false;
    for (const line of lines) {
      const [word = '', ...rest] = line.split(/\s+/);
      const op = word.toUpperCase();
      if (op === 'FROM') {
        if (seenFrom)
          throw new ModalProviderError(
            'build_unsupported',
            `${dc.build.dockerfile}: multi-stage builds are not supported on Modal`,
            'use a single FROM, or build and push the image yourself and set "image" to its reference',
            false,
          );
        seenFrom = true;
        from = (rest[0] ?? '').replace(/\$\{?(\w+)\}?/g, (m, k: string) => args[k] ?? m);
      } else if (op === 'COPY' || op === 'ADD') {
        throw new ModalProviderError(
          'build_unsupported',
          `${dc.build.dockerfile}: "${line}" needs a build context, which Modal images built by Berth do not have`,
          'replace it with a RUN that downloads the file, or build and push the image yourself and set "image" to its reference',
          false,
        );
      } else if (op === 'ARG') {
        const [k = '', v] = (rest[0] ?? '').split('=');
        commands.push(`ENV ${k}=${args[k] ?? v ?? ''}`);
      } else if (op !== 'CMD' && op !== 'ENTRYPOINT' && op !== 'EXPOSE' && op !== 'HEALTHCHECK') {
        // The gateway is the entrypoint; CMD/ENTRYPOINT/EXPOSE would not apply anyway.
        commands.push(line);
      }
    }
  }
  const user = dc?.remoteUser ?? 'berth';
  if (!USER_NAME.test(user))
    throw new ModalProviderError(
      'invalid_config',
      `devcontainer remoteUser "${user}" is not a user name`,
      'use a login name such as "vscode" (Modal sandboxes need a name, not a uid)',
      false,
    );
  commands.push('USER root');
  for (const cmd of config.berth?.setup ?? []) commands.push(`RUN ${cmd}`);
  commands.push(...input.gatewayInstall);
  commands.push(
    `RUN command -v setpriv >/dev/null || (echo "the Modal image needs setpriv (util-linux) to run the gateway as ${user}" >&2; exit 1)`,
    `RUN id -u ${user} >/dev/null 2>&1 || useradd --create-home --shell "$(command -v bash || echo /bin/sh)" ${user} || adduser -D ${user}`,
  );
  const buildEnv: Record<string, string> = {};
  if (spec.repo) {
    // The env id in the command keeps one environment's clone from being reused by another.
    const auth = spec.repo.token ? `-c http.extraHeader="Authorization: Basic $BERTH_GIT_BASIC" ` : '';
    if (spec.repo.token)
      buildEnv.BERTH_GIT_BASIC = Buffer.from(`x-access-token:${spec.repo.token}`).toString('base64');
    const ref = spec.repo.ref ? `--branch ${shq(spec.repo.ref)} ` : '';
    commands.push(
      `RUN : ${CLONE_MARK} berth-env=${spec.id} && git ${auth}clone ${ref}-- ${shq(spec.repo.url)} ${shq(input.workdir)}`,
    );
  } else {
    commands.push(`RUN mkdir -p ${shq(input.workdir)}`);
  }
  const post = dc?.postCreateCommand;
  // Cloned as root (the build's user), then handed to the environment user.
  commands.push(`RUN chown -R ${user}: ${shq(input.workdir)}`);
  if (post !== undefined) {
    const cmd =
      typeof post === 'string'
        ? post
        : Array.isArray(post)
          ? post.map(shq).join(' ')
          : Object.values(post)
              .map((v) => (Array.isArray(v) ? v.map(shq).join(' ') : v))
              .join(' && ');
    // As the user, like docker's postCreateCommand: what it writes in $HOME is theirs.
    commands.push(`RUN cd ${shq(input.workdir)} && ${runAs(user, ['sh', '-c', cmd]).map(shq).join(' ')}`);
  }
  return {
    image: { from: { registry: from }, commands, secretEnv: buildEnv },
    env: { ...config.berth?.env, ...dc?.containerEnv },
    user,
  };
}
