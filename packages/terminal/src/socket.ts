/**
 * The part of a WebSocket the terminal client uses: a browser `WebSocket` (with
 * `binaryType = 'arraybuffer'`) and a Node `ws` WebSocket both fit.
 */
export interface TerminalSocket {
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type SocketFactory = (url: string) => TerminalSocket;

/** For browsers (or Node ≥ 22): the global WebSocket. */
export const browserSocketFactory: SocketFactory = (url) => {
  const Ctor = (
    globalThis as unknown as { WebSocket?: new (url: string) => TerminalSocket & { binaryType: string } }
  ).WebSocket;
  if (!Ctor)
    throw new Error(
      'no global WebSocket; pass socketFactory (e.g. nodeSocketFactory from @berth/terminal/node)',
    );
  const socket = new Ctor(url);
  socket.binaryType = 'arraybuffer';
  return socket;
};

/** Frames arrive as ArrayBuffer (browser), Buffer (ws) or Buffer[] (ws fragments). */
export function frameBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (Array.isArray(data)) {
    const parts = data as Uint8Array[];
    const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    return out;
  }
  return undefined;
}
