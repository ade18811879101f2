/**
 * Terminal benchmark: the Berth gateway (a child process, reached over a loopback WebSocket)
 * against a local node-pty with no network (the floor) and wetty (the peer), interleaved in one
 * run because this machine is noisy.
 *
 *   npm run bench:terminal [-- --quick] [--json-out FILE]
 *
 * (1) echo: one byte typed into `cat` (tty in raw mode, so cat itself sends it back) until it
 *     comes back; 1,000 keystrokes per target in blocks of 50, rotating who goes first; µs.
 * (2) throughput: `head -c 50000000 /dev/zero | base64` in the terminal; output MB/s from the
 *     go keystroke until the last byte; 3 runs each, interleaved; median.
 *
 * wetty is installed at run time into bench/.peers (never part of the root install); if that or
 * starting it fails, its entry says why instead of holding numbers.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import * as pty from 'node-pty';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { connectTerminal, type TerminalClient } from '@berth/terminal';
import { nodeSocketFactory } from '@berth/terminal/node';
import { waitFor, withTimeout, type Conn, type Target } from './terminal-conn.js';
import { wettyTarget } from './terminal-wetty.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonOutIdx = args.indexOf('--json-out');
const jsonOut = jsonOutIdx >= 0 ? args[jsonOutIdx + 1] : undefined;

const KEYSTROKES = quick ? 200 : 1000;
const BLOCK = quick ? 20 : 50;
const WARMUP = quick ? 20 : 50;
const TPUT_BYTES = quick ? 10_000_000 : 50_000_000;
const TPUT_RUNS = quick ? 1 : 3;

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const peersDir = join(here, '.peers');
const log = (line: string): void => void process.stderr.write(line + '\n');

// ---------------------------------------------------------------- scripts run in each terminal

const scriptsDir = mkdtempSync(join(tmpdir(), 'berth-bench-term-'));
const ECHO_SCRIPT = join(scriptsDir, 'echo.sh');
const TPUT_SCRIPT = join(scriptsDir, 'tput.sh');
// Markers are assembled at run time so a shell echoing the command line never shows them.
writeFileSync(ECHO_SCRIPT, `stty raw -echo; printf 'RE''ADY'; exec cat\n`);
writeFileSync(
  TPUT_SCRIPT,
  `stty -echo; printf 'RE''ADY'; read go; head -c ${TPUT_BYTES} /dev/zero | base64; printf '__E''ND__'; read x\n`,
);

// ------------------------------------------------------------------------------------ targets

async function floorTarget(): Promise<Target> {
  const procs = new Set<pty.IPty>();
  return {
    name: 'floor',
    open(script) {
      const p = pty.spawn('sh', [script], {
        name: 'xterm-256color',
        cols: 80,
        rows: 24,
        cwd: scriptsDir,
        env: process.env as Record<string, string>,
        encoding: null,
      } as pty.IPtyForkOptions);
      procs.add(p);
      return Promise.resolve({
        write: (data) => p.write(data),
        onData: (fn) => void p.onData((d) => fn(d as unknown as Buffer)),
        close: () => {
          procs.delete(p);
          p.kill('SIGKILL');
        },
      });
    },
    close() {
      for (const p of procs) p.kill('SIGKILL');
      return Promise.resolve();
    },
  };
}

async function berthTarget(): Promise<Target> {
  const envId = 'env-bench';
  const issuer = 'https://bench.invalid';
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'EdDSA' };
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-bench-gw-'));
  const config = {
    environmentId: envId,
    issuer,
    jwks: { keys: [jwk] },
    dataDir,
    workdir: scriptsDir,
    host: '127.0.0.1',
    port: 0,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'apps/gateway/src/main.ts')], {
    cwd: root,
    env: { ...process.env, BERTH_GATEWAY_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await withTimeout(
    new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`gateway exited with ${code}`)));
      const lines = createInterface({ input: child.stdout! });
      lines.on('line', (line) => {
        try {
          const msg = JSON.parse(line) as { msg?: string; port?: number };
          if (msg.msg === 'gateway listening' && msg.port) resolve(msg.port);
        } catch {
          /* not ours */
        }
      });
    }),
    'gateway start',
    30_000,
  );
  const clients = new Set<TerminalClient>();
  const ticket = (): Promise<string> =>
    new SignJWT({ scope: 'terminal', role: 'driver', jti: crypto.randomUUID() })
      .setProtectedHeader({ alg: 'EdDSA', kid: 'bench' })
      .setIssuer(issuer)
      .setSubject('bench')
      .setAudience(envId)
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(privateKey);
  return {
    name: 'berth',
    async open(script) {
      const client = connectTerminal({
        url: `ws://127.0.0.1:${port}/terminal`,
        token: await ticket(),
        command: ['sh', script],
        socketFactory: nodeSocketFactory,
        cols: 80,
        rows: 24,
      });
      clients.add(client);
      const fns: ((chunk: Buffer | string) => void)[] = [];
      // Output can arrive in the same socket read as the session info, i.e. before `ready()`'s
      // continuation runs and anyone listens: keep it for the first listener.
      const early: Buffer[] = [];
      client.onOutput((data) => {
        if (fns.length === 0) early.push(Buffer.from(data));
        for (const fn of fns) fn(data as Buffer);
      });
      await client.ready();
      return {
        write: (data) => client.write(data),
        onData: (fn) => {
          fns.push(fn);
          if (fns.length === 1) for (const chunk of early.splice(0)) fn(chunk);
        },
        close: () => {
          clients.delete(client);
          client.close();
        },
      };
    },
    async close() {
      for (const c of clients) c.close();
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// --------------------------------------------------------------------------------- measuring

interface EchoSession {
  conn: Conn;
  samples: number[];
  /** Resolves on the next output chunk. */
  next(): Promise<void>;
}

async function openEcho(t: Target): Promise<EchoSession> {
  const conn = await t.open(ECHO_SCRIPT);
  await withTimeout(waitFor(conn, 'READY'), `${t.name} echo ready`, 30_000);
  let waiter: (() => void) | undefined;
  conn.onData(() => {
    const w = waiter;
    waiter = undefined;
    w?.();
  });
  return {
    conn,
    samples: [],
    next: () => new Promise<void>((resolve) => (waiter = resolve)),
  };
}

async function keystrokes(s: EchoSession, n: number, record: boolean): Promise<void> {
  for (let i = 0; i < n; i++) {
    const back = s.next();
    const t0 = process.hrtime.bigint();
    s.conn.write('a');
    await back;
    const us = Number(process.hrtime.bigint() - t0) / 1000;
    if (record) s.samples.push(us);
  }
}

async function throughputRun(t: Target): Promise<number> {
  const conn = await t.open(TPUT_SCRIPT);
  await withTimeout(waitFor(conn, 'READY'), `${t.name} throughput ready`, 30_000);
  let bytes = 0;
  conn.onData((c) => (bytes += typeof c === 'string' ? Buffer.byteLength(c) : c.byteLength));
  const done = waitFor(conn, '__END__');
  const t0 = process.hrtime.bigint();
  conn.write('\n');
  await withTimeout(done, `${t.name} throughput`);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  conn.close();
  const expected = Math.ceil(TPUT_BYTES / 3) * 4 * (1 + 1 / 76);
  if (bytes < expected * 0.99)
    throw new Error(`${t.name}: only ${bytes} bytes arrived, expected ~${Math.round(expected)}`);
  return bytes / 1e6 / s;
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? NaN;
}

const round1 = (n: number): number => Math.round(n * 10) / 10;

interface Metrics {
  echo_p50_us: number;
  echo_p95_us: number;
  echo_p99_us: number;
  echo_max_us: number;
  throughput_mb_s: number;
  echo_samples: number;
  throughput_runs_mb_s: number[];
}

async function main(): Promise<void> {
  const results: Record<string, Metrics | { error: string }> = {};
  const targets: Target[] = [];
  const makers: Array<[Target['name'], () => Promise<Target>]> = [
    ['berth', berthTarget],
    ['floor', floorTarget],
    ['wetty', () => wettyTarget(peersDir, scriptsDir)],
  ];
  for (const [name, make] of makers) {
    try {
      targets.push(await make());
    } catch (err) {
      results[name] = { error: err instanceof Error ? err.message : String(err) };
      log(`${name}: ${results[name].error}`);
    }
  }
  const live = new Map<Target, { echo?: EchoSession; tput: number[]; error?: string }>();
  for (const t of targets) live.set(t, { tput: [] });
  const fail = (t: Target, err: unknown): void => {
    const st = live.get(t);
    if (st && !st.error) st.error = err instanceof Error ? err.message : String(err);
    log(`${t.name}: ${st?.error}`);
  };
  const ok = (): Target[] => targets.filter((t) => !live.get(t)?.error);

  log(`echo: ${KEYSTROKES} keystrokes per target in blocks of ${BLOCK}`);
  for (const t of targets) {
    try {
      const s = await openEcho(t);
      live.get(t)!.echo = s;
      await withTimeout(keystrokes(s, WARMUP, false), `${t.name} warmup`);
    } catch (err) {
      fail(t, err);
    }
  }
  const tputEvery = Math.max(1, Math.floor(KEYSTROKES / BLOCK / TPUT_RUNS));
  for (let block = 0, round = 0; block < KEYSTROKES / BLOCK; block++) {
    const order = ok();
    for (let r = 0; r < block % Math.max(1, order.length); r++) order.push(order.shift()!);
    for (const t of order) {
      const s = live.get(t)!.echo!;
      try {
        await withTimeout(keystrokes(s, BLOCK, true), `${t.name} echo`);
      } catch (err) {
        fail(t, err);
      }
    }
    // Throughput runs are spread through the echo blocks, so both see the same machine.
    if ((block + 1) % tputEvery === 0 && round < TPUT_RUNS) {
      round++;
      for (const t of order) {
        if (live.get(t)?.error) continue;
        try {
          const mbs = await throughputRun(t);
          live.get(t)!.tput.push(mbs);
          log(`throughput ${t.name} run ${round}: ${mbs.toFixed(1)} MB/s`);
        } catch (err) {
          fail(t, err);
        }
      }
    }
  }
  for (const t of targets) {
    const st = live.get(t)!;
    st.echo?.conn.close();
    if (st.error) {
      results[t.name] = { error: st.error };
      continue;
    }
    const sorted = [...(st.echo?.samples ?? [])].sort((a, b) => a - b);
    const tput = [...st.tput].sort((a, b) => a - b);
    results[t.name] = {
      echo_p50_us: round1(pct(sorted, 50)),
      echo_p95_us: round1(pct(sorted, 95)),
      echo_p99_us: round1(pct(sorted, 99)),
      echo_max_us: round1(sorted[sorted.length - 1] ?? NaN),
      throughput_mb_s: round1(tput[Math.floor(tput.length / 2)] ?? NaN),
      echo_samples: sorted.length,
      throughput_runs_mb_s: st.tput.map(round1),
    };
  }
  for (const t of targets) await t.close().catch((err: unknown) => log(`${t.name} close: ${String(err)}`));
  rmSync(scriptsDir, { recursive: true, force: true });

  const m = (name: string): Metrics | undefined => {
    const r = results[name];
    return r && !('error' in r) ? r : undefined;
  };
  const berth = m('berth');
  const floor = m('floor');
  const wetty = m('wetty');
  const ratios: Record<string, number | boolean | null> = {
    echo_p50_minus_floor_us: berth && floor ? round1(berth.echo_p50_us - floor.echo_p50_us) : null,
    echo_p99_over_floor:
      berth && floor ? Math.round((berth.echo_p99_us / floor.echo_p99_us) * 100) / 100 : null,
    echo_p50_over_wetty:
      berth && wetty ? Math.round((berth.echo_p50_us / wetty.echo_p50_us) * 100) / 100 : null,
    throughput_over_wetty:
      berth && wetty ? Math.round((berth.throughput_mb_s / wetty.throughput_mb_s) * 100) / 100 : null,
    throughput_over_floor:
      berth && floor ? Math.round((berth.throughput_mb_s / floor.throughput_mb_s) * 100) / 100 : null,
    goal_echo_p50_within_100us_of_floor: berth && floor ? berth.echo_p50_us - floor.echo_p50_us <= 100 : null,
    goal_echo_p99_within_2x_floor: berth && floor ? berth.echo_p99_us <= 2 * floor.echo_p99_us : null,
    goal_throughput_1_5x_wetty: berth && wetty ? berth.throughput_mb_s >= 1.5 * wetty.throughput_mb_s : null,
    goal_throughput_20_mb_s: berth ? berth.throughput_mb_s >= 20 : null,
  };
  const out = { bench: 'terminal', quick, results, ratios };
  if (jsonOut) await writeFile(jsonOut, JSON.stringify(out, null, 2) + '\n');
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
