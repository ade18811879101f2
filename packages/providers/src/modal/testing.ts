import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { defaultGatewayAssets } from '../assets.js';
import type { BehaviourHarness } from '../testing/behaviour.js';
import { FakeModal, type FakeModalOptions } from './fake/modal.js';
import { ModalProvider, TAG_ENV, type ModalProviderOptions } from './provider.js';

export const FAKE_TOKEN = { tokenId: 'ak-fake-id', tokenSecret: 'as-fake-secret-0123456789' };

/**
 * How the fake installs the gateway: the fake's containers see this host's files below their own
 * layer, so copying the built bundle and node-pty is a real install step, like the
 * `npm install` + download a real image does (see README-modal.md).
 */
export function fakeGateway(): ModalProviderOptions['gateway'] {
  const assets = defaultGatewayAssets();
  return {
    install: [
      `RUN mkdir -p /opt/berth/node_modules && cp ${assets.bundle} /opt/berth/gateway.mjs && cp -r ${assets.nodePtyDir} /opt/berth/node_modules/node-pty`,
    ],
    command: [assets.node, '/opt/berth/gateway.mjs'],
  };
}

export async function startFake(dir: string, extra: Partial<FakeModalOptions> = {}): Promise<FakeModal> {
  return FakeModal.start({ dir: join(dir, 'fake'), ...FAKE_TOKEN, ...extra });
}

export function fakeProvider(
  fake: FakeModal,
  dir: string,
  extra: Partial<ModalProviderOptions> = {},
): ModalProvider {
  return new ModalProvider({
    connection: { ...FAKE_TOKEN, serverUrl: fake.url },
    installation: 'test',
    baseImage: 'debian:bookworm-slim',
    gateway: fakeGateway(),
    stateDir: join(dir, 'state'),
    readyTimeoutMs: 30_000,
    ...extra,
  });
}

/** The running fake sandbox of an environment. */
export function sandboxOf(
  fake: FakeModal,
  id: string,
): NonNullable<ReturnType<FakeModal['sandboxes']['get']>> {
  const sb = [...fake.sandboxes.values()].find((s) => s.running && s.tags[TAG_ENV] === id);
  if (!sb) throw new Error(`no running fake sandbox for ${id}`);
  return sb;
}

function processesUnder(path: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(path)) out.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return out;
}

/** Processes of the fake's sandboxes still alive (the leak check after the fake closed). */
export const fakeProcesses = (dir: string): number[] => processesUnder(join(dir, 'fake', 'sandboxes'));

/** The shared behaviour suite's view of the modal provider on the fake. */
export function modalHarness(provider: ModalProvider, fake: FakeModal, dir: string): BehaviourHarness {
  // A write by a process in the sandbox lands in its upper layer; so does this one.
  const ws = (id: string, rel: string): string =>
    resolve(sandboxOf(fake, id).spec.dir, 'upper', 'workspace', rel);
  return {
    provider,
    hasGateway: true,
    writeFile: async (id, rel, content) => {
      await mkdir(dirname(ws(id, rel)), { recursive: true });
      await writeFile(ws(id, rel), content);
    },
    readFile: (id, rel) => readFile(ws(id, rel), 'utf8'),
    killFromOutside: async (id) => {
      await sandboxOf(fake, id).kill();
    },
    leftovers: async (prefix) => {
      const sandboxes = [...fake.sandboxes.values()]
        .filter((s) => s.running && (s.tags[TAG_ENV] ?? '').startsWith(prefix))
        .map((s) => `sandbox ${s.spec.id}`);
      const states = (await readdir(join(dir, 'state')).catch(() => [] as string[]))
        .filter((f) => f.startsWith(prefix))
        .map((f) => `state ${f}`);
      const procs =
        fake.running().length === 0
          ? processesUnder(join(dir, 'fake', 'sandboxes')).map((p) => `pid ${p}`)
          : [];
      return [...sandboxes, ...states, ...procs];
    },
  };
}
