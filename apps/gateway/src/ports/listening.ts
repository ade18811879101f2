import { readFile } from 'node:fs/promises';

export interface ListeningPort {
  port: number;
  /** Addresses it listens on, as the kernel reports them (`127.0.0.1`, `0.0.0.0`, `::`, `::1`). */
  addresses: string[];
}

const LISTEN = '0A';

function ipv4(hex: string): string {
  // /proc prints the address as a host-order (little-endian) 32-bit word.
  const b = Buffer.from(hex, 'hex');
  return [b[3], b[2], b[1], b[0]].join('.');
}

function ipv6(hex: string): string {
  // Four host-order 32-bit words.
  const words: string[] = [];
  for (let i = 0; i < 4; i++) {
    const w = Buffer.from(hex.slice(i * 8, i * 8 + 8), 'hex').reverse();
    words.push(w.subarray(0, 2).toString('hex'), w.subarray(2, 4).toString('hex'));
  }
  const full = words.map((w) => w.replace(/^0+(?=.)/, '')).join(':');
  if (full === '0:0:0:0:0:0:0:0') return '::';
  if (full === '0:0:0:0:0:0:0:1') return '::1';
  const mapped = /^0:0:0:0:0:ffff:([0-9a-f]+):([0-9a-f]+)$/.exec(full);
  if (mapped) {
    const n = (parseInt(mapped[1]!, 16) << 16) | parseInt(mapped[2]!, 16);
    return `::ffff:${[(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')}`;
  }
  return full;
}

/** Only these can be reached by connecting to 127.0.0.1, which is all the proxy ever does. */
export function reachableFromLoopback(address: string): boolean {
  return (
    address === '0.0.0.0' ||
    address.startsWith('127.') ||
    address === '::' ||
    address === '::1' ||
    address === '::ffff:0.0.0.0' ||
    address.startsWith('::ffff:127.')
  );
}

/** Parses `/proc/net/tcp` or `/proc/net/tcp6` text into (address, port) pairs in LISTEN state. */
export function parseProcNetTcp(text: string, family: 4 | 6): Array<{ address: string; port: number }> {
  const out: Array<{ address: string; port: number }> = [];
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    const local = cols[1];
    if (!local || cols[3] !== LISTEN) continue;
    const [addr, portHex] = local.split(':');
    if (!addr || !portHex) continue;
    const port = parseInt(portHex, 16);
    if (!Number.isInteger(port) || port < 1) continue;
    out.push({ address: family === 4 ? ipv4(addr) : ipv6(addr), port });
  }
  return out;
}

/** TCP ports something listens on that 127.0.0.1 reaches, read from the kernel (no `ss`/`netstat` needed). */
export async function listeningPorts(procRoot = '/proc'): Promise<ListeningPort[]> {
  const byPort = new Map<number, Set<string>>();
  for (const [file, family] of [
    ['net/tcp', 4],
    ['net/tcp6', 6],
  ] as const) {
    let text: string;
    try {
      text = await readFile(`${procRoot}/${file}`, 'utf8');
    } catch {
      continue; // no IPv6 in this namespace
    }
    for (const { address, port } of parseProcNetTcp(text, family)) {
      if (!reachableFromLoopback(address)) continue;
      let set = byPort.get(port);
      if (!set) byPort.set(port, (set = new Set()));
      set.add(address);
    }
  }
  return [...byPort]
    .sort(([a], [b]) => a - b)
    .map(([port, addrs]) => ({ port, addresses: [...addrs].sort() }));
}
