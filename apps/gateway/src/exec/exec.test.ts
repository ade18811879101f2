import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ExecFrameDecoder, type ExecEvent } from '@berth/protocol';
import { startTestGateway, type TestGateway } from '../testing.js';
import { processStartTime } from '@berth/protocol/node';

const gateways: TestGateway[] = [];
afterEach(async () => {
  for (const g of gateways.splice(0)) await g.close();
});

async function gateway(...args: Parameters<typeof startTestGateway>): Promise<TestGateway> {
  const g = await startTestGateway(...args);
  gateways.push(g);
  return g;
}

const auth = async (g: TestGateway, taskId: string) => ({
  authorization: `Bearer ${await g.signer.sign({ scope: 'exec', sid: taskId })}`,
});

async function send(g: TestGateway, taskId: string, messages: unknown[]): Promise<number> {
  const r = await fetch(`${g.http}/exec/tasks/${taskId}/messages`, {
    method: 'POST',
    headers: { ...(await auth(g, taskId)), 'content-type': 'application/json' },
    body: JSON.stringify({ messages }),
  });
  expect(r.status).toBe(200);
  return ((await r.json()) as { appliedSeq: number }).appliedSeq;
}

async function ack(g: TestGateway, taskId: string, offset: number): Promise<void> {
  const r = await fetch(`${g.http}/exec/tasks/${taskId}/ack`, {
    method: 'POST',
    headers: { ...(await auth(g, taskId)), 'content-type': 'application/json' },
    body: JSON.stringify({ offset }),
  });
  expect(r.status).toBe(200);
}

interface Read {
  data: Buffer;
  end: ExecEvent | undefined;
}

/** Reads the output stream from `offset`; `until` may stop early (the stream is then cancelled). */
async function read(
  g: TestGateway,
  taskId: string,
  offset = 0,
  until?: (data: Buffer) => boolean,
): Promise<Read> {
  const r = await fetch(`${g.http}/exec/tasks/${taskId}/output?offset=${offset}`, {
    headers: await auth(g, taskId),
  });
  expect(r.status).toBe(200);
  const dec = new ExecFrameDecoder();
  const parts: Buffer[] = [];
  let at = offset;
  const reader = r.body!.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return { data: Buffer.concat(parts), end: undefined };
    for (const ev of dec.push(value)) {
      if (ev.type === 'output') {
        expect(ev.offset).toBe(at);
        parts.push(ev.data);
        at += ev.data.length;
        if (until?.(Buffer.concat(parts))) {
          await reader.cancel();
          return { data: Buffer.concat(parts), end: undefined };
        }
      } else if (ev.type !== 'heartbeat') {
        await reader.cancel();
        return { data: Buffer.concat(parts), end: ev };
      }
    }
  }
}

const start = (command: string[], extra: Record<string, unknown> = {}) => ({
  seq: 1,
  kind: 'start',
  body: { command, ...extra },
});

/** Running, not a zombie (an orphan is reaped by whatever init the container has, or never). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('gateway exec API', () => {
  it('streams binary output intact and in order, applies each message once, records the exit', async () => {
    const g = await gateway();
    const id = randomUUID();
    // Every byte value, then a marker file appended once per start actually applied.
    const script = `printf "$(printf '\\\\%03o' $(seq 0 255))"; echo started >> runs; exit 3`;
    const first = start(['sh', '-c', script]);
    expect(await send(g, id, [first])).toBe(1);
    expect(await send(g, id, [first])).toBe(1); // a redelivery is acknowledged, not applied again
    const out = await read(g, id);
    const expected = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    expect(out.data.equals(expected)).toBe(true);
    expect(out.end).toEqual({ type: 'exit', code: 3, signal: null });
    expect(readFileSync(join(g.dataDir, 'runs'), 'utf8')).toBe('started\n');
    // From an offset: exactly the rest.
    const tail = await read(g, id, 200);
    expect(tail.data.equals(expected.subarray(200))).toBe(true);
  });

  it('waits for a missing sequence number instead of applying past a gap', async () => {
    const g = await gateway();
    const id = randomUUID();
    expect(await send(g, id, [start(['sleep', '30'])])).toBe(1);
    expect(await send(g, id, [{ seq: 3, kind: 'signal', body: { signal: 'SIGKILL' } }])).toBe(1);
    expect(await send(g, id, [{ seq: 2, kind: 'stop', body: {} }])).toBe(2);
    const out = await read(g, id);
    expect(out.end).toEqual({ type: 'exit', code: 143, signal: 'SIGTERM' });
  });

  it('stop: SIGTERM to the process group, SIGKILL after the grace period, no process left', async () => {
    const g = await gateway({}, { exec: { stopGraceMs: 300 } });
    const id = randomUUID();
    // The shell and its child ignore SIGTERM (SIG_IGN is inherited), so only SIGKILL ends them.
    await send(g, id, [start(['sh', '-c', `trap '' TERM; sleep 1000 & echo "child $!"; wait`])]);
    const head = await read(g, id, 0, (d) => /child \d+\n/.test(d.toString()));
    const child = Number(/child (\d+)/.exec(head.data.toString())![1]);
    expect(alive(child)).toBe(true);
    expect(await send(g, id, [{ seq: 2, kind: 'stop', body: {} }])).toBe(2);
    const out = await read(g, id);
    expect(out.end).toEqual({ type: 'exit', code: 137, signal: 'SIGKILL' });
    expect(alive(child)).toBe(false);
  });

  it('runs in a PTY when asked, with the terminal as stdout', async () => {
    const g = await gateway();
    const id = randomUUID();
    await send(g, id, [start(['sh', '-c', 'test -t 1 && echo on-a-tty; tty'], { tty: true })]);
    const out = await read(g, id);
    expect(out.data.toString()).toMatch(/on-a-tty\r\n\/dev\/pts\/\d+/);
    expect(out.end).toEqual({ type: 'exit', code: 0, signal: null });
  });

  it('a program that does not exist fails with the shell message and exit 127', async () => {
    const g = await gateway();
    const id = randomUUID();
    await send(g, id, [start(['no-such-program-xyz', '--flag'])]);
    const out = await read(g, id);
    expect(out.data.toString()).toMatch(/no-such-program-xyz: not found/);
    expect(out.end).toEqual({ type: 'exit', code: 127, signal: null });
  });

  it('keeps at most the bound of unstored output on disk by pausing the process, then loses nothing', async () => {
    const bound = 1024 * 1024;
    const g = await gateway({}, { exec: { maxUnstoredBytes: bound, segmentBytes: 256 * 1024 } });
    const id = randomUUID();
    const total = 6 * 1024 * 1024;
    await send(g, id, [start(['sh', '-c', `head -c ${total} /dev/urandom | tee data.bin`])]);
    const first = await read(g, id, 0, (d) => d.length >= bound);
    const dir = join(g.dataDir, 'exec', id, 'output');
    const segs = () => readdirSync(dir).length;
    const onDisk = () => readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    // Nothing stored yet: the process is paused once the bound is reached (it can only have
    // filled its pipe since), so the disk holds about the bound, not the whole output.
    expect(onDisk()).toBeLessThanOrEqual(bound + 256 * 1024);
    const got: Buffer[] = [first.data];
    let at = first.data.length;
    // Store (acknowledge) as we go; every segment behind the ack is dropped.
    for (;;) {
      await ack(g, id, at);
      expect(segs() * 256 * 1024).toBeLessThanOrEqual(bound + 2 * 256 * 1024);
      const next = await read(g, id, at, (d) => d.length >= bound / 2);
      got.push(next.data);
      at += next.data.length;
      if (next.end) {
        expect(next.end).toEqual({ type: 'exit', code: 0, signal: null });
        break;
      }
    }
    const all = Buffer.concat(got);
    expect(all.length).toBe(total);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(sha(all)).toBe(sha(readFileSync(join(g.dataDir, 'data.bin'))));
    await ack(g, id, at);
    expect(segs()).toBe(0);
  });

  it('a restarted gateway reports a running task as lost, kills what is left of it, keeps its output', async () => {
    const g1 = await gateway();
    const id = randomUUID();
    await send(g1, id, [start(['sh', '-c', 'echo before; exec sleep 1000'])]);
    await read(g1, id, 0, (d) => d.toString() === 'before\n');
    const pid = (
      JSON.parse(readFileSync(join(g1.dataDir, 'exec', id, 'state.json'), 'utf8')) as { pid: number }
    ).pid;
    expect(processStartTime(pid)).toBeDefined();
    // A second gateway over the same data dir is what a crashed-and-restarted one finds.
    const g2 = await gateway(
      { environmentId: g1.environmentId, dataDir: g1.dataDir, jwks: g1.signer.jwks },
      {},
    );
    g2.signer = g1.signer;
    const out = await read(g2, id);
    expect(out.data.toString()).toBe('before\n');
    expect(out.end).toEqual({ type: 'lost', reason: expect.stringMatching(/gateway restarted/) });
    // The first gateway (its parent, in this test process) sees the SIGKILL the second one sent.
    expect((await read(g1, id)).end).toEqual({ type: 'exit', code: 137, signal: 'SIGKILL' });
    expect(alive(pid)).toBe(false);
  });

  it('refuses requests without an exec token for this environment and this task', async () => {
    const g = await gateway();
    const id = randomUUID();
    const url = `${g.http}/exec/tasks/${id}/output?offset=0`;
    expect((await fetch(url)).status).toBe(401);
    const terminal = await g.signer.sign({ scope: 'terminal', sid: id });
    expect((await fetch(url, { headers: { authorization: `Bearer ${terminal}` } })).status).toBe(401);
    const other = await g.signer.sign({ scope: 'exec', sid: randomUUID() });
    expect((await fetch(url, { headers: { authorization: `Bearer ${other}` } })).status).toBe(401);
    const wrongEnv = await g.signer.sign({ scope: 'exec', sid: id, aud: 'env-other' });
    expect((await fetch(url, { headers: { authorization: `Bearer ${wrongEnv}` } })).status).toBe(401);
    const ok = await g.signer.sign({ scope: 'exec', sid: id });
    const r = await fetch(url, { headers: { authorization: `Bearer ${ok}` } });
    expect(r.status).toBe(404); // authorized, but no such task here
    expect((await fetch(url, { headers: { authorization: `Bearer ${ok}` } })).status).toBe(401); // used once
    const bad = await fetch(`${g.http}/exec/tasks/../../etc/output`, { headers: await auth(g, id) });
    expect(bad.status).toBe(404);
  });
});
