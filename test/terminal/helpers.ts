import {
  connectTerminal,
  HeadlessScreen,
  type TerminalClient,
  type TerminalConnectOptions,
} from '@berth/terminal';
import { nodeSocketFactory } from '@berth/terminal/node';
import type { TestGateway } from '@berth/gateway/testing';

/** A client with its own rendered screen, as a user's terminal would show it. */
export interface Viewer {
  client: TerminalClient;
  screen: HeadlessScreen;
  snapshots: number;
  reconnects: number;
}

export function view(
  gw: TestGateway,
  token: string,
  opts: Partial<TerminalConnectOptions> = {},
  screen?: HeadlessScreen,
): Viewer {
  const client = connectTerminal({ url: gw.url, token, socketFactory: nodeSocketFactory, ...opts });
  const v: Viewer = { client, screen: screen ?? new HeadlessScreen(80, 24), snapshots: 0, reconnects: 0 };
  v.screen.follow(client);
  client.onSnapshot(() => v.snapshots++);
  client.onStatus((s) => {
    if (s === 'reconnecting') v.reconnects++;
  });
  return v;
}

/** Resolves once the client has received output up to `offset` (bytes or a snapshot). */
export function reachOffset(client: TerminalClient, offset: number): Promise<void> {
  if (client.offset >= offset) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (client.offset < offset) return;
      offs.forEach((off) => off());
      resolve();
    };
    const offs = [client.onOutput(check), client.onSnapshot(check)];
    void client.closed.then((c) => {
      if (client.offset < offset)
        reject(new Error(`closed (${c.code} ${c.reason}) at offset ${client.offset} < ${offset}`));
    });
  });
}

/** Resolves once the rendered screen satisfies `test` (checked after each parsed output). */
export function screenShows(v: Viewer, test: (text: string) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    const check = (): void => {
      void v.screen.flush().then(() => {
        if (done || !test(v.screen.text())) return;
        done = true;
        offs.forEach((off) => off());
        resolve();
      });
    };
    const offs = [v.client.onOutput(check), v.client.onSnapshot(check)];
    check();
    void v.client.closed.then(() => {
      if (!done) reject(new Error(`closed before the screen matched; screen:\n${v.screen.text()}`));
    });
  });
}

/** Deterministic random numbers, so a failing seed can be replayed. */
export function seeded(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}
