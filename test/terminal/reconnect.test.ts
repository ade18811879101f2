import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestGateway, type TestGateway } from '@berth/gateway/testing';
import { reachOffset, screenShows, seeded, view, type Viewer } from './helpers.js';

const gateways: TestGateway[] = [];
const viewers: Viewer[] = [];

afterEach(async () => {
  for (const v of viewers.splice(0)) {
    v.client.close();
    v.screen.dispose();
  }
  for (const gw of gateways.splice(0)) {
    await gw.close();
    expect(gw.gateway.sessions.list()).toEqual([]);
  }
});

async function gateway(ringBytes: number): Promise<TestGateway> {
  const gw = await startTestGateway({ terminal: { ringBytes, idleTimeoutMs: 60_000, interactive: true } });
  gateways.push(gw);
  return gw;
}

function track(v: Viewer): Viewer {
  viewers.push(v);
  return v;
}

/** Both have everything the session produced, fully parsed; then their screens must match. */
async function expectSameScreen(gw: TestGateway, sessionId: string, a: Viewer, b: Viewer): Promise<void> {
  const end = gw.gateway.sessions.get(sessionId)?.outputOffset ?? 0;
  await Promise.all([reachOffset(a.client, end), reachOffset(b.client, end)]);
  await Promise.all([a.screen.flush(), b.screen.flush()]);
  expect(b.screen.state()).toEqual(a.screen.state());
}

/**
 * Drops `b` at random output chunks (it reconnects at once and gets the missing bytes) and, now
 * and then, keeps it away until the ring has moved past its offset (it gets a snapshot).
 */
function chaos(
  gw: TestGateway,
  a: Viewer,
  b: Viewer,
  seed: number,
  ringBytes: number,
): { stop(): void; outages: Promise<void>[]; drops: number } {
  const rand = seeded(seed);
  const stats = { drops: 0 };
  let stopped = false;
  // An outage waits for the ring to move past it, but output may end first (the last keys
  // redraw little): stop() then lets it come back at once, by exact replay.
  let onStop = (): void => {};
  const stoppedNow = new Promise<void>((resolve) => (onStop = resolve));
  let away = false;
  const outages: Promise<void>[] = [];
  let chunks = 0;
  const onChunk = (): void => {
    if (stopped || away) return;
    chunks++;
    // Random points, but at least one of each kind early on.
    const r = chunks === 2 ? 0 : chunks === 4 && outages.length === 0 ? 0.035 : rand();
    if (r < 0.03) {
      stats.drops++;
      b.client.dropConnection();
    } else if (r < 0.04) {
      away = true;
      const sessionId = b.client.sessionId ?? '';
      const from = b.client.offset;
      b.client.close();
      outages.push(
        (async () => {
          await Promise.race([reachOffset(a.client, from + ringBytes + 1), stoppedNow]);
          const token = await gw.signer.sign({ sid: sessionId, role: 'observer' });
          const next = track(view(gw, token, { sessionId, lastOffset: from }, b.screen));
          b.client = next.client;
          next.client.onSnapshot(() => b.snapshots++);
          next.client.onOutput(onChunk);
          await next.client.ready();
          away = false;
        })(),
      );
    }
  };
  b.client.onOutput(onChunk);
  return {
    stop: () => {
      stopped = true;
      onStop();
    },
    outages,
    get drops() {
      return stats.drops;
    },
  };
}

describe('reconnect', () => {
  it('a client dropped at random points while output streams ends with the screen of one that never disconnected', async () => {
    const ring = 16 * 1024;
    const gw = await gateway(ring);
    const script =
      'stty -echo; i=0; while [ $i -lt 6000 ]; do printf "\\033[3%dm%05d \\033[1m%s\\033[0m\\033[K\\n" $((i % 8)) $i "streaming line with ünïcødé ─ and colours"; ' +
      'if [ $((i % 500)) -eq 0 ]; then printf "\\033[2J\\033[H"; fi; i=$((i+1)); done; printf "\\033[5;10HDONE"; read x';
    const a = track(view(gw, await gw.signer.sign({}), { command: ['sh', '-c', script] }));
    const info = await a.client.ready();
    const seed = Date.now() % 100_000;
    const b = track(
      view(gw, await gw.signer.sign({ sid: info.sessionId, role: 'observer' }), {
        sessionId: info.sessionId,
      }),
    );
    await b.client.ready();
    const c = chaos(gw, a, b, seed, ring);
    await screenShows(a, (t) => t.includes('DONE'));
    c.stop();
    await Promise.all(c.outages);
    await expectSameScreen(gw, info.sessionId, a, b);
    // Both paths were exercised: exact replay after short drops, a snapshot after long outages.
    expect(c.drops, `seed ${seed}`).toBeGreaterThan(0);
    expect(c.outages.length, `seed ${seed}`).toBeGreaterThan(0);
    expect(b.snapshots, `seed ${seed}`).toBeGreaterThan(0);
  });

  for (const program of ['vim', 'less'] as const) {
    it(`${program} in the alternate screen redraws identically after drops and a snapshot`, async () => {
      const ring = 1024;
      const gw = await gateway(ring);
      const file = join(gw.dataDir, 'file.txt');
      writeFileSync(
        file,
        Array.from(
          { length: 400 },
          (_, i) => `${String(i).padStart(4, '0')} the quick brown fox ─ ünïcødé ${'x'.repeat(i % 50)}`,
        ).join('\n') + '\n',
      );
      const command =
        program === 'vim' ? ['vim', '-u', 'NONE', '-i', 'NONE', '-N', '-n', file] : ['less', '-R', file];
      const a = track(view(gw, await gw.signer.sign({}), { command, cols: 80, rows: 24 }));
      const info = await a.client.ready();
      await screenShows(a, (t) => t.includes('0000 the quick'));
      const b = track(
        view(gw, await gw.signer.sign({ sid: info.sessionId, role: 'observer' }), {
          sessionId: info.sessionId,
        }),
      );
      await b.client.ready();
      const seed = Date.now() % 100_000;
      const c = chaos(gw, a, b, seed, ring);
      const keys =
        program === 'vim'
          ? ['G', 'gg', '50j', ':set number\r', '30j', 'ONEW LINE\x1b', '\x06', '\x06', '\x02', 'dd', 'u']
          : ['G', 'g', ' ', ' ', ' ', 'b', '/fox\r', 'n', 'n', ' '];
      for (const k of keys) {
        const before = a.client.offset;
        a.client.write(k);
        // Each key changes the screen; wait for its redraw before the next.
        await reachOffset(a.client, before + 1);
      }
      // A last, recognisable change, so both clients are known to have the final screen.
      const marker = program === 'vim' ? ':echo "MARK-END"\r' : '/0399\r';
      a.client.write(marker);
      await screenShows(a, (t) => t.includes(program === 'vim' ? 'MARK-END' : '0399 the quick'));
      c.stop();
      await Promise.all(c.outages);
      // A long outage guarantees the snapshot path at least once.
      const sessionId = info.sessionId;
      const from = b.client.offset;
      b.client.close();
      a.client.write(program === 'vim' ? ':1\r:10\r:200\r:echo "MARK-2"\r' : 'g/0250\r');
      await screenShows(a, (t) => t.includes(program === 'vim' ? 'MARK-2' : '0250 the quick'));
      const gap = (gw.gateway.sessions.get(sessionId)?.outputOffset ?? 0) - from;
      const b2 = track(
        view(
          gw,
          await gw.signer.sign({ sid: sessionId, role: 'observer' }),
          { sessionId, lastOffset: from },
          b.screen,
        ),
      );
      await b2.client.ready();
      await expectSameScreen(gw, sessionId, a, b2);
      expect(a.screen.state().buffer).toBe('alternate');
      expect(gap, 'the outage outlasted the ring').toBeGreaterThan(ring);
      expect(b2.snapshots, `seed ${seed}`).toBe(1);
      a.client.write(program === 'vim' ? ':q!\r' : 'q');
      await a.client.closed;
    });
  }
});
