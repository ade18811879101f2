import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { defaultGatewayAssets } from '../assets.js';
import type { BehaviourHarness } from '../testing/behaviour.js';
import { gatewayExec, withGatewayConfig, type GatewaySigner } from '../testing/gateway-exec.js';
import { FakeModal, type FakeModalOptions } from './fake/modal.js';
import {
  MemoryStateStore,
  ModalProvider,
  TAG_ENV,
  TAG_INSTALLATION,
  type ModalProviderOptions,
} from './provider.js';
import { SdkModalApi } from './sdk.js';

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

/**
 * A provider on the fake. Each call is a new provider (own SDK client, nothing in memory shared
 * with another); what they share is the state store, as control planes share Postgres.
 */
export function fakeProvider(fake: FakeModal, extra: Partial<ModalProviderOptions> = {}): ModalProvider {
  return new ModalProvider({
    connection: { ...FAKE_TOKEN, serverUrl: fake.url },
    installation: 'test',
    baseImage: 'debian:bookworm-slim',
    gateway: fakeGateway(),
    state: new MemoryStateStore(),
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

/** uids of the processes of a fake sandbox other than its init (the fake's "Modal runtime"). */
export function sandboxUids(fake: FakeModal, id: string): { pid: number; uid: number; cmd: string }[] {
  const sb = sandboxOf(fake, id);
  const stat = (pid: string): { ppid: number; uid: number; cmd: string } | undefined => {
    try {
      const ppid = Number(
        readFileSync(`/proc/${pid}/stat`, 'utf8')
          .replace(/^.*\) \S+ /s, '')
          .split(' ')[0],
      );
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      return { ppid, uid, cmd };
    } catch {
      return undefined; // exited while we looked
    }
  };
  const all = new Map<number, { ppid: number; uid: number; cmd: string }>();
  for (const name of readdirSync('/proc')) {
    const s = /^\d+$/.test(name) ? stat(name) : undefined;
    if (s) all.set(Number(name), s);
  }
  // unshare → node sandbox-init.mjs → chroot'd entrypoint → …: the entrypoint's tree is the sandbox.
  const root = sb.pid;
  const init = [...all].find(([, s]) => s.ppid === root)?.[0];
  const out: { pid: number; uid: number; cmd: string }[] = [];
  const walk = (parent: number): void => {
    for (const [pid, s] of all)
      if (s.ppid === parent) {
        out.push({ pid, uid: s.uid, cmd: s.cmd });
        walk(pid);
      }
  };
  if (init !== undefined) walk(init);
  return out;
}

/** The shared behaviour suite's view of the modal provider on the fake. */
export function modalHarness(
  provider: ModalProvider,
  fake: FakeModal,
  state: MemoryStateStore,
  dir: string,
  signer: GatewaySigner,
): BehaviourHarness {
  // A write by a process in the sandbox lands in its upper layer; so does this one.
  const ws = (id: string, rel: string): string =>
    resolve(sandboxOf(fake, id).spec.dir, 'upper', 'workspace', rel);
  return {
    provider: withGatewayConfig(provider, signer),
    hasGateway: true,
    writeFile: async (id, rel, content) => {
      await mkdir(dirname(ws(id, rel)), { recursive: true });
      await writeFile(ws(id, rel), content);
    },
    readFile: (id, rel) => readFile(ws(id, rel), 'utf8'),
    killFromOutside: async (id) => {
      await sandboxOf(fake, id).kill();
    },
    // What a task started through the gateway runs as (terminals are spawned the same way).
    uid: async (id) => {
      const info = await provider.inspect(id);
      const r = await gatewayExec(info.gatewayUrl ?? '', signer, id, ['id', '-u']);
      if (r.code !== 0) throw new Error(`id -u exited ${r.code}: ${r.output}`);
      return Number(r.output.trim());
    },
    leftovers: async (prefix) => {
      const sandboxes = [...fake.sandboxes.values()]
        .filter((s) => s.running && (s.tags[TAG_ENV] ?? '').startsWith(prefix))
        .map((s) => `sandbox ${s.spec.id}`);
      const states = [...state.entries.keys()]
        .filter((id) => id.startsWith(prefix))
        .map((id) => `state ${id}`);
      const procs =
        fake.running().length === 0
          ? processesUnder(join(dir, 'fake', 'sandboxes')).map((p) => `pid ${p}`)
          : [];
      return [...sandboxes, ...states, ...procs];
    },
  };
}

/**
 * The behaviour suite's view of a Modal it cannot enter from this host (the live suite): files
 * and uids through the gateway's exec API, kills through a second SDK client ("outside Berth").
 * The Modal tests also run it against the fake, so the live suite's harness is itself tested.
 */
export function remoteModalHarness(opts: {
  provider: ModalProvider;
  state: MemoryStateStore;
  connection: ModalProviderOptions['connection'];
  installation: string;
  signer: GatewaySigner;
}): { harness: BehaviourHarness; close(): void } {
  const { provider, state, signer, installation } = opts;
  const outside = new SdkModalApi(opts.connection);
  const app = `berth-${installation}`;
  const exec = async (id: string, argv: string[]): Promise<string> => {
    const info = await provider.inspect(id);
    const r = await gatewayExec(info.gatewayUrl ?? '', signer, id, argv);
    if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.output}`);
    return r.output;
  };
  const harness: BehaviourHarness = {
    provider: withGatewayConfig(provider, signer),
    hasGateway: true,
    reachesTestHost: false,
    writeFile: async (id, rel, content) =>
      void (await exec(id, [
        'sh',
        '-c',
        'mkdir -p "$(dirname "$1")" && printf %s "$2" > "$1"',
        'sh',
        `/workspace/${rel}`,
        content,
      ])),
    readFile: (id, rel) => exec(id, ['cat', `/workspace/${rel}`]),
    killFromOutside: async (id) => {
      for (const sb of await outside.listSandboxes(app, { [TAG_INSTALLATION]: installation, [TAG_ENV]: id }))
        await outside.terminate(sb.id);
    },
    uid: async (id) => Number((await exec(id, ['id', '-u'])).trim()),
    leftovers: async (prefix) => {
      const sandboxes = (await outside.listSandboxes(app, { [TAG_INSTALLATION]: installation }))
        .filter((s) => (s.tags[TAG_ENV] ?? '').startsWith(prefix))
        .map((s) => `sandbox ${s.id}`);
      const states = [...state.entries.keys()]
        .filter((id) => id.startsWith(prefix))
        .map((id) => `state ${id}`);
      return [...sandboxes, ...states];
    },
  };
  return { harness, close: () => outside.close() };
}
